"""The allocation rule: which open items a payment settles (domain/payments.py)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from aiq_flows.domain.payments import OpenInvoice, Payment, plan_allocations, receipt_reference

D = Decimal


def invoice(tid: int, outstanding: str, due_day: int, reference: str | None = None) -> OpenInvoice:
    day = date(2026, 10, 1) + timedelta(days=due_day)
    return OpenInvoice(tid, reference or f"S-{tid}", day, day - timedelta(days=30), D(outstanding))


def payment(amount: str, *references: str) -> Payment:
    return Payment("P1", "ACME01", D(amount), date(2026, 11, 2), tuple(references))


def test_the_receipt_reference_is_r_and_the_payment_id() -> None:
    assert receipt_reference("42") == "R-42"


def test_a_payment_naming_no_invoice_pays_the_oldest_first_and_leaves_a_partial() -> None:
    plan = plan_allocations(payment("150.00"), [invoice(3, "100.00", 20), invoice(1, "100.00", 5)])
    assert [(a.invoice_transaction_id, a.amount) for a in plan.allocations] == [
        (1, D("100.00")),
        (3, D("50.00")),
    ]
    assert plan.on_account == 0 and plan.waiting == ()


def test_an_overpayment_stays_on_account() -> None:
    plan = plan_allocations(payment("130.00", "S-1"), [invoice(1, "120.00", 0), invoice(2, "50.00", 1)])
    assert [(a.invoice_transaction_id, a.amount) for a in plan.allocations] == [(1, D("120.00"))]
    assert plan.on_account == D("10.00")  # a named payment never pays another invoice


def test_named_invoices_are_paid_in_the_order_named() -> None:
    plan = plan_allocations(payment("100.00", "S-2", "S-1"), [invoice(1, "80.00", 0), invoice(2, "80.00", 9)])
    assert [(a.invoice_reference, a.amount) for a in plan.allocations] == [
        ("S-2", D("80.00")),
        ("S-1", D("20.00")),
    ]


def test_a_payment_before_its_invoice_waits_for_it() -> None:
    plan = plan_allocations(payment("120.00", "S-9"), [invoice(1, "500.00", 0)])
    assert plan.allocations == () and plan.waiting == ("S-9",)
    assert plan.waiting_amount == D("120.00") and plan.on_account == 0


def test_a_payment_for_one_posted_and_one_missing_invoice_pays_one_and_keeps_the_rest_back() -> None:
    plan = plan_allocations(payment("200.00", "S-1", "S-9"), [invoice(1, "120.00", 0)])
    assert [(a.invoice_reference, a.amount) for a in plan.allocations] == [("S-1", D("120.00"))]
    assert (plan.waiting, plan.waiting_amount, plan.on_account) == (("S-9",), D("80.00"), D(0))


money = st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2)
open_items = st.lists(st.tuples(money, st.integers(min_value=0, max_value=400)), min_size=0, max_size=12).map(
    lambda rows: [invoice(n + 1, str(amount), due) for n, (amount, due) in enumerate(rows)]
)


@given(amount=money, invoices=open_items, named=st.lists(st.integers(min_value=1, max_value=15), max_size=5))
def test_every_penny_of_a_payment_is_allocated_on_account_or_waiting(
    amount: Decimal, invoices: list[OpenInvoice], named: list[int]
) -> None:
    plan = plan_allocations(payment(str(amount), *(f"S-{n}" for n in named)), invoices)
    assert plan.allocated + plan.on_account + plan.waiting_amount == amount
    assert plan.on_account >= 0 and plan.waiting_amount >= 0
    outstanding = {i.transaction_id: i.outstanding for i in invoices}
    ids = [a.invoice_transaction_id for a in plan.allocations]
    assert len(ids) == len(set(ids))  # each invoice at most once
    assert all(0 < a.amount <= outstanding[a.invoice_transaction_id] for a in plan.allocations)
    assert not (plan.waiting and plan.on_account)  # money kept for a missing invoice is not on account
    if not named:
        # oldest first: only the last invoice paid may be paid in part, and none older is skipped
        paid = {a.invoice_transaction_id: a.amount for a in plan.allocations}
        order = sorted(invoices, key=lambda i: (i.due, i.dated, i.transaction_id))
        taken = [paid.get(i.transaction_id, D(0)) for i in order]
        full = [t == i.outstanding for t, i in zip(taken, order, strict=True)]
        first_short = next((n for n, ok in enumerate(full) if not ok), len(full))
        assert all(t == 0 for t in taken[first_short + 1 :])
        assert plan.on_account == 0 or all(full)


def test_a_source_payment_is_parsed_per_field_and_refused_by_name() -> None:
    from aiq_flows.domain.fields import Rejection
    from aiq_flows.domain.payments import validate_payment

    good = validate_payment(
        {
            "payment_id": 7,
            "customer": "acme01",
            "paid_on": "02/11/2026",
            "amount": "120.00",
            "invoices": "12; 13",
        },
        "S-",
    )
    assert good == Payment("7", "ACME01", D("120.00"), date(2026, 11, 2), ("S-12", "S-13"))
    bad = validate_payment(
        {"payment_id": 8, "customer": "ACME01", "paid_on": "2026-11-02", "amount": "£12.00"}
    )
    assert isinstance(bad, Rejection) and bad.field == "amount" and "£12.00" in bad.message
    refund = validate_payment(
        {
            "payment_id": 9,
            "customer": "ACME01",
            "paid_on": "2026-11-03",
            "amount": "120",
            "kind": "Chargeback",
        }
    )
    assert isinstance(refund, Rejection) and refund.field == "refund_of"


def test_payments_reconcile_against_receipts() -> None:
    from aiq_flows.domain.reconciliation import Difference, PaymentSide, ReceiptSide, reconcile_payments

    payments = [
        PaymentSide("1", "R-1", D("120.00"), True, "allocated"),
        PaymentSide("2", "R-2", D("50.00"), True, "on_account"),
        PaymentSide("3", "R-3", D("10.00"), True, None),  # never synced
        PaymentSide("4", "R-4", D("70.00"), True, "refunded"),
        PaymentSide("5", "R-5", None, False, "quarantined"),
    ]
    receipts = [
        ReceiptSide(11, "R-1", D("120.00"), D("20.00")),  # says allocated, 20 left
        ReceiptSide(12, "R-2", D("55.00"), D("55.00")),  # amount differs
        ReceiptSide(14, "R-4", D("70.00"), D("0")),  # refunded, still allocated
        ReceiptSide(19, "R-9", D("1.00"), D("1.00")),  # no payment
        ReceiptSide(20, "X-1", D("1.00"), D("1.00")),  # not ours
    ]
    found = [(f.kind, f.reference) for f in reconcile_payments(payments, receipts)]
    assert found == [
        (Difference.ALLOCATION, "R-1"),
        (Difference.RECEIPT_AMOUNT, "R-2"),
        (Difference.PAYMENT_WITHOUT_RECEIPT, "R-3"),
        (Difference.ALLOCATION, "R-4"),
        (Difference.RECEIPT_WITHOUT_PAYMENT, "R-9"),
    ]
