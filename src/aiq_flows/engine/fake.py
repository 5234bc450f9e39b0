"""An in-memory AccountsIQ for one entity, for unit tests of the exactly-once engine.

It keeps what the engine's state machine depends on, as AIQ does it: external references are not
unique; an item invoice is a draft (``Processed``) until posted, and a posted one is immutable
(only a draft can be cancelled); AIQ computes an item invoice's totals from its lines (quantity x
price, VAT from the tax code, half-up per line); posting makes a transaction, found by external
reference and date. The end-to-end tests prove the same against the real HTTP sandbox.

Faults are planted per operation, each used once, in order: ``fake.fail("PostInvoice", LOST)``.
Every call is recorded in ``fake.calls`` (operation name, first argument), so a test can assert
exactly what was sent.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from typing import Any, TypeVar

from aiq_flows.gateway.errors import (
    AiqAuthenticationError,
    AiqBusinessError,
    AiqTransientError,
    AiqUnknownOutcome,
)
from aiq_flows.gateway.models import (
    AllocationEntry,
    CreditNote,
    Invoice,
    RowResult,
    SalesReceipt,
    TransactionSummary,
)

CENT = Decimal("0.01")
T = TypeVar("T")


class Fault(Enum):
    LOST = "lost"  # AIQ commits, the answer never arrives
    NOT_REACHED = "not_reached"  # the request is lost on the way in: nothing committed, no answer
    TRANSIENT = "transient"  # refused before processing (HTTP 503, connection refused)
    EXPIRED = "expired"  # the token is refused again and again: nothing processed
    BUG = "bug"  # an error nobody foresaw, after the request may have been processed


@dataclass(frozen=True)
class Refuse:
    """AIQ answers in-band with this ErrorCode; nothing committed."""

    error_code: str
    message: str = "refused"


LOST, NOT_REACHED, TRANSIENT, EXPIRED, BUG = (
    Fault.LOST,
    Fault.NOT_REACHED,
    Fault.TRANSIENT,
    Fault.EXPIRED,
    Fault.BUG,
)


@dataclass
class FakeAiq:
    tax_rates: dict[str, Decimal] = field(default_factory=lambda: {"T1": Decimal("0.20"), "EX": Decimal(0)})
    transactions: dict[int, TransactionSummary] = field(default_factory=dict)
    invoices: dict[int, Invoice | CreditNote] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    # (allocation number, debit transaction, credit transaction, amount)
    allocations: list[tuple[int, int, int, Decimal]] = field(default_factory=list)
    _faults: dict[str, deque[Fault | Refuse | None]] = field(default_factory=lambda: defaultdict(deque))
    _next_id: int = 1000

    # --- faults and bookkeeping -------------------------------------------------------------------

    def fail(self, operation: str, *faults: Fault | Refuse | None) -> None:
        """The next calls of `operation` meet these faults, one each, in order (None: that call
        goes through)."""
        self._faults[operation].extend(faults)

    def count(self, operation: str) -> int:
        return sum(1 for name, _ in self.calls if name == operation)

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _call(self, operation: str, argument: Any, commit: Callable[[], T]) -> T:
        """Record the call, meet its planted fault if any, and run `commit` when AIQ would."""
        self.calls.append((operation, argument))
        fault = self._faults[operation].popleft() if self._faults[operation] else None
        if isinstance(fault, Refuse):
            raise AiqBusinessError(operation, "Failure", fault.error_code, fault.message)
        if fault is TRANSIENT:
            raise AiqTransientError(operation, "HTTP 503")
        if fault is EXPIRED:
            raise AiqAuthenticationError(operation, "token refused 5 times in a row right after a fresh one")
        if fault is NOT_REACHED:
            raise AiqUnknownOutcome(operation, "timed out after sending: outcome unknown")
        result = commit()
        if fault is LOST:
            raise AiqUnknownOutcome(operation, "connection lost after sending: outcome unknown")
        if fault is BUG:
            raise RuntimeError(f"{operation}: an answer nobody foresaw")
        return result

    def _post(self, reference: str | None, when: datetime, amount: Decimal, kind: str, **extra: Any) -> int:
        transaction_id = self._id()
        self.transactions[transaction_id] = TransactionSummary.model_validate(
            {
                "TransactionID": transaction_id,
                "AccountID": 1,
                "TransactionType": kind,
                "ExternalReference": reference,
                "ControlAmount": amount,
                "TransactionDate": when,
                "CreationDate": when,
                **extra,
            }
        )
        return transaction_id

    def posted(self, reference: str) -> list[int]:
        """The transactions under a reference (AIQ allows several: the engine must not)."""
        return sorted(t.TransactionID for t in self.transactions.values() if t.ExternalReference == reference)

    # --- simple documents: batch invoices and journals (posted at once) ----------------------------

    def create_document(self, reference: str, when: datetime, amount: Decimal, kind: str = "SI") -> int:
        return self._call(f"Create{kind}", reference, lambda: self._post(reference, when, amount, kind))

    def create_documents(self, documents: Sequence[tuple[str, datetime, Decimal]]) -> list[RowResult]:
        """A bulk create: one row per document; a `Refuse` planted under ``CreateRow:<reference>``
        refuses that row alone."""

        def commit() -> list[RowResult]:
            rows = []
            for reference, when, amount in documents:
                faults = self._faults[f"CreateRow:{reference}"]
                refusal = faults.popleft() if faults else None
                if isinstance(refusal, Refuse):
                    rows.append(
                        RowResult(status="Failure", error_code=refusal.error_code, error_message="refused")
                    )
                else:
                    rows.append(
                        RowResult(
                            status="Success",
                            error_code="",
                            transaction_id=self._post(reference, when, amount, "SI"),
                        )
                    )
            return rows

        return self._call("CreateBulk", [reference for reference, *_ in documents], commit)

    # --- AiqPort: reads ------------------------------------------------------------------------------

    def transactions_by_external_reference(
        self,
        external_reference: str,
        from_date: datetime,
        to_date: datetime,
        types: Iterable[str] = (),
        account_ids: Iterable[int] = (),
    ) -> list[TransactionSummary]:
        wanted = set(types)

        def read() -> list[TransactionSummary]:
            return [
                t
                for t in self.transactions.values()
                if t.ExternalReference == external_reference
                and from_date <= t.TransactionDate <= to_date
                and (not wanted or t.TransactionType in wanted)
            ]

        return self._call("GetTransactionsByExternalReference", external_reference, read)

    def invoices_by_external_reference(self, external_reference: str) -> list[Invoice]:
        def read() -> list[Invoice]:
            return [
                i.model_copy(deep=True)
                for i in self.invoices.values()
                if isinstance(i, Invoice) and i.ExternalReference == external_reference
            ]

        return self._call("GetInvoicesByExternalReference", external_reference, read)

    def credit_notes_by_external_reference(self, external_reference: str) -> list[CreditNote]:
        def read() -> list[CreditNote]:
            return [
                n.model_copy(deep=True)
                for n in self.invoices.values()
                if isinstance(n, CreditNote) and n.ExternalReference == external_reference
            ]

        return self._call("GetCreditNotesByExternalReference", external_reference, read)

    def get_invoice(self, invoice_id: int) -> Invoice | None:
        def read() -> Invoice | None:
            found = self.invoices.get(invoice_id)
            return found.model_copy(deep=True) if isinstance(found, Invoice) else None

        return self._call("GetInvoice", invoice_id, read)

    # --- AiqPort: item invoices ----------------------------------------------------------------------

    def _with_totals(self, document: Invoice | CreditNote, document_id: int) -> Invoice | CreditNote:
        """AIQ recalculates every line: net = quantity x price, VAT from the tax code, half-up."""
        lines, net, tax = [], Decimal(0), Decimal(0)
        for line in document.Lines:
            line_net = (line.InvoicedQuantity * line.StockItemPrice).quantize(CENT, ROUND_HALF_UP)
            rate = self.tax_rates[line.TaxCode or ""]
            line_tax = (line_net * rate).quantize(CENT, ROUND_HALF_UP)
            lines.append(
                line.model_copy(update={"NetAmount": line_net, "TaxAmount": line_tax, "TaxRate": rate})
            )
            net, tax = net + line_net, tax + line_tax
        update = {"InvoiceID": document_id, "Status": "Processed", "Lines": lines}
        return document.model_copy(
            update=update | {"NetAmount": net, "TaxAmount": tax, "GrossAmount": net + tax}
        )

    def _save(self, document: Invoice | CreditNote) -> int:
        if document.Lines and any((line.TaxCode or "") not in self.tax_rates for line in document.Lines):
            raise AiqBusinessError(
                "SaveInvoiceGetBackInvoiceID", "Failure", "TAX_CODE_DOES_NOT_EXIST", "tax code"
            )
        document_id = self._id()
        self.invoices[document_id] = self._with_totals(document, document_id)
        return document_id

    def save_invoice(self, invoice: Invoice, *, create: bool = True) -> int:
        return self._call("SaveInvoice", invoice.ExternalReference, lambda: self._save(invoice))

    def create_invoices(self, invoices: Sequence[Invoice]) -> list[RowResult]:
        def commit() -> list[RowResult]:
            return [RowResult(status="Created", error_code="", document_id=self._save(i)) for i in invoices]

        return self._call("CreateInvoices", [i.ExternalReference for i in invoices], commit)

    def _post_draft(self, operation: str, document_id: int) -> int:
        document = self.invoices.get(document_id)
        if document is None or document.Status != "Processed":
            raise AiqBusinessError(
                operation, "Failure", "INVOICE_ALREADY_POSTED", f"{document_id} is not a draft"
            )
        kind = "SN" if isinstance(document, CreditNote) else "SI"
        amount = -document.GrossAmount if kind == "SN" else document.GrossAmount
        transaction_id = self._post(
            document.ExternalReference, document.InvoiceDate, amount, kind, InvoiceID=document_id
        )
        self.invoices[document_id] = document.model_copy(update={"Status": "Posted"})
        return transaction_id

    def post_invoice(self, invoice_id: int) -> int:
        return self._call("PostInvoice", invoice_id, lambda: self._post_draft("PostInvoice", invoice_id))

    def post_invoices(self, invoice_ids: Sequence[int]) -> list[RowResult]:
        def commit() -> list[RowResult]:
            rows = []
            for invoice_id in invoice_ids:
                faults = self._faults[f"PostRow:{invoice_id}"]
                refusal = faults.popleft() if faults else None
                if isinstance(refusal, Refuse):
                    rows.append(
                        RowResult(status="Failure", error_code=refusal.error_code, error_message="refused")
                    )
                else:
                    tx = self._post_draft("PostInvoices", invoice_id)
                    rows.append(RowResult(status="Success", error_code="", transaction_id=tx))
            return rows

        return self._call("PostInvoices", list(invoice_ids), commit)

    def cancel_invoice(self, invoice_id: int, reason: str) -> None:
        def commit() -> None:
            document = self.invoices[invoice_id]
            if document.Status != "Processed":
                raise AiqBusinessError("CancelInvoice", "Failure", "INVOICE_ALREADY_POSTED", "only a draft")
            self.invoices[invoice_id] = document.model_copy(update={"Status": "Cancelled"})

        self._call("CancelInvoice", invoice_id, commit)

    # --- AiqPort: credit notes -----------------------------------------------------------------------

    def new_sales_credit_note(self, customer_code: str) -> CreditNote:
        def template() -> CreditNote:
            now = datetime(2026, 1, 1)
            return CreditNote(
                AccountID=1, InvoiceDate=now, DeliveryDate=now, Ledger="Sales", Type="CreditNote"
            )

        return self._call("GetNewSalesCreditNote", customer_code, template)

    def save_credit_note(self, note: CreditNote, *, create: bool = True) -> int:
        return self._call("SaveCreditNote", note.ExternalReference, lambda: self._save(note))

    def post_credit_note(self, credit_note_id: int) -> int:
        return self._call(
            "PostCreditNote", credit_note_id, lambda: self._post_draft("PostCreditNote", credit_note_id)
        )

    # --- helpers for tests ---------------------------------------------------------------------------

    def statuses(self, reference: str) -> list[str]:
        """The statuses of the item invoices under a reference, oldest first."""
        return [
            i.Status
            for _, i in sorted(self.invoices.items())
            if isinstance(i, Invoice) and i.ExternalReference == reference
        ]

    # --- CashPort: receipts and allocations (AIQ's rules: never more than is outstanding) ----------

    def save_sales_receipt(self, receipt: SalesReceipt) -> int:
        return self._call(
            "SaveSalesReceipt",
            receipt.CheckReference,
            lambda: self._post(receipt.CheckReference, receipt.PaymentDate, receipt.PaymentAmount, "SR"),
        )

    def outstanding(self, transaction_id: int) -> Decimal:
        settled = sum((a for _, d, c, a in self.allocations if transaction_id in (d, c)), Decimal(0))
        return self.transactions[transaction_id].ControlAmount - settled

    def allocate(
        self, debit_id: int, credit_id: int, amount: Decimal, on: datetime, reference: str | None = None
    ) -> None:
        def commit() -> None:
            for transaction_id in (debit_id, credit_id):
                if transaction_id not in self.transactions:
                    raise AiqBusinessError(
                        "AllocateTransactions", "Failure", "TRANSACTION_NOT_FOUND", "no such"
                    )
                if amount > self.outstanding(transaction_id):
                    raise AiqBusinessError(
                        "AllocateTransactions",
                        "Failure",
                        "TRANSACTION_CANNOT_ALLOCATE_MORE_THAN_OUTSTANSING_AMOUNT",
                        f"{amount} > {self.outstanding(transaction_id)} on {transaction_id}",
                    )
            number = max((n for n, *_ in self.allocations), default=0) + 1
            self.allocations.append((number, debit_id, credit_id, amount))

        self._call("AllocateTransactions", (debit_id, credit_id, amount), commit)

    def allocations_of(self, transaction_id: int) -> list[AllocationEntry]:
        def read() -> list[AllocationEntry]:
            entries = []
            for number, debit, credit, amount in self.allocations:
                if transaction_id not in (debit, credit):
                    continue
                other = self.transactions[credit if transaction_id == debit else debit]
                entries.append(
                    AllocationEntry(
                        allocation_number=number,
                        other_transaction_id=other.TransactionID,
                        other_type=other.TransactionType,
                        other_reference=other.ExternalReference,
                        amount=amount,
                        allocated_on=other.TransactionDate,
                    )
                )
            return entries

        return self._call("GetAllocationsByTransactionId", transaction_id, read)

    def unallocate(self, transaction_ids: Sequence[int]) -> list[RowResult]:
        def commit() -> list[RowResult]:
            rows = []
            for transaction_id in transaction_ids:
                mine = [a for a in self.allocations if transaction_id in (a[1], a[2])]
                self.allocations = [a for a in self.allocations if a not in mine]
                rows.append(
                    RowResult(status="Success", error_code="SUCCESS")
                    if mine
                    else RowResult(
                        status="Failure", error_code="UNALLOCATE_TRANSACTION_INVALID_TRANSACTION_ID"
                    )
                )
            return rows

        return self._call("UnallocateTransactions", list(transaction_ids), commit)
