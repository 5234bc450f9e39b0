"""Two-leg documents on their own: `PairSender` against an in-memory AccountsIQ (`FakeAiq`) and a
real SQLite store. Both legs saved as drafts before either is posted; every failure (a lost
answer on a save or a post, a refusal before or after the first post, an outage between the two
posts, a leg AIQ holds twice, a withdrawn pair) with the exact store state and AIQ calls."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from aiq_flows.domain.codes import ErrorCode
from aiq_flows.domain.references import PairKind, leg_reference, pair_key
from aiq_flows.engine.fake import LOST, NOT_REACHED, TRANSIENT, FakeAiq, Refuse
from aiq_flows.engine.pairing import Leg, Pair, PairResult, PairSender, PairStatus, credit_note_compensation
from aiq_flows.gateway.models import Invoice, InvoiceLine
from aiq_flows.store.outbox import DocumentState, DocumentStore

ENTITY = "E1"
DAY = datetime(2026, 11, 20)
KEY = pair_key(PairKind.BACK_TO_BACK, 7)
PURCHASE, SALES = (leg_reference(PairKind.BACK_TO_BACK, 7, leg) for leg in ("purchase", "sales"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DocumentStore]:
    store = DocumentStore(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    store.dispose()


@pytest.fixture
def aiq() -> FakeAiq:
    return FakeAiq()


def _leg(aiq: FakeAiq, role: str, reference: str, price: str, compensate: bool = False) -> Leg:
    line = InvoiceLine(InvoicedQuantity=Decimal(1), StockItemPrice=Decimal(price), TaxCode="T1")

    def draft() -> Invoice:
        return Invoice(
            AccountID=1,
            InvoiceDate=DAY,
            DeliveryDate=DAY,
            Ledger="Sales" if role == "sales" else "Purchases",
            Type="Invoice",
            ExternalReference=reference,
            Lines=[line],
        )

    net = Decimal(price)
    credit = (
        credit_note_compensation(aiq, reference, "ACME01", DAY, [line], None, "withdrawn")
        if compensate
        else None
    )
    return Leg(
        role, ENTITY, reference, aiq, draft, net, (net * Decimal("0.20")).quantize(Decimal("0.01")), credit
    )


def pair(aiq: FakeAiq, version: str = "v1", sales_price: str = "120.00", withdrawn: bool = False) -> Pair:
    legs = (
        _leg(aiq, "purchase", PURCHASE, "100.00"),
        _leg(aiq, "sales", SALES, sales_price, compensate=True),
    )
    return Pair(KEY, "7", version, legs, withdrawn=withdrawn)


def send(store: DocumentStore, aiq: FakeAiq, run: str = "run-1", **changes: object) -> PairResult:
    sender = PairSender(store, run)
    the_pair = pair(aiq, **changes)  # type: ignore[arg-type]
    sender.plan([the_pair])
    return sender.send(the_pair)


def states(store: DocumentStore) -> dict[str, DocumentState]:
    return {ref: record.state for ref, record in store.get(ENTITY, [KEY, PURCHASE, SALES]).items()}


def writes(aiq: FakeAiq) -> list[str]:
    return [name for name, _ in aiq.calls if not name.startswith("Get")]


def test_both_drafts_are_saved_before_either_is_posted_then_posted_in_order(
    store: DocumentStore, aiq: FakeAiq
) -> None:
    result = send(store, aiq)
    assert result.status is PairStatus.COMPLETE
    assert writes(aiq) == ["SaveInvoice", "SaveInvoice", "PostInvoice", "PostInvoice"]
    assert [call for call in aiq.calls if call[0] == "SaveInvoice"] == [
        ("SaveInvoice", PURCHASE),
        ("SaveInvoice", SALES),
    ]
    assert states(store) == dict.fromkeys([KEY, PURCHASE, SALES], DocumentState.POSTED)
    record = store.get(ENTITY, [KEY])[KEY]
    assert record.transaction_id == result.posted_transaction("sales") == aiq.posted(SALES)[0]  # never 0

    aiq.calls.clear()
    again = send(store, aiq, "run-2")
    assert (again.status, aiq.calls) == (PairStatus.ALREADY_COMPLETE, [])  # the store answered


def test_a_lost_save_answer_uses_the_draft_it_made(store: DocumentStore, aiq: FakeAiq) -> None:
    aiq.fail("SaveInvoice", None, LOST)  # the sales leg's draft is saved, its answer lost
    result = send(store, aiq)
    assert result.status is PairStatus.COMPLETE
    assert aiq.count("SaveInvoice") == 2 and aiq.statuses(SALES) == ["Posted"]  # one draft, posted


def test_a_lost_post_answer_is_read_back_and_not_posted_again(store: DocumentStore, aiq: FakeAiq) -> None:
    aiq.fail("PostInvoice", LOST)
    result = send(store, aiq)
    assert result.status is PairStatus.COMPLETE
    assert aiq.count("PostInvoice") == 2 and len(aiq.posted(PURCHASE)) == len(aiq.posted(SALES)) == 1


def test_a_refusal_before_anything_is_posted_cancels_both_drafts(store: DocumentStore, aiq: FakeAiq) -> None:
    aiq.fail("PostInvoice", Refuse("PURCHASES_LEDGER_ALREADY_CLOSED"))
    result = send(store, aiq)
    assert (result.status, result.error_code) == (PairStatus.FAILED, "PURCHASES_LEDGER_ALREADY_CLOSED")
    assert aiq.statuses(PURCHASE) == aiq.statuses(SALES) == ["Cancelled"]  # nothing half
    assert states(store)[KEY] is DocumentState.FAILED

    aiq.calls.clear()
    unchanged = send(store, aiq, "run-2")
    assert unchanged.status is PairStatus.FAILED and aiq.calls == []  # not resent until the source changes
    assert send(store, aiq, "run-3", version="v2").status is PairStatus.COMPLETE


def test_a_refusal_after_the_first_post_leaves_a_half_pair_the_next_run_completes(
    store: DocumentStore, aiq: FakeAiq
) -> None:
    aiq.fail("PostInvoice", None, Refuse("SALES_LEDGER_ALREADY_CLOSED"))
    half = send(store, aiq)
    assert (half.status, half.retryable) == (PairStatus.HALF, True)
    assert (half.posted_transaction("purchase") is not None, half.posted_transaction("sales")) == (True, None)
    assert aiq.statuses(SALES) == ["Processed"]  # the sales draft waits
    assert states(store)[KEY] is DocumentState.UNKNOWN

    aiq.calls.clear()
    done = send(store, aiq, "run-2")
    assert done.status is PairStatus.COMPLETE
    assert writes(aiq) == ["PostInvoice"]  # the waiting draft posted, nothing saved again
    assert len(aiq.posted(PURCHASE)) == len(aiq.posted(SALES)) == 1


def test_an_outage_between_the_two_posts_is_half_and_completed_next_run(
    store: DocumentStore, aiq: FakeAiq
) -> None:
    aiq.fail("PostInvoice", None, NOT_REACHED)
    half = send(store, aiq)
    assert (half.status, half.error_code) == (PairStatus.HALF, ErrorCode.UNKNOWN_OUTCOME)
    assert send(store, aiq, "run-2").status is PairStatus.COMPLETE
    assert len(aiq.posted(SALES)) == 1


def test_an_outage_before_anything_is_posted_fails_and_retries_without_a_second_draft(
    store: DocumentStore, aiq: FakeAiq
) -> None:
    aiq.fail("SaveInvoice", None, TRANSIENT)
    first = send(store, aiq)
    assert (first.status, first.error_code, first.retryable) == (PairStatus.FAILED, ErrorCode.TRANSIENT, True)
    assert aiq.statuses(PURCHASE) == ["Processed"]
    assert send(store, aiq, "run-2").status is PairStatus.COMPLETE
    assert aiq.statuses(PURCHASE) == ["Posted"]  # the first run's draft, posted


def test_a_draft_whose_totals_no_longer_match_the_source_is_cancelled_and_saved_again(
    store: DocumentStore, aiq: FakeAiq
) -> None:
    aiq.fail("PostInvoice", NOT_REACHED)  # both drafts saved, the first post unanswered and not made
    assert send(store, aiq).status is PairStatus.FAILED
    result = send(store, aiq, "run-2", version="v2", sales_price="150.00")
    assert result.status is PairStatus.COMPLETE
    assert aiq.statuses(SALES) == ["Cancelled", "Posted"]


def test_aiq_totals_other_than_the_pricing_refuse_the_pair_before_anything_is_posted(
    store: DocumentStore, aiq: FakeAiq
) -> None:
    aiq.tax_rates["T1"] = Decimal("0.23")  # AIQ's rate is not the one the pair was priced with
    result = send(store, aiq)
    assert (result.status, result.error_code) == (PairStatus.FAILED, ErrorCode.TOTALS_DIFFER)
    assert aiq.posted(PURCHASE) == aiq.posted(SALES) == []


def test_a_leg_aiq_holds_posted_twice_is_left_for_a_person(store: DocumentStore, aiq: FakeAiq) -> None:
    for _ in range(2):
        aiq.post_invoice(aiq.save_invoice(pair(aiq).legs[0].draft()))
    result = send(store, aiq)
    assert (result.status, result.error_code) == (PairStatus.FAILED, ErrorCode.DUPLICATE_LEG)
    assert aiq.posted(SALES) == []


def test_another_run_holding_the_pair_holds_it(store: DocumentStore, aiq: FakeAiq) -> None:
    PairSender(store, "other").plan([pair(aiq)])
    assert store.claim(ENTITY, KEY, "other", source_version="v1")
    result = send(store, aiq, "run-2")
    assert (result.status, result.retryable) == (PairStatus.HELD, True)
    assert aiq.calls == []


def test_a_withdrawn_half_pair_is_unwound_once(store: DocumentStore, aiq: FakeAiq) -> None:
    sales_first = (
        _leg(aiq, "sales", SALES, "120.00", compensate=True),
        _leg(aiq, "purchase", PURCHASE, "100.00"),
    )
    sender = PairSender(store, "run-1")
    sender.plan([Pair(KEY, "7", "v1", sales_first)])
    aiq.fail("PostInvoice", None, TRANSIENT)  # the sales leg posted, the purchase leg's post fails
    assert sender.send(Pair(KEY, "7", "v1", sales_first)).status is PairStatus.HALF

    withdrawn = Pair(KEY, "7", "v2", sales_first, withdrawn=True)
    unwound = PairSender(store, "run-2").send(withdrawn)

    assert unwound.status is PairStatus.UNWOUND
    assert aiq.statuses(PURCHASE) == ["Cancelled"]  # the waiting draft
    [note] = aiq.posted(f"{SALES}-CN")  # the posted sales leg reversed by a credit note
    assert unwound.leg("sales") is not None and unwound.leg("sales").transaction_id == note  # type: ignore[union-attr]
    assert states(store)[KEY] is DocumentState.UNWOUND
    aiq.calls.clear()
    again = PairSender(store, "run-3").send(withdrawn)
    assert (again.status, aiq.calls) == (PairStatus.UNWOUND, [])  # final: no second credit note
