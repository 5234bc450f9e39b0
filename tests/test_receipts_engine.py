"""Exactly-once cash (`engine/receipts.py`) on the in-memory AccountsIQ and a real SQLite store:
every lost answer, every re-run, finds one receipt and one allocation per invoice, and every penny
of a payment accounted for. The same against the HTTP sandbox: tests/test_receipts_end_to_end.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from aiq_flows.domain.outcomes import Outcome
from aiq_flows.domain.payments import OpenInvoice, Payment
from aiq_flows.engine.delivery import ExactlyOnceSender
from aiq_flows.engine.fake import LOST, NOT_REACHED, TRANSIENT, FakeAiq, Refuse
from aiq_flows.engine.receipts import PaymentSettler
from aiq_flows.store.outbox import DocumentStore

ENTITY, DAY = "E1", datetime(2026, 11, 2)
D = Decimal


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DocumentStore]:
    store = DocumentStore(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    store.dispose()


@pytest.fixture
def aiq() -> FakeAiq:
    return FakeAiq()


def invoices_of(aiq: FakeAiq) -> Callable[[str, Sequence[str]], list[OpenInvoice]]:
    def invoices(customer: str, named: Sequence[str]) -> list[OpenInvoice]:
        found = [
            OpenInvoice(
                t.TransactionID,
                t.ExternalReference or "",
                DAY.date(),
                DAY.date(),
                aiq.outstanding(t.TransactionID),
            )
            for t in aiq.transactions.values()
            if t.TransactionType == "SI"
        ]
        return (
            [i for i in found if i.reference in named] if named else [i for i in found if i.outstanding > 0]
        )

    return invoices


def settler(aiq: FakeAiq, store: DocumentStore, run: str = "run-1") -> PaymentSettler:
    return PaymentSettler(aiq, ExactlyOnceSender(store, ENTITY, run), invoices_of(aiq), "1200")


def pay(amount: str, *references: str, payment_id: str = "P1") -> Payment:
    return Payment(payment_id, "ACME01", D(amount), date(2026, 11, 2), tuple(references))


def test_a_payment_becomes_one_receipt_and_one_allocation_and_a_rerun_sends_nothing(
    aiq: FakeAiq, store: DocumentStore
) -> None:
    invoice = aiq.create_document("S-1", DAY, D("120.00"))
    first = settler(aiq, store).settle(pay("120.00", "S-1"))
    assert (first.outcome, first.allocated_now, first.on_account) == (Outcome.CREATED, D("120.00"), 0)
    assert first.adds_up and aiq.outstanding(invoice) == 0
    writes = (aiq.count("SaveSalesReceipt"), aiq.count("AllocateTransactions"))
    again = settler(aiq, store, "run-2").settle(pay("120.00", "S-1"))
    assert (again.outcome, again.allocated_now, again.allocated) == (Outcome.ALREADY_PRESENT, 0, D("120.00"))
    assert (aiq.count("SaveSalesReceipt"), aiq.count("AllocateTransactions")) == writes == (1, 1)
    assert aiq.posted("R-P1") == [first.receipt_transaction_id] and len(aiq.allocations) == 1


@pytest.mark.parametrize("fault", [LOST, NOT_REACHED, TRANSIENT])
def test_a_lost_receipt_answer_is_read_back_never_resent_blind(
    aiq: FakeAiq, store: DocumentStore, fault: object
) -> None:
    aiq.create_document("S-1", DAY, D("120.00"))
    aiq.fail("SaveSalesReceipt", fault)  # type: ignore[arg-type]
    first = settler(aiq, store).settle(pay("120.00", "S-1"))
    second = settler(aiq, store, "run-2").settle(pay("120.00", "S-1"))
    assert len(aiq.posted("R-P1")) == 1 and len(aiq.allocations) == 1
    assert first.adds_up and second.adds_up
    assert second.allocated == D("120.00")  # by the first run, or by the second once the receipt exists


@pytest.mark.parametrize("fault", [LOST, NOT_REACHED])
def test_a_lost_allocation_answer_is_read_back(aiq: FakeAiq, store: DocumentStore, fault: object) -> None:
    aiq.create_document("S-1", DAY, D("120.00"))
    aiq.fail("AllocateTransactions", fault)  # type: ignore[arg-type]
    first = settler(aiq, store).settle(pay("120.00", "S-1"))
    settler(aiq, store, "run-2").settle(pay("120.00", "S-1"))
    settler(aiq, store, "run-3").settle(pay("120.00", "S-1"))
    assert len(aiq.allocations) == 1 and aiq.count("SaveSalesReceipt") == 1
    assert first.adds_up
    if fault is LOST:  # committed: found at once
        assert first.allocated_now == D("120.00") and aiq.count("AllocateTransactions") == 1


def test_partial_over_and_oldest_first(aiq: FakeAiq, store: DocumentStore) -> None:
    old, new = aiq.create_document("S-1", DAY, D("100.00")), aiq.create_document("S-2", DAY, D("100.00"))
    partial = settler(aiq, store).settle(pay("150.00", payment_id="P1"))  # names none: oldest first
    assert (aiq.outstanding(old), aiq.outstanding(new)) == (0, D("50.00")) and partial.on_account == 0
    over = settler(aiq, store).settle(pay("80.00", payment_id="P2"))
    assert (over.allocated_now, over.on_account, aiq.outstanding(new)) == (D("50.00"), D("30.00"), 0)
    assert partial.adds_up and over.adds_up


def test_a_payment_before_its_invoice_waits_then_a_later_run_allocates_it(
    aiq: FakeAiq, store: DocumentStore
) -> None:
    early = settler(aiq, store).settle(pay("120.00", "S-9"))
    assert (early.waiting, early.waiting_amount, early.allocated) == (
        ("S-9",),
        D("120.00"),
        0,
    ) and early.adds_up
    invoice = aiq.create_document("S-9", DAY, D("120.00"))
    later = settler(aiq, store, "run-2").settle(pay("120.00", "S-9"))
    assert (later.allocated_now, later.waiting, aiq.outstanding(invoice)) == (D("120.00"), (), 0)
    assert aiq.count("SaveSalesReceipt") == 1


def test_a_refused_allocation_is_reported_and_not_resent_unchanged(
    aiq: FakeAiq, store: DocumentStore
) -> None:
    aiq.create_document("S-1", DAY, D("120.00"))
    aiq.fail("AllocateTransactions", Refuse("PURCHASES_LEDGER_ALREADY_CLOSED"))
    first = settler(aiq, store).settle(pay("120.00", "S-1"))
    assert (first.not_allocated, first.error_code) == (D("120.00"), "PURCHASES_LEDGER_ALREADY_CLOSED")
    assert first.adds_up
    # Like every refused document, not resent while nothing changed (the report says why).
    again = settler(aiq, store, "run-2").settle(pay("120.00", "S-1"))
    assert again.allocated_now == 0 and len(aiq.allocations) == 0


def test_a_refund_undoes_the_allocations_once(aiq: FakeAiq, store: DocumentStore) -> None:
    invoice = aiq.create_document("S-1", DAY, D("120.00"))
    settler(aiq, store).settle(pay("120.00", "S-1"))
    refund = settler(aiq, store).refund(pay("120.00", "S-1"))
    assert refund.transaction_id is not None and aiq.allocations == []
    assert aiq.outstanding(invoice) == D("120.00")  # the invoice is open again
    aiq.fail("UnallocateTransactions", LOST)
    settler(aiq, store, "run-2").refund(pay("120.00", "S-1"))
    assert aiq.count("UnallocateTransactions") == 1  # done already: found, not sent


def test_a_refused_receipt_allocates_nothing(aiq: FakeAiq, store: DocumentStore) -> None:
    aiq.create_document("S-1", DAY, D("120.00"))
    aiq.fail("SaveSalesReceipt", Refuse("CUSTOMER_CODE_DOES_NOT_EXIST"))
    outcome = settler(aiq, store).settle(pay("120.00", "S-1"))
    assert (outcome.outcome, outcome.error_code, outcome.receipt_transaction_id) == (
        Outcome.FAILED,
        "CUSTOMER_CODE_DOES_NOT_EXIST",
        None,
    )
    assert aiq.count("AllocateTransactions") == 0
