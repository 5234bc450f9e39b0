"""Reconciliation: the CRM and AccountsIQ compared for a date range, every difference named.

Rules only; the caller reads the CRM's sales and one sweep of AIQ's sales invoices.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Difference(StrEnum):
    MISSING_IN_AIQ = "sale without an AIQ document"
    NO_SALE = "AIQ document without a CRM sale"
    AMOUNT = "amount differs"
    CUSTOMER = "customer differs"
    DUPLICATE = "duplicate external reference in AIQ"
    BAD_WRITE_BACK = "written-back transaction ID does not exist"
    PAYMENT_WITHOUT_RECEIPT = "payment without an AIQ receipt"
    RECEIPT_WITHOUT_PAYMENT = "AIQ receipt without a payment"
    RECEIPT_AMOUNT = "receipt amount differs"
    ALLOCATION = "allocation differs"


@dataclass(frozen=True)
class CrmSide:
    sale_id: int | str
    reference: str  # the external reference the sale maps to (its source's prefix and id)
    customer_code: str | None  # None: not readable (the comparison is left out)
    gross: Decimal | None  # None: not readable (the comparison is left out)
    expected_in_aiq: bool  # not quarantined: it should have reached AIQ
    transaction_id: int | None  # what the sync wrote back


@dataclass(frozen=True)
class AiqSide:
    transaction_id: int
    reference: str
    customer_code: str | None
    gross: Decimal


@dataclass(frozen=True)
class Finding:
    kind: Difference
    reference: str
    crm: str = ""
    aiq: str = ""


def reconcile(
    crm: Iterable[CrmSide],
    aiq: Iterable[AiqSide],
    ours: str = "S-",
    existing_ids: frozenset[int] = frozenset(),
) -> list[Finding]:
    """Every difference between the two sides. AIQ documents are ours when their reference has
    our prefix; ``existing_ids`` are transaction IDs known to exist outside the compared range
    (a written-back ID is only reported when AIQ has it nowhere)."""
    by_reference: dict[str, list[AiqSide]] = defaultdict(list)
    for document in aiq:
        by_reference[document.reference].append(document)
    all_ids = {d.transaction_id for docs in by_reference.values() for d in docs} | existing_ids
    findings: list[Finding] = []
    seen: set[str] = set()
    for sale in crm:
        seen.add(sale.reference)
        documents = by_reference.get(sale.reference, [])
        if sale.transaction_id is not None and sale.transaction_id not in all_ids:
            findings.append(Finding(Difference.BAD_WRITE_BACK, sale.reference, str(sale.transaction_id)))
        if not documents:
            if sale.expected_in_aiq:
                findings.append(Finding(Difference.MISSING_IN_AIQ, sale.reference, f"sale {sale.sale_id}"))
            continue
        if len(documents) > 1:
            ids = ", ".join(str(d.transaction_id) for d in documents)
            findings.append(Finding(Difference.DUPLICATE, sale.reference, aiq=f"transactions {ids}"))
        document = documents[0]
        if sale.gross is not None and sale.gross != document.gross:
            findings.append(Finding(Difference.AMOUNT, sale.reference, str(sale.gross), str(document.gross)))
        if sale.customer_code is not None and sale.customer_code != document.customer_code:
            findings.append(
                Finding(
                    Difference.CUSTOMER,
                    sale.reference,
                    sale.customer_code or "",
                    document.customer_code or "",
                )
            )
    for reference, documents in sorted(by_reference.items()):
        if reference.startswith(ours) and reference not in seen:
            ids = ", ".join(str(d.transaction_id) for d in documents)
            findings.append(Finding(Difference.NO_SALE, reference, aiq=f"transactions {ids}"))
    return findings


@dataclass(frozen=True)
class PaymentSide:
    payment_id: str
    reference: str  # its receipt's: R-<payment id>
    amount: Decimal | None  # None: not readable
    expected_in_aiq: bool  # neither quarantined nor refunded before it reached AIQ
    status: str | None  # what the receipts sync wrote back (allocated, on_account, ...)


@dataclass(frozen=True)
class ReceiptSide:
    transaction_id: int
    reference: str
    amount: Decimal
    unallocated: Decimal  # what the receipt has not settled


def reconcile_payments(
    payments: Iterable[PaymentSide], receipts: Iterable[ReceiptSide], ours: str = "R-"
) -> list[Finding]:
    """Payments against AIQ's receipts: a payment without its receipt, a receipt of ours without
    a payment, a different amount, and an allocation that is not what the payment's status says
    (``allocated``: nothing left unallocated; ``refunded``: nothing allocated)."""
    by_reference: dict[str, list[ReceiptSide]] = defaultdict(list)
    for receipt in receipts:
        by_reference[receipt.reference].append(receipt)
    findings: list[Finding] = []
    seen: set[str] = set()
    for payment in payments:
        seen.add(payment.reference)
        found = by_reference.get(payment.reference, [])
        if not found:
            if payment.expected_in_aiq:
                findings.append(
                    Finding(
                        Difference.PAYMENT_WITHOUT_RECEIPT, payment.reference, f"payment {payment.payment_id}"
                    )
                )
            continue
        if len(found) > 1:
            ids = ", ".join(str(r.transaction_id) for r in found)
            findings.append(Finding(Difference.DUPLICATE, payment.reference, aiq=f"transactions {ids}"))
        receipt = found[0]
        if payment.amount is not None and payment.amount != receipt.amount:
            findings.append(
                Finding(
                    Difference.RECEIPT_AMOUNT, payment.reference, str(payment.amount), str(receipt.amount)
                )
            )
        if payment.status == "allocated" and receipt.unallocated != 0:
            findings.append(
                Finding(
                    Difference.ALLOCATION,
                    payment.reference,
                    "allocated",
                    f"{receipt.unallocated} unallocated",
                )
            )
        if payment.status == "refunded" and receipt.unallocated != receipt.amount:
            settled = receipt.amount - receipt.unallocated
            findings.append(
                Finding(Difference.ALLOCATION, payment.reference, "refunded", f"{settled} allocated")
            )
    for reference, found in sorted(by_reference.items()):
        if reference.startswith(ours) and reference not in seen:
            ids = ", ".join(str(r.transaction_id) for r in found)
            findings.append(Finding(Difference.RECEIPT_WITHOUT_PAYMENT, reference, aiq=f"transactions {ids}"))
    return findings
