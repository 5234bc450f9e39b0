"""The exactly-once state machine on its own: `BulkSender` and `ExactlyOnceSender` against an
in-memory AccountsIQ (`FakeAiq`) and a real SQLite store, every transition and every failure,
asserting the exact store state and the exact AIQ calls. Milliseconds each; the end-to-end tests
prove the same wiring against the HTTP sandbox."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from aiq_flows.domain.codes import ErrorCode
from aiq_flows.domain.outcomes import POSTED_UNCHANGED, Outcome
from aiq_flows.domain.versions import content_version
from aiq_flows.engine.delivery import (
    BulkDocument,
    BulkSender,
    Delivery,
    Document,
    ExactlyOnceSender,
)
from aiq_flows.engine.fake import BUG, EXPIRED, LOST, NOT_REACHED, TRANSIENT, FakeAiq, Refuse
from aiq_flows.gateway.models import RowResult
from aiq_flows.store.outbox import DocumentState, DocumentStore

ENTITY = "E1"
DAY = datetime(2026, 11, 20)
WIDE = timedelta(days=400)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DocumentStore]:
    store = DocumentStore(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    store.dispose()


@pytest.fixture
def aiq() -> FakeAiq:
    return FakeAiq()


def state(store: DocumentStore, reference: str) -> tuple[DocumentState, int | None, int]:
    record = store.get(ENTITY, [reference])[reference]
    return record.state, record.transaction_id, record.attempts


# --- one document at a time ----------------------------------------------------------------------


def document(aiq: FakeAiq, reference: str = "S-1", version: str = "v1", amount: str = "120.00") -> Document:
    def find() -> int | None:
        found = aiq.transactions_by_external_reference(reference, DAY - WIDE, DAY + WIDE)
        return min((t.TransactionID for t in found), default=None)

    return Document(
        reference,
        "batch_sales_invoice",
        reference,
        version,
        find,
        lambda: aiq.create_document(reference, DAY, Decimal(amount)),
    )


def single(
    store: DocumentStore, run: str = "run-1", lease: timedelta = timedelta(minutes=15)
) -> ExactlyOnceSender:
    return ExactlyOnceSender(store, ENTITY, run, lease)


def test_created_once_then_found_in_the_store_without_asking_aiq(store: DocumentStore, aiq: FakeAiq) -> None:
    first = single(store).send(document(aiq))
    assert (first.outcome, first.transaction_id) == (Outcome.CREATED, aiq.posted("S-1")[0])
    assert state(store, "S-1") == (DocumentState.POSTED, first.transaction_id, 1)
    assert [name for name, _ in aiq.calls] == ["GetTransactionsByExternalReference", "CreateSI"]

    aiq.calls.clear()
    again = single(store, "run-2").send(document(aiq))
    assert (again.outcome, again.transaction_id, again.reason) == (
        Outcome.ALREADY_PRESENT,
        first.transaction_id,
        POSTED_UNCHANGED,
    )
    assert aiq.calls == []  # the store alone answered


def test_a_lost_store_finds_the_document_in_aiq_and_sends_nothing(tmp_path: Path, aiq: FakeAiq) -> None:
    before = DocumentStore(f"sqlite:///{tmp_path / 'lost.db'}")
    sent = single(before).send(document(aiq))
    before.dispose()
    (tmp_path / "lost.db").unlink()
    fresh = DocumentStore(f"sqlite:///{tmp_path / 'fresh.db'}")

    found = single(fresh).send(document(aiq))

    assert (found.outcome, found.transaction_id) == (Outcome.ALREADY_PRESENT, sent.transaction_id)
    assert state(fresh, "S-1") == (DocumentState.POSTED, sent.transaction_id, 0)
    assert aiq.count("CreateSI") == 1
    fresh.dispose()


def test_an_answer_lost_after_aiq_committed_is_read_back_not_resent(
    store: DocumentStore, aiq: FakeAiq
) -> None:
    aiq.fail("CreateSI", LOST)
    delivery = single(store).send(document(aiq))
    assert (delivery.outcome, delivery.reason) == (
        Outcome.CREATED,
        "answer lost; found in AIQ by external reference",
    )
    assert state(store, "S-1") == (DocumentState.POSTED, aiq.posted("S-1")[0], 1)
    assert aiq.count("CreateSI") == 1 and len(aiq.posted("S-1")) == 1


def test_an_answer_lost_before_aiq_committed_is_unknown_then_verified_and_sent_once(
    store: DocumentStore, aiq: FakeAiq
) -> None:
    aiq.fail("CreateSI", NOT_REACHED)
    lost = single(store).send(document(aiq))
    assert (lost.outcome, lost.error_code, lost.retryable) == (
        Outcome.FAILED,
        ErrorCode.UNKNOWN_OUTCOME,
        True,
    )
    assert state(store, "S-1") == (DocumentState.UNKNOWN, None, 1)
    assert aiq.posted("S-1") == []

    resent = single(store, "run-2").send(document(aiq))
    assert resent.outcome is Outcome.CREATED
    assert state(store, "S-1") == (DocumentState.POSTED, aiq.posted("S-1")[0], 2)
    # verified in AIQ before the resend: a lookup, then the one create
    assert [name for name, _ in aiq.calls][-2:] == ["GetTransactionsByExternalReference", "CreateSI"]
    assert len(aiq.posted("S-1")) == 1


def test_an_unknown_document_that_did_arrive_is_found_by_the_next_run(
    store: DocumentStore, aiq: FakeAiq
) -> None:
    aiq.fail("CreateSI", LOST)
    aiq.fail("GetTransactionsByExternalReference", None, TRANSIENT)  # the read-back after it fails too
    first = single(store).send(document(aiq))
    assert (first.outcome, first.error_code) == (Outcome.FAILED, ErrorCode.UNKNOWN_OUTCOME)
    assert state(store, "S-1") == (DocumentState.UNKNOWN, None, 1)

    second = single(store, "run-2").send(document(aiq))
    assert (second.outcome, second.reason) == (
        Outcome.ALREADY_PRESENT,
        "already in AIQ (found by external reference)",
    )
    assert state(store, "S-1") == (DocumentState.POSTED, aiq.posted("S-1")[0], 1)
    assert aiq.count("CreateSI") == 1 and len(aiq.posted("S-1")) == 1


def test_aiq_unreadable_before_sending_gives_the_claim_back(store: DocumentStore, aiq: FakeAiq) -> None:
    aiq.fail("GetTransactionsByExternalReference", TRANSIENT)
    delivery = single(store).send(document(aiq))
    assert (delivery.outcome, delivery.error_code, delivery.retryable) == (
        Outcome.FAILED,
        ErrorCode.TRANSIENT,
        True,
    )
    assert state(store, "S-1") == (DocumentState.PLANNED, None, 0)
    assert aiq.count("CreateSI") == 0


@pytest.mark.parametrize("fault", [TRANSIENT, EXPIRED])
def test_aiq_out_of_reach_sends_nothing_and_gives_the_claim_back(
    store: DocumentStore, aiq: FakeAiq, fault: object
) -> None:
    aiq.fail("CreateSI", fault)  # type: ignore[arg-type]
    delivery = single(store).send(document(aiq))
    assert (delivery.outcome, delivery.error_code, delivery.retryable) == (
        Outcome.FAILED,
        ErrorCode.TRANSIENT,
        True,
    )
    assert state(store, "S-1") == (DocumentState.PLANNED, None, 1)
    assert single(store, "run-2").send(document(aiq)).outcome is Outcome.CREATED  # not held by anyone


def test_a_refusal_is_not_resent_until_the_source_changes(store: DocumentStore, aiq: FakeAiq) -> None:
    aiq.fail("CreateSI", Refuse("SALES_LEDGER_ALREADY_CLOSED", "closed"))
    refused = single(store).send(document(aiq, version="v1"))
    assert (refused.outcome, refused.error_code) == (Outcome.FAILED, "SALES_LEDGER_ALREADY_CLOSED")
    assert refused.reason == "AIQ refused S-1: SALES_LEDGER_ALREADY_CLOSED: closed"
    assert state(store, "S-1")[0] is DocumentState.FAILED

    unchanged = single(store, "run-2").send(document(aiq, version="v1"))
    assert unchanged.outcome is Outcome.FAILED and "unchanged since" in (unchanged.reason or "")
    assert aiq.count("CreateSI") == 1  # not sent again

    changed = single(store, "run-3").send(document(aiq, version="v2"))
    assert changed.outcome is Outcome.CREATED and aiq.count("CreateSI") == 2


def test_a_source_changed_after_posting_is_reported_and_left_alone(
    store: DocumentStore, aiq: FakeAiq
) -> None:
    posted = single(store).send(document(aiq, version="v1"))
    later = single(store, "run-2").send(document(aiq, version="v2", amount="999.00"))
    assert (later.outcome, later.transaction_id, later.error_code) == (
        Outcome.ALREADY_PRESENT,
        posted.transaction_id,
        ErrorCode.CHANGED_AFTER_POSTING,
    )
    assert aiq.count("CreateSI") == 1


def test_a_version_is_the_content_not_the_change_time_and_older_kinds_are_not_compared(
    store: DocumentStore, aiq: FakeAiq
) -> None:
    """A release 0.1 store holds change times as versions: a re-read after the upgrade (a hash
    now) cannot tell what changed, and says nothing rather than a false "changed"."""
    sale = {"sale_id": "006A", "lines": [{"net_amount": "10.00"}]}
    assert content_version(sale) == content_version(dict(reversed(sale.items())))
    assert content_version(sale) != content_version({**sale, "lines": [{"net_amount": "10.01"}]})

    posted = single(store).send(document(aiq, "S-1", version="2026-11-20T12:00:00"))
    again = single(store, "run-2").send(document(aiq, "S-1", version=content_version(sale)))
    assert (again.outcome, again.transaction_id, again.error_code) == (
        Outcome.ALREADY_PRESENT,
        posted.transaction_id,
        None,
    )
    posted = single(store).send(document(aiq, "S-2", version=content_version(sale)))
    changed = content_version({**sale, "lines": [{"net_amount": "10.01"}]})
    later = single(store, "run-2").send(document(aiq, "S-2", version=changed))
    assert later.error_code == ErrorCode.CHANGED_AFTER_POSTING
    assert aiq.count("CreateSI") == 2


def test_a_claim_held_by_a_live_run_holds_the_document_and_an_expired_one_is_taken_over(
    store: DocumentStore, aiq: FakeAiq
) -> None:
    store.plan(ENTITY, [("S-1", "batch_sales_invoice", "S-1")])
    assert store.claim(ENTITY, "S-1", "crashed-run", source_version="v1")

    held = single(store, "run-2").send(document(aiq))
    assert (held.outcome, held.retryable) == (Outcome.HELD, True)
    assert aiq.calls == []

    taken = single(store, "run-3", lease=timedelta(seconds=-1)).send(document(aiq))
    assert taken.outcome is Outcome.CREATED
    assert state(store, "S-1") == (DocumentState.POSTED, aiq.posted("S-1")[0], 1)


def test_a_claim_of_a_run_the_orchestrator_says_is_dead_is_taken_over_at_once_and_read_first(
    store: DocumentStore, aiq: FakeAiq
) -> None:
    """A worker killed with its flow run leaves claims whose leases hold for minutes: the next run
    asks Prefect, takes those of runs that are over at once, looks each up in AIQ (the dead run
    may have sent it) and says whose claim it finished; a live run's claim is left alone."""
    store.plan(ENTITY, [(ref, "batch_sales_invoice", ref) for ref in ("S-1", "S-2", "S-3")])
    for ref, owner in (("S-1", "crashed-run"), ("S-2", "crashed-run"), ("S-3", "live-run")):
        assert store.claim(ENTITY, ref, owner, source_version="v1")
    store.mark_attempt_many(ENTITY, ["S-1", "S-2"])
    sent_before_the_crash = aiq.create_document("S-1", DAY, Decimal("120.00"))
    asked: list[set[str]] = []

    def dead_runs(owners: set[str]) -> dict[str, str]:
        asked.append(owners)
        return {"crashed-run": "Crashed"} if "crashed-run" in owners else {}

    sender = ExactlyOnceSender(store, ENTITY, "run-2", dead_runs=dead_runs)
    deliveries = sender.send_each([document(aiq, ref) for ref in ("S-1", "S-2", "S-3")])

    assert asked == [{"crashed-run", "live-run"}]
    assert (deliveries["S-1"].outcome, deliveries["S-1"].transaction_id) == (
        Outcome.ALREADY_PRESENT,
        sent_before_the_crash,
    )
    assert deliveries["S-2"].outcome is Outcome.CREATED
    for ref in ("S-1", "S-2"):
        assert "claim taken over from run crashed-run (Crashed)" in (deliveries[ref].reason or "")
    assert deliveries["S-3"].outcome is Outcome.HELD  # alive: its lease holds
    assert aiq.count("CreateSI") == 2  # the one before the crash and S-2: nothing twice
    assert len(aiq.posted("S-1")) == 1


