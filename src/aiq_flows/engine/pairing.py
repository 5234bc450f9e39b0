"""Two-leg documents, never half: both item invoices saved as drafts before either is posted, then
posted in order; a pair interrupted between the two posts is completed by the next run.

AccountsIQ has no object that links two invoices, so the pair lives here: a record in the store
(the claim that keeps two runs apart, and the outcome) and two external references. AIQ itself is
read first on every attempt (``GetInvoicesByExternalReference`` shows drafts, posted and cancelled
item invoices), so a draft or a post whose answer was lost is found, not repeated:

1. read both legs in AIQ: posted (with its transaction), a draft, or nothing;
2. save each leg that has neither (a draft whose totals no longer match the source is cancelled
   and saved again);
3. post each unposted leg, in order;
4. a refusal before anything is posted cancels the drafts and fails the pair (nothing half);
   a refusal or an outage after the first post leaves a *half pair*, reported loudly and
   completed by the next run; a withdrawn source unwinds: drafts cancelled, a posted leg
   compensated (a credit note).

Back-to-back (purchase and sales in one entity) and intercompany (sales in one entity, purchase
in another) both use this; each leg carries its own entity's gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from aiq_flows.domain.codes import ErrorCode
from aiq_flows.domain.pricing import PricedLine
from aiq_flows.domain.references import credit_note_reference
from aiq_flows.engine.item_invoices import (
    DuplicatePosting,
    ItemState,
    cancel_stale_drafts,
    post_draft,
    read_item,
    save_draft,
)
from aiq_flows.engine.port import AiqPort
from aiq_flows.gateway.errors import (
    AiqAuthenticationError,
    AiqBusinessError,
    AiqTransientError,
    AiqUnknownOutcome,
)
from aiq_flows.gateway.models import Invoice, InvoiceLine
from aiq_flows.store.outbox import DONE, DocumentState, DocumentStore


class PairStatus(StrEnum):
    COMPLETE = "complete"  # both legs posted by this run (or finished by it)
    ALREADY_COMPLETE = "already_complete"  # nothing to do: the store or AIQ had both legs
    HALF = "half"  # one leg posted, the other not yet: the next run completes it
    FAILED = "failed"  # nothing posted (drafts cancelled)
    HELD = "held"  # another run holds the pair's claim
    UNWOUND = "unwound"  # the source withdrew it: drafts cancelled, posted legs compensated


# What a pair's own store record can say besides posted: withdrawn and unwound (final, no transaction).
UNWOUND = DocumentState.UNWOUND


@dataclass(frozen=True)
class Leg:
    role: str  # "sales", "purchase": for reports
    entity: str
    reference: str
    gateway: AiqPort
    draft: Callable[[], Invoice]  # the draft to save (read from a GetNew... template, lines added)
    expected_net: Decimal
    expected_tax: Decimal
    # Reverse this leg once posted (a credit note); returns the note's transaction ID.
    compensate: Callable[[int], int] | None = None


@dataclass(frozen=True)
class Pair:
    key: str  # the pair's own reference in the store, e.g. B2B-<job>
    source_id: str
    source_version: str
    legs: tuple[Leg, Leg]  # posted in this order
    withdrawn: bool = False


@dataclass(frozen=True)
class LegResult:
    role: str
    reference: str
    state: str  # posted, draft, none, cancelled, compensated
    transaction_id: int | None = None
    draft_id: int | None = None


@dataclass(frozen=True)
class PairResult:
    status: PairStatus
    legs: tuple[LegResult, ...]
    error_code: str | None = None
    reason: str | None = None
    retryable: bool = False

    def leg(self, role: str) -> LegResult | None:
        return next((leg for leg in self.legs if leg.role == role), None)

    def posted_transaction(self, role: str) -> int | None:
        leg = self.leg(role)
        return leg.transaction_id if leg is not None and leg.state == "posted" else None


@dataclass
class _LegState:
    leg: Leg
    item: ItemState

    @property
    def posted(self) -> bool:
        return self.item.posted

    def result(self, state: str | None = None) -> LegResult:
        draft_id = self.item.draft.InvoiceID if self.item.draft else None
        state = state or ("posted" if self.posted else "draft" if self.item.draft else "none")
        return LegResult(self.leg.role, self.leg.reference, state, self.item.transaction_id, draft_id)


class _LegRefused(Exception):
    def __init__(self, leg: Leg, error: AiqBusinessError) -> None:
        super().__init__(str(error))
        self.leg, self.error = leg, error


def _read(leg: Leg) -> _LegState:
    return _LegState(leg, read_item(leg.gateway, leg.reference))


def _matches(leg: Leg, draft: Invoice) -> bool:
    return (draft.NetAmount, draft.TaxAmount) == (leg.expected_net, leg.expected_tax)


class PairSender:
    def __init__(self, store: DocumentStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id

    def _store_entity(self, pair: Pair) -> str:
        return pair.legs[0].entity

    def plan(self, pairs: list[Pair]) -> None:
        by_entity: dict[str, list[tuple[str, str, str]]] = {}
        for pair in pairs:
            by_entity.setdefault(self._store_entity(pair), []).append((pair.key, "pair", pair.source_id))
            for leg in pair.legs:
                by_entity.setdefault(leg.entity, []).append(
                    (leg.reference, f"leg-{leg.role}", pair.source_id)
                )
        for entity, rows in by_entity.items():
            self.store.plan(entity, rows)

    def _from_store(self, pair: Pair) -> PairResult | None:
        entity = self._store_entity(pair)
        record = self.store.get(entity, [pair.key]).get(pair.key)
        if record is not None and record.state is UNWOUND:
            return PairResult(PairStatus.UNWOUND, (), reason="withdrawn at the source and unwound (store)")
        if record is not None and record.state in DONE:
            legs = []
            for leg in pair.legs:
                leg_record = self.store.get(leg.entity, [leg.reference]).get(leg.reference)
                tx = leg_record.transaction_id if leg_record else None
                legs.append(LegResult(leg.role, leg.reference, "posted", tx))
            return PairResult(PairStatus.ALREADY_COMPLETE, tuple(legs), reason="both legs posted (store)")
        if record is not None and record.refused_unchanged(pair.source_version):
            return PairResult(
                PairStatus.FAILED,
                (),
                record.error_code,
                f"{record.message} (unchanged since; fix the source to resend)",
            )
        return None

    def send(self, pair: Pair) -> PairResult:
        settled = self._from_store(pair)
        if settled is not None:
            return settled
        entity = self._store_entity(pair)
        if not self.store.claim(entity, pair.key, self.run_id, source_version=pair.source_version):
            return self._from_store(pair) or PairResult(
                PairStatus.HELD,
                (),
                reason="another run is raising this pair; checked again next run",
                retryable=True,
            )
        states: list[_LegState] = []
        try:
            states = [_read(leg) for leg in pair.legs]
            if pair.withdrawn:
                return self._unwind(pair, states)
            result, posted = self._complete(pair, states)
        except _LegRefused as refused:
            return self._refused(pair, states, refused)
        except DuplicatePosting as duplicate:
            code = ErrorCode.DUPLICATE_LEG
            self.store.mark_failed(entity, pair.key, code, str(duplicate), pair.source_version)
            return PairResult(PairStatus.FAILED, tuple(s.result() for s in states), code, str(duplicate))
        except (AiqTransientError, AiqAuthenticationError, AiqUnknownOutcome) as outage:
            self.store.mark_unknown(entity, pair.key, str(outage))
            half = any(s.posted for s in states)
            code = ErrorCode.UNKNOWN_OUTCOME if isinstance(outage, AiqUnknownOutcome) else ErrorCode.TRANSIENT
            return PairResult(
                PairStatus.HALF if half else PairStatus.FAILED,
                tuple(s.result() for s in states),
                code,
                f"{outage}; AIQ is read again before anything is resent, next run",
                retryable=True,
            )
        for leg, transaction_id in posted:
            self.store.mark_posted(leg.entity, leg.reference, transaction_id)
        self.store.mark_posted(entity, pair.key, posted[-1][1])  # the pair is done with its last leg
        return result

    def _complete(self, pair: Pair, states: list[_LegState]) -> tuple[PairResult, list[tuple[Leg, int]]]:
        """Save each leg that has no draft (a draft whose totals no longer match the source is
        cancelled first), then post each unposted leg in order; (the result, each leg's transaction)."""
        found_complete = all(s.posted for s in states)
        drafts: dict[str, Invoice] = {}
        for state in states:
            if state.posted:
                continue
            cancel_stale_drafts(state.leg.gateway, state.item)
            draft = state.item.draft
            if draft is not None and not _matches(state.leg, draft):
                state.leg.gateway.cancel_invoice(
                    draft.InvoiceID, f"{state.leg.reference}: the source changed before posting"
                )
                state.item.draft = draft = None
            if draft is None:
                draft = self._save(state.leg)
            state.item.draft = drafts[state.leg.reference] = draft
        posted: list[tuple[Leg, int]] = []
        for state in states:
            if state.item.transaction_id is None:
                state.item.transaction_id = self._post(state.leg, drafts[state.leg.reference])
            posted.append((state.leg, state.item.transaction_id))
        status = PairStatus.ALREADY_COMPLETE if found_complete else PairStatus.COMPLETE
        reason = "both legs already in AIQ (found by external reference)" if found_complete else None
        return PairResult(status, tuple(s.result() for s in states), reason=reason), posted

    def _save(self, leg: Leg) -> Invoice:
        try:
            draft = save_draft(leg.gateway, leg.reference, leg.draft())
        except AiqBusinessError as error:
            raise _LegRefused(leg, error) from None
        if not _matches(leg, draft):
            leg.gateway.cancel_invoice(
                draft.InvoiceID, f"{leg.reference}: AIQ's totals differ from the source's"
            )
            message = (
                f"AIQ computed net {draft.NetAmount} / tax {draft.TaxAmount} for {leg.reference}, "
                f"the source says {leg.expected_net} / {leg.expected_tax}"
            )
            raise _LegRefused(
                leg,
                AiqBusinessError("SaveInvoiceGetBackInvoiceID", "Failure", ErrorCode.TOTALS_DIFFER, message),
            )
        return draft

    def _post(self, leg: Leg, draft: Invoice) -> int:
        try:
            return post_draft(leg.gateway, leg.reference, draft)
        except AiqBusinessError as error:
            raise _LegRefused(leg, error) from None

    def _refused(self, pair: Pair, states: list[_LegState], refused: _LegRefused) -> PairResult:
        entity = self._store_entity(pair)
        error = refused.error
        reason = f"AIQ refused {refused.leg.reference}: {error.error_code}: {error.error_message}"
        if any(s.posted for s in states):
            # Half: keep the other draft; the next run posts it once the cause is fixed.
            self.store.mark_unknown(entity, pair.key, reason)
            return PairResult(
                PairStatus.HALF, tuple(s.result() for s in states), error.error_code, reason, retryable=True
            )
        cancelled = self._cancel_drafts(states, f"pair {pair.key} refused: {error.error_code}")
        self.store.mark_failed(entity, pair.key, error.error_code, reason, pair.source_version)
        return PairResult(PairStatus.FAILED, cancelled, error.error_code, reason)

    def _cancel_drafts(self, states: list[_LegState], reason: str) -> tuple[LegResult, ...]:
        results = []
        for state in states:
            if state.item.draft is not None and not state.posted:
                state.leg.gateway.cancel_invoice(state.item.draft.InvoiceID, reason[:200])
                results.append(replace(state.result(), state="cancelled"))
            else:
                results.append(state.result())
        return tuple(results)

    def _unwind(self, pair: Pair, states: list[_LegState]) -> PairResult:
        """The source withdrew the pair: cancel drafts, compensate posted legs."""
        results = list(self._cancel_drafts(states, f"pair {pair.key} withdrawn at the source"))
        for index, state in enumerate(states):
            transaction_id = state.item.transaction_id
            if transaction_id is None:
                continue
            if state.leg.compensate is None:
                raise _LegRefused(
                    state.leg,
                    AiqBusinessError(
                        "Unwind", "Failure", ErrorCode.NO_COMPENSATION, f"{state.leg.reference} is posted"
                    ),
                )
            note = state.leg.compensate(transaction_id)
            results[index] = LegResult(state.leg.role, state.leg.reference, "compensated", note)
        self.store.mark_unwound(self._store_entity(pair), pair.key)
        return PairResult(PairStatus.UNWOUND, tuple(results), reason="withdrawn at the source")


# --- building legs --------------------------------------------------------------------------------


def priced_lines(lines: Iterable[PricedLine], gl_code: str, department: str | None) -> list[InvoiceLine]:
    """Item-invoice lines for priced lines. Quantity 1 at the line's net: AIQ, which recalculates
    every line, then computes exactly the amounts that were priced (VAT from the tax code, per line,
    half-up, as the pricing does)."""
    return [
        InvoiceLine(
            StockItemDescription=line.description,
            InvoicedQuantity=Decimal(1),
            StockItemPrice=line.net,
            TaxCode=line.tax_code,
            GLAccountCode=gl_code,
            DepartmentID=department,
        )
        for line in lines
    ]


def filled_draft(
    template: Invoice,
    reference: str,
    when: datetime,
    notes: str,
    order_number: str,
    department: str | None,
    lines: list[InvoiceLine],
) -> Invoice:
    """A ``GetNew...`` template (the account's defaults) made into one leg's draft."""
    template.ExternalReference = reference
    template.InvoiceDate = template.DeliveryDate = when
    template.OrderNumber = order_number
    template.Notes = notes
    template.DepartmentID = department
    template.Lines = lines
    return template


def credit_note_compensation(
    gateway: AiqPort,
    sales_reference: str,
    customer_code: str,
    when: datetime,
    lines: list[InvoiceLine],
    department: str | None,
    why: str,
) -> Callable[[int], int]:
    """Reverse a posted sales leg with a credit note ``<reference>-CN``, exactly once: a posted
    note is found by reference, a draft note is posted, otherwise one is saved and posted."""
    reference = credit_note_reference(sales_reference)

    def credit(_transaction_id: int) -> int:
        window = (when - timedelta(days=1), when + timedelta(days=1))
        for found in gateway.transactions_by_external_reference(reference, *window):
            return found.TransactionID
        drafts = [n for n in gateway.credit_notes_by_external_reference(reference) if n.Status == "Processed"]
        if drafts:
            return gateway.post_credit_note(drafts[0].InvoiceID)
        note = gateway.new_sales_credit_note(customer_code)
        note.ExternalReference, note.InvoiceDate, note.DeliveryDate = reference, when, when
        note.Notes = f"Reverses {sales_reference}: {why}"
        note.DepartmentID = department
        note.Lines = lines
        return gateway.post_credit_note(gateway.save_credit_note(note))

    return credit
