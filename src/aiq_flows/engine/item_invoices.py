"""The life of an item invoice in AccountsIQ, read back at every step: none -> draft (saved) ->
posted, and a draft may be cancelled (a posted one never: it is reversed by a credit note).

AIQ lists an item invoice's drafts, posted and cancelled versions by external reference, so a save
or a post whose answer was lost is found, not repeated. The nightly sync's item invoices and both
legs of a pair (back-to-back, intercompany) go through these steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from aiq_flows.engine.port import AiqPort
from aiq_flows.gateway.errors import AiqBusinessError, AiqError, AiqUnknownOutcome
from aiq_flows.gateway.models import Invoice, RowResult

POSTED, DRAFT, CANCELLED = "Posted", "Processed", "Cancelled"  # AIQ's InvoiceStatus names


class DuplicatePosting(AiqError):
    """AIQ holds one reference posted more than once: a person must look (and reverse one)."""


@dataclass
class ItemState:
    """What AIQ holds under one reference: the posted invoice's transaction, or a draft (and any
    further drafts a repeated save left)."""

    reference: str
    transaction_id: int | None = None
    draft: Invoice | None = None
    stale_drafts: list[Invoice] = field(default_factory=list)

    @property
    def posted(self) -> bool:
        return self.transaction_id is not None


def transaction_of(port: AiqPort, reference: str, invoice: Invoice) -> int:
    """The transaction a posted item invoice became (matched by its invoice ID)."""
    day = invoice.InvoiceDate.replace(tzinfo=None)
    found = port.transactions_by_external_reference(
        reference, day - timedelta(days=1), day + timedelta(days=1)
    )
    for summary in found:
        if (summary.model_extra or {}).get("InvoiceID") == invoice.InvoiceID:
            return summary.TransactionID
    raise AiqUnknownOutcome(
        "GetTransactionsByExternalReference", f"{reference} is posted but not visible yet"
    )


def read_item(port: AiqPort, reference: str) -> ItemState:
    invoices = port.invoices_by_external_reference(reference)
    posted = [i for i in invoices if i.Status == POSTED]
    drafts = [i for i in invoices if i.Status == DRAFT]
    if len(posted) > 1:
        ids = ", ".join(str(i.InvoiceID) for i in posted)
        raise DuplicatePosting(
            "GetInvoicesByExternalReference", f"{reference} is posted {len(posted)} times ({ids})"
        )
    if posted:
        # Drafts beside a posted invoice (a save repeated by hand, say) are left for a person.
        return ItemState(reference, transaction_id=transaction_of(port, reference, posted[0]))
    return ItemState(reference, draft=drafts[0] if drafts else None, stale_drafts=drafts[1:])


def cancel_stale_drafts(port: AiqPort, state: ItemState) -> None:
    for stale in state.stale_drafts:
        port.cancel_invoice(stale.InvoiceID, f"duplicate draft of {state.reference}")
    state.stale_drafts = []


def save_draft(port: AiqPort, reference: str, draft: Invoice) -> Invoice:
    """Save a draft and read it back (AIQ's own totals on it). A save whose answer was lost is
    looked up by reference: the draft it made is used, never a second one saved."""
    try:
        draft_id = port.save_invoice(draft)
    except AiqUnknownOutcome:
        state = read_item(port, reference)
        if state.draft is None:
            raise
        return state.draft
    saved = port.get_invoice(draft_id)
    if saved is None:
        raise AiqUnknownOutcome("GetInvoice", f"{reference}: saved draft {draft_id} not readable")
    return saved


def post_draft(port: AiqPort, reference: str, draft: Invoice) -> int:
    """Post a draft; its transaction ID. A post whose answer was lost is read back."""
    try:
        return port.post_invoice(draft.InvoiceID)
    except AiqUnknownOutcome:
        now = port.get_invoice(draft.InvoiceID)
        if now is None or now.Status != POSTED:
            raise
        return transaction_of(port, reference, now)


def post_waiting_draft(port: AiqPort, state: ItemState) -> int | None:
    """A run that lost its answer may have left the draft saved: post it now (whoever calls this
    holds the document's claim, so it is the only sender). A draft AIQ refuses to post (a closed
    period, say) is cancelled, so that sending the document again gets the refusal, with its
    code, as the document's outcome."""
    cancel_stale_drafts(port, state)
    if state.draft is None:
        return None
    try:
        return post_draft(port, state.reference, state.draft)
    except AiqBusinessError as error:
        port.cancel_invoice(state.draft.InvoiceID, f"not posted: {error.error_code}")
        return None


def create_and_post(port: AiqPort, drafts: list[Invoice]) -> list[RowResult]:
    """Drafts saved in one call, then posted in one call; a draft whose post AIQ refuses is
    cancelled, so no stray draft is left behind. One row per draft, in order."""
    saved = port.create_invoices(drafts)
    draft_ids = [row.document_id for row in saved if row.ok and row.document_id]
    posted = iter(port.post_invoices(draft_ids) if draft_ids else [])
    rows = []
    for row in saved:
        if not (row.ok and row.document_id):
            rows.append(row)
            continue
        result = next(posted)
        if not result.ok:
            port.cancel_invoice(row.document_id, f"not posted: {result.error_code}")
        rows.append(result)
    return rows