def test_a_document_posted_twice_in_aiq_by_hand_keeps_the_first(store: DocumentStore, aiq: FakeAiq) -> None:
    first = aiq.create_document("S-1", DAY, Decimal(1))
    aiq.create_document("S-1", DAY, Decimal(1))
    delivery = single(store).send(document(aiq))
    assert (delivery.outcome, delivery.transaction_id) == (Outcome.ALREADY_PRESENT, first)
    assert aiq.count("CreateSI") == 2  # the two made by hand; the engine made none


def test_an_error_nobody_foresaw_is_treated_as_a_lost_answer(store: DocumentStore, aiq: FakeAiq) -> None:
    aiq.fail("CreateSI", BUG)  # AIQ committed, then something broke reading the answer
    delivery = single(store).send(document(aiq))
    assert (delivery.outcome, delivery.transaction_id) == (Outcome.CREATED, aiq.posted("S-1")[0])
    assert state(store, "S-1")[0] is DocumentState.POSTED
    assert aiq.count("CreateSI") == 1


# --- many documents at once ----------------------------------------------------------------------


class Bulk:
    """The three callables `BulkSender.send_all` takes, over the fake, counting the sweeps."""

    def __init__(self, aiq: FakeAiq) -> None:
        self.aiq, self.sweeps = aiq, 0

    def find(self, documents: Sequence[BulkDocument]) -> dict[str, int]:
        self.sweeps += 1
        wanted = {d.reference for d in documents}
        return {
            t.ExternalReference: t.TransactionID
            for t in self.aiq.transactions.values()
            if t.ExternalReference in wanted
        }  # type: ignore[misc]

    def find_one(self, document: BulkDocument) -> int | None:
        found = self.aiq.transactions_by_external_reference(document.reference, DAY - WIDE, DAY + WIDE)
        return min((t.TransactionID for t in found), default=None)

    def create(self, documents: Sequence[BulkDocument]) -> list[RowResult]:
        return self.aiq.create_documents([(d.reference, DAY, Decimal(10)) for d in documents])

    def send(
        self, store: DocumentStore, references: list[str], run: str = "run-1", chunk: int = 2
    ) -> dict[str, Delivery]:
        documents = [BulkDocument(ref, "batch_sales_invoice", ref, "v1") for ref in references]
        return BulkSender(store, ENTITY, run).send_all(
            documents, self.find, self.find_one, self.create, chunk
        )


