"""Exactly-once cash: a customer's payment becomes one AIQ receipt and the allocations its plan
asks for, each exactly once, whatever answers are lost and however often the run is repeated.

The steps for a payment (the store's kinds in brackets):

1. the receipt ``R-<payment id>`` [sales_receipt], through the same state machine as every other
   document (`ExactlyOnceSender`): the store, a claim, AIQ read by the receipt's reference (its
   CheckReference; type ``SR``), then the create; a lost answer is read back before any resend;
2. AIQ read again: what the receipt has already settled (``GetAllocationsByTransactionId``) and the
   invoices it may pay (their outstanding amounts, from AIQ). The plan (`domain.payments`) is made
   from what is left of the receipt, so a re-run after a lost answer plans nothing twice;
3. each allocation [allocation], keyed ``AL-<receipt>-<invoice>`` (AIQ's transaction IDs), again
   through the state machine: found when the receipt already lists the invoice, else allocated and
   read back. AIQ itself refuses to allocate more than is outstanding, a second guard;
4. a refund [unallocation], keyed ``UN-<receipt>``: the receipt's allocations are undone (AIQ's
   ``UnallocateTransactions``), found done when the receipt lists none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Protocol

from aiq_flows.domain.outcomes import Outcome
from aiq_flows.domain.payments import (
    AllocationPlan,
    OpenInvoice,
    Payment,
    plan_allocations,
    receipt_reference,
)
from aiq_flows.engine.delivery import Delivery, Document, ExactlyOnceSender
from aiq_flows.gateway.errors import AiqUnknownOutcome
from aiq_flows.gateway.models import (
    AllocationEntry,
    CustomerStatement,
    RowResult,
    SalesReceipt,
    TransactionSummary,
)

RECEIPT_KIND, ALLOCATION_KIND, UNALLOCATION_KIND = "sales_receipt", "allocation", "unallocation"
RECEIPT_TYPE = "SR"
LOOKUP_WINDOW = timedelta(days=400)  # a receipt is found by reference within this of its date


class ReferenceLookup(Protocol):
    def transactions_by_external_reference(
        self,
        external_reference: str,
        from_date: datetime,
        to_date: datetime,
        types: Sequence[str] = (),
        account_ids: Sequence[int] = (),
    ) -> list[TransactionSummary]: ...


class CashPort(ReferenceLookup, Protocol):
    """The AIQ calls the cash side makes (`AiqGateway` live, `FakeAiq` in memory)."""

    def save_sales_receipt(self, receipt: SalesReceipt) -> int: ...

    def allocate(
        self, debit_id: int, credit_id: int, amount: Decimal, on: datetime, reference: str | None = None
    ) -> None: ...

    def allocations_of(self, transaction_id: int) -> list[AllocationEntry]: ...

    def unallocate(self, transaction_ids: Sequence[int]) -> list[RowResult]: ...


@dataclass(frozen=True)
class PaymentOutcome:
    payment_id: str
    customer: str
    amount: Decimal
    receipt_reference: str
    outcome: Outcome  # the receipt's: created, already present, failed (refused), held (not sent)
    receipt_transaction_id: int | None = None
    allocated_now: Decimal = Decimal(0)
    allocated: Decimal = Decimal(0)  # everything the receipt has settled, this run or before
    on_account: Decimal = Decimal(0)  # overpaid: unallocated on the customer's account
    waiting: tuple[str, ...] = ()  # named invoices not in AIQ yet
    waiting_amount: Decimal = Decimal(0)
    not_allocated: Decimal = Decimal(0)  # allocations refused or not sent this run: tried again next
    other_currency: tuple[str, ...] = ()  # named invoices in another currency: not paid by it
    invoices: tuple[str, ...] = ()  # the invoices (references) it names or settled: their status moved
    error_code: str | None = None
    reason: str | None = None

    @property
    def adds_up(self) -> bool:
        """Every penny of a payment with a receipt is settled, on account, waiting or still to do."""
        if self.receipt_transaction_id is None:
            return True
        parts = self.allocated + self.on_account + self.waiting_amount + self.not_allocated
        return parts == self.amount


def _day(on: date) -> datetime:
    return datetime.combine(on, time())


class PaymentSettler:
    """Settles payments of one entity (see the module's steps). ``invoices`` gives, for a customer
    and the references a payment names, the invoices AIQ holds: named ones even when paid (0
    outstanding), and every open one when the payment names none."""

    def __init__(
        self,
        aiq: CashPort,
        sender: ExactlyOnceSender,
        invoices: Callable[[str, Sequence[str]], list[OpenInvoice]],
        bank_account: str,
    ) -> None:
        self.aiq, self.sender, self.invoices, self.bank_account = aiq, sender, invoices, bank_account

    # --- the receipt -------------------------------------------------------------------------------

    def _find_receipt(self, payment: Payment) -> int | None:
        reference = receipt_reference(payment.payment_id)
        found = self.aiq.transactions_by_external_reference(
            reference,
            _day(payment.paid_on) - LOOKUP_WINDOW,
            _day(payment.paid_on) + LOOKUP_WINDOW,
            [RECEIPT_TYPE],
        )
        return min((t.TransactionID for t in found), default=None)

    def receipt_document(self, payment: Payment, bank_account: str | None = None) -> Document:
        reference = receipt_reference(payment.payment_id)
        receipt = SalesReceipt(
            CustomerCode=payment.customer,
            CheckReference=reference,
            PaymentAmount=payment.amount,
            BankAccountCode=bank_account or payment.bank_account or self.bank_account,
            PaymentDate=_day(payment.paid_on),
            Description=f"Payment {payment.payment_id}",
        )
        return Document(
            reference=reference,
            kind=RECEIPT_KIND,
            source_id=payment.payment_id,
            source_version=f"{payment.customer}|{payment.amount}|{payment.paid_on}",
            find=lambda: self._find_receipt(payment),
            create=lambda: self.aiq.save_sales_receipt(receipt),
        )

    # --- allocations -------------------------------------------------------------------------------

    def _allocation_document(
        self, payment: Payment, receipt_id: int, invoice: int, amount: Decimal, fresh: bool
    ) -> Document:
        """``fresh``: the receipt was made by this very call, so nothing can be allocated from it
        yet and the first lookup is skipped; every later one (after a lost answer) reads AIQ."""
        asked = [not fresh]

        def find() -> int | None:
            if not asked[0]:
                asked[0] = True
                return None
            entries = self.aiq.allocations_of(receipt_id)
            return next((invoice for e in entries if e.other_transaction_id == invoice), None)

        def create() -> int:
            self.aiq.allocate(
                invoice, receipt_id, amount, _day(payment.paid_on), receipt_reference(payment.payment_id)
            )
            return invoice  # the transaction it settled: what the store keeps for an allocation

        return Document(
            reference=f"AL-{receipt_id}-{invoice}",
            kind=ALLOCATION_KIND,
            source_id=payment.payment_id,
            source_version=str(amount),
            find=find,
            create=create,
        )

    def plan(self, payment: Payment, receipt_id: int, fresh: bool = False) -> tuple[AllocationPlan, Decimal]:
        """The allocations still to make (from what is left of the receipt), and what it settled
        before (nothing, for a receipt this call made: AIQ is not asked)."""
        settled = [] if fresh else self.aiq.allocations_of(receipt_id)
        before = sum((e.amount for e in settled), Decimal(0))
        paid = {e.other_reference for e in settled}
        named = tuple(ref for ref in payment.invoice_references if ref not in paid)
        rest = replace(payment, amount=payment.amount - before, invoice_references=named)
        if rest.amount <= 0 or (payment.invoice_references and not named):
            return AllocationPlan(
                payment.payment_id, rest.amount, on_account=max(rest.amount, Decimal(0))
            ), before
        return plan_allocations(rest, self.invoices(payment.customer, named)), before

    # --- a payment, a refund -----------------------------------------------------------------------

    def settle(self, payment: Payment, bank_account: str | None = None) -> PaymentOutcome:
        reference = receipt_reference(payment.payment_id)
        base = PaymentOutcome(
            payment.payment_id, payment.customer, payment.amount, reference, Outcome.CREATED
        )
        receipt = self.sender.send(self.receipt_document(payment, bank_account))
        if receipt.transaction_id is None:
            return replace(
                base, outcome=receipt.outcome, error_code=receipt.error_code, reason=receipt.reason
            )
        fresh = receipt.outcome is Outcome.CREATED  # made now, under this run's claim
        plan, before = self.plan(payment, receipt.transaction_id, fresh)
        documents = [
            self._allocation_document(
                payment, receipt.transaction_id, a.invoice_transaction_id, a.amount, fresh
            )
            for a in plan.allocations
        ]
        deliveries = self.sender.send_each(documents) if documents else {}
        sent = [(a.amount, deliveries[d.reference]) for a, d in zip(plan.allocations, documents, strict=True)]
        now = sum((amount for amount, delivery in sent if _done(delivery)), Decimal(0))
        problems = [delivery for _, delivery in sent if not _done(delivery)]
        return replace(
            base,
            outcome=receipt.outcome,
            receipt_transaction_id=receipt.transaction_id,
            allocated_now=now,
            allocated=before + now,
            on_account=plan.on_account,
            waiting=plan.waiting,
            waiting_amount=plan.waiting_amount,
            other_currency=plan.other_currency,
            invoices=tuple(
                dict.fromkeys([*payment.invoice_references, *(a.invoice_reference for a in plan.allocations)])
            ),
            not_allocated=sum((amount for amount, delivery in sent if not _done(delivery)), Decimal(0)),
            error_code=problems[0].error_code if problems else None,
            reason="; ".join(p.reason for p in problems if p.reason) or receipt.reason,
        )

    def refund(self, payment: Payment) -> Delivery:
        """Undo every allocation of the payment's receipt (a refund or a chargeback): the invoices
        are open again. Nothing to undo when the receipt was never made or settles nothing."""
        receipt_id = self._find_receipt(payment)
        if receipt_id is None:
            return Delivery(Outcome.ALREADY_PRESENT, None, reason="no receipt: nothing to undo")

        def find() -> int | None:
            return receipt_id if not self.aiq.allocations_of(receipt_id) else None

        def create() -> int:
            [row] = self.aiq.unallocate([receipt_id])
            if not row.ok:
                raise AiqUnknownOutcome("UnallocateTransactions", row.error_message or row.error_code)
            return receipt_id

        document = Document(
            reference=f"UN-{receipt_id}",
            kind=UNALLOCATION_KIND,
            source_id=payment.payment_id,
            source_version="refund",
            find=find,
            create=create,
        )
        return self.sender.send(document)


def _done(delivery: Delivery) -> bool:
    return delivery.transaction_id is not None


class StatementsPort(ReferenceLookup, Protocol):
    def customer_statements(
        self, up_to: datetime, customer_codes: Sequence[str], *, show_zeros: bool = True
    ) -> list[CustomerStatement]: ...


def invoices_in_aiq(
    aiq: StatementsPort, up_to: datetime
) -> Callable[[str, Sequence[str]], list[OpenInvoice]]:
    """The invoices a payment may pay, read from AIQ: each one it names, by reference, with what is
    left of it (a paid one with 0: neither waited for nor paid twice); for a payment naming none,
    the customer's open sales invoices (its statement's open items)."""

    def invoices(customer: str, named: Sequence[str]) -> list[OpenInvoice]:
        if named:  # each by its reference, with what is left of it (0: paid, so not waited for)
            found = []
            for reference in named:
                posted = aiq.transactions_by_external_reference(
                    reference, up_to - timedelta(days=3650), up_to + LOOKUP_WINDOW, ["SI"]
                )
                if posted:
                    first = min(posted, key=lambda t: t.TransactionID)
                    day = first.TransactionDate.date()
                    left = (
                        first.OutstandingAmount
                        if first.OutstandingAmount is not None
                        else first.ControlAmount
                    )
                    found.append(
                        OpenInvoice(first.TransactionID, reference, day, day, left, first.CurrencyCode)
                    )
            return found
        statements = aiq.customer_statements(up_to, [customer], show_zeros=True)
        return [
            OpenInvoice(
                line.TransactionReference,
                line.ExternalReference,
                line.DueDate.date(),
                line.TransactionDate.date(),
                line.OutstandingAmount,
            )
            for statement in statements
            for line in statement.transactions
            if line.Type == "SI" and line.ExternalReference and line.OutstandingAmount > 0
        ]

    return invoices
