"""How a customer's payment settles its invoices: which open items it pays, how much of each, and
what stays on account. Pure rules; AIQ's open items are read by the caller.

The rule:

- a payment that names invoices pays those, in the order named; one that names none pays the
  customer's open invoices oldest first (by due date, then date, then AIQ's transaction ID);
- each invoice takes at most what is still outstanding on it; a payment smaller than an invoice
  leaves the rest outstanding (a partial payment);
- what is left of the payment after every invoice it may pay stays on account, unallocated
  (an overpayment), and is reported;
- a named invoice that is not in AIQ yet waits: nothing of the payment is set against it now, and
  its share is neither put on account nor given to another invoice, so a later run allocates it
  once the invoice is posted;
- an invoice in another currency than the payment's is never paid by it (reported);
- the receipt for payment ``42`` is ``R-42`` (AIQ's receipt reference, its CheckReference).

A paid sale's status for the CRM (`invoice_status`): what is left to pay, when it was paid in full
(the last allocation's date), and the days past its due date while something is left.

Every amount is a Decimal in the invoices' currency; the allocations of a plan plus what stays on
account plus what waits always add up to the payment, to the penny.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from aiq_flows.domain.fields import (
    Code,
    Day,
    OptionalCode,
    PositiveAmount,
    Rejection,
    SourceKey,
    rejection_from,
)
from aiq_flows.domain.references import receipt_reference, sale_reference

__all__ = ["receipt_reference"]  # the receipt's reference format lives with every other one


@dataclass(frozen=True)
class OpenInvoice:
    """An invoice of the customer's as AIQ holds it now."""

    transaction_id: int
    reference: str  # the external reference (the sale's)
    due: date
    dated: date
    outstanding: Decimal  # what is left to pay, >= 0
    currency: str | None = None  # None: not known (then not checked)


@dataclass(frozen=True)
class Allocation:
    invoice_transaction_id: int
    invoice_reference: str
    amount: Decimal


@dataclass(frozen=True)
class AllocationPlan:
    payment_id: str
    amount: Decimal
    allocations: tuple[Allocation, ...] = ()
    on_account: Decimal = Decimal(0)  # overpaid: stays unallocated on the customer's account
    waiting: tuple[str, ...] = ()  # named invoices not in AIQ yet
    waiting_amount: Decimal = Decimal(0)  # kept back for them
    other_currency: tuple[str, ...] = ()  # named invoices in another currency: not paid by it

    @property
    def allocated(self) -> Decimal:
        return sum((a.amount for a in self.allocations), Decimal(0))


@dataclass(frozen=True)
class Payment:
    payment_id: str
    customer: str  # the AIQ customer code
    amount: Decimal  # > 0
    paid_on: date
    invoice_references: tuple[str, ...] = field(default_factory=tuple)  # the sales it pays, if named
    bank_account: str | None = None  # the bank GL account it was paid into (else the deployment's)
    refund_of: str | None = None  # a refund or chargeback: the payment whose allocations it reverses
    currency: str | None = None  # None: the invoices' (not checked)


class PaymentKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"  # a refund or a chargeback


class PaymentRecord(BaseModel):
    """A payment as a source holds it, each value parsed on its own (a bad one refuses the record,
    naming the field and the rule)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    payment_id: SourceKey
    customer: Code
    paid_on: Day
    amount: PositiveAmount
    bank_account: OptionalCode = None
    invoices: tuple[str, ...] = ()  # the sale ids it pays
    kind: PaymentKind = PaymentKind.PAYMENT
    refund_of: str | None = None
    currency: OptionalCode = None

    @field_validator("invoices", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> tuple[str, ...]:
        """Sale ids as a list, or as text separated by commas, semicolons or spaces."""
        if value is None or value == "":
            return ()
        if isinstance(value, list | tuple):
            return tuple(str(v).strip() for v in value if str(v).strip())
        return tuple(part for part in str(value).replace(";", ",").replace(" ", ",").split(",") if part)

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> Any:
        text = str(value or "payment").strip().lower()
        return "refund" if text in ("refund", "chargeback") else text


def validate_payment(raw: Mapping[str, Any], sale_prefix: str = "S-") -> Payment | Rejection:
    """A source's payment as the cash side takes it, or a Rejection naming the field and the rule."""
    try:
        record = PaymentRecord.model_validate(raw)
    except ValidationError as error:
        return rejection_from(error, raw, "payment_id", "payment")
    if record.kind is PaymentKind.REFUND and not record.refund_of:
        return Rejection(
            record.payment_id, None, "refund_of", "a refund names the payment it reverses", "payment"
        )
    return Payment(
        payment_id=record.payment_id,
        customer=record.customer,
        amount=record.amount,
        paid_on=record.paid_on,
        invoice_references=tuple(sale_reference(sale, sale_prefix) for sale in record.invoices),
        bank_account=record.bank_account,
        refund_of=record.refund_of,
        currency=record.currency,
    )


@dataclass(frozen=True)
class InvoiceStatus:
    outstanding: Decimal
    paid_at: date | None
    days_overdue: int


def invoice_status(
    outstanding: Decimal, due: date, allocated_on: Sequence[date], today: date
) -> InvoiceStatus:
    """What sales should see of an invoice: what is left, when it was paid in full (its last
    allocation), and how many days past due it is while something is left (0 otherwise)."""
    if outstanding <= 0:
        return InvoiceStatus(Decimal(0), max(allocated_on, default=None), 0)
    return InvoiceStatus(outstanding, None, max(0, (today - due).days))


def plan_allocations(payment: Payment, open_invoices: Sequence[OpenInvoice]) -> AllocationPlan:
    """Settle ``payment`` against the customer's open invoices (see the module's rule).

    ``open_invoices`` are the customer's invoices with something outstanding, each at most once.
    """
    remaining = payment.amount
    allocations: list[Allocation] = []
    waiting: list[str] = []
    other_currency = tuple(
        i.reference
        for i in open_invoices
        if payment.currency and i.currency and i.currency != payment.currency
    )
    by_reference = {i.reference: i for i in open_invoices if i.reference not in other_currency}
    if payment.invoice_references:
        targets = []
        for reference in dict.fromkeys(payment.invoice_references):  # named once each, in order
            invoice = by_reference.get(reference)
            if invoice is None and reference not in other_currency:
                waiting.append(reference)
            elif invoice is None:
                continue
            else:
                targets.append(invoice)
    else:
        targets = sorted(by_reference.values(), key=lambda i: (i.due, i.dated, i.transaction_id))
    for invoice in targets:
        if remaining <= 0:
            break
        amount = min(remaining, invoice.outstanding)
        if amount > 0:
            allocations.append(Allocation(invoice.transaction_id, invoice.reference, amount))
            remaining -= amount
    # What a named-but-missing invoice may take waits for it; the rest is on account.
    waiting_amount = remaining if waiting else Decimal(0)
    return AllocationPlan(
        payment_id=payment.payment_id,
        amount=payment.amount,
        allocations=tuple(allocations),
        on_account=remaining - waiting_amount,
        waiting=tuple(waiting),
        waiting_amount=waiting_amount,
        other_currency=tuple(
            r for r in other_currency if not payment.invoice_references or r in payment.invoice_references
        ),
    )