REFS = ["S-1", "S-2", "S-3", "S-4", "S-5"]


def test_bulk_sends_in_chunks_after_one_sweep_and_each_row_is_its_own_outcome(
    store: DocumentStore, aiq: FakeAiq
) -> None:
    bulk = Bulk(aiq)
    aiq.fail("CreateRow:S-2", Refuse("CUSTOMER_CODE_DOES_NOT_EXIST"))
    deliveries = bulk.send(store, REFS)
    assert {ref: d.outcome for ref, d in deliveries.items()} == {
        "S-1": Outcome.CREATED,
        "S-2": Outcome.FAILED,
        "S-3": Outcome.CREATED,
        "S-4": Outcome.CREATED,
        "S-5": Outcome.CREATED,
    }
    assert bulk.sweeps == 1 and aiq.count("CreateBulk") == 3  # 5 documents, chunks of 2
    assert state(store, "S-2")[0] is DocumentState.FAILED
    assert all(state(store, ref)[0] is DocumentState.POSTED for ref in REFS if ref != "S-2")

    again = bulk.send(store, REFS, "run-2")
    assert {d.outcome for ref, d in again.items() if ref != "S-2"} == {Outcome.ALREADY_PRESENT}
    assert aiq.count("CreateBulk") == 3 and bulk.sweeps == 1  # nothing left to sweep for or send


def test_a_lost_bulk_answer_is_read_back_document_by_document(store: DocumentStore, aiq: FakeAiq) -> None:
    bulk = Bulk(aiq)
    aiq.fail("CreateBulk", TRANSIENT, LOST)  # chunk 1 not sent (claims back), chunk 2 committed unanswered
    deliveries = bulk.send(store, REFS[:4])
    assert [deliveries[ref].error_code for ref in REFS[:2]] == [ErrorCode.TRANSIENT] * 2
    assert [deliveries[ref].outcome for ref in REFS[2:4]] == [Outcome.CREATED] * 2
    assert [state(store, ref)[0] for ref in REFS[:4]] == [DocumentState.PLANNED] * 2 + [
        DocumentState.POSTED
    ] * 2
    assert aiq.count("GetTransactionsByExternalReference") == 2  # the two lost ones, one lookup each

    bulk.send(store, REFS[:4], "run-2")
    assert all(len(aiq.posted(ref)) == 1 for ref in REFS[:4])


def test_a_document_tried_before_is_looked_up_on_its_own_not_swept(
    store: DocumentStore, aiq: FakeAiq
) -> None:
    bulk = Bulk(aiq)
    aiq.fail("CreateBulk", NOT_REACHED)
    bulk.send(store, ["S-1"], chunk=1)
    assert state(store, "S-1") == (DocumentState.UNKNOWN, None, 1)
    # by hand, meanwhile, dated outside any sweep: only the document's own wide lookup finds it
    manual = aiq.create_document("S-1", DAY + timedelta(days=90), Decimal(10))
    bulk.sweeps = 0
    deliveries = bulk.send(store, ["S-1"], "run-2", chunk=1)
    assert (deliveries["S-1"].outcome, deliveries["S-1"].transaction_id) == (Outcome.ALREADY_PRESENT, manual)
    assert bulk.sweeps == 1 and aiq.count("CreateBulk") == 1  # swept nothing new, sent nothing


def test_two_runs_at_once_split_the_documents_and_neither_sends_the_others(
    store: DocumentStore, aiq: FakeAiq
) -> None:
    store.plan(ENTITY, [(ref, "batch_sales_invoice", ref) for ref in REFS])
    assert store.claim_many(ENTITY, {"S-1": "v1", "S-2": "v1"}, "run-a") == {"S-1", "S-2"}
    deliveries = Bulk(aiq).send(store, REFS, "run-b")
    assert {ref for ref, d in deliveries.items() if d.outcome is Outcome.HELD} == {"S-1", "S-2"}
    assert aiq.posted("S-1") == [] and all(len(aiq.posted(ref)) == 1 for ref in REFS[2:])
