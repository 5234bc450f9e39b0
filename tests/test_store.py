"""The side-effect ledger: claims are exclusive, leases expire, the watermark never goes back.
Run on SQLite (the default) and on PostgreSQL (production)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from aiq_flows.domain.watermark import Watermark
from aiq_flows.store.outbox import DocumentState, DocumentStore


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    url = (
        f"sqlite:///{tmp_path / 'store.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    document_store = DocumentStore(url)
    yield document_store
    document_store.dispose()


def test_planning_is_idempotent(store: DocumentStore) -> None:
    store.plan("E1", [("S-1", "batch_sales_invoice", "1"), ("S-2", "batch_sales_invoice", "2")])
    store.mark_posted("E1", "S-1", 101)
    store.plan("E1", [("S-1", "batch_sales_invoice", "1")])  # a re-run plans again
    records = store.get("E1", ["S-1", "S-2", "S-3"])
    assert records["S-1"].state is DocumentState.POSTED and records["S-1"].transaction_id == 101
    assert records["S-2"].state is DocumentState.PLANNED and "S-3" not in records


def test_only_one_of_many_concurrent_claims_wins(store: DocumentStore) -> None:
    store.plan("E1", [("S-9", "batch_sales_invoice", "9")])
    barrier = threading.Barrier(8)
    wins: list[str] = []

    def contender(name: str) -> None:
        barrier.wait()
        if store.claim("E1", "S-9", name):
            wins.append(name)

    threads = [threading.Thread(target=contender, args=(f"run-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1


def test_claims_are_refused_when_done_and_retaken_when_stale(store: DocumentStore) -> None:
    store.plan("E1", [("S-1", "k", "1"), ("S-2", "k", "2")])
    assert store.claim("E1", "S-1", "run-a")
    assert not store.claim("E1", "S-1", "run-b")  # held by a live run
    assert store.claim("E1", "S-1", "run-b", lease=timedelta(seconds=-1))  # run-a's lease ran out
    store.mark_posted("E1", "S-1", 7)
    assert not store.claim("E1", "S-1", "run-c", lease=timedelta(seconds=-1))  # posted is final
    assert store.claim("E1", "S-2", "run-a")
    store.mark_unknown("E1", "S-2", "answer lost")
    assert store.claim("E1", "S-2", "run-b")  # unknown may be verified and retried


def test_bulk_claims_record_the_version_sent_and_retake_only_what_changed_since_a_refusal(
    store: DocumentStore,
) -> None:
    store.plan("E1", [(f"S-{n}", "k", str(n)) for n in (1, 2, 3, 4)])
    assert store.claim_many("E1", {"S-1": "v1", "S-2": "v1", "S-3": "v1"}, "run-a") == {"S-1", "S-2", "S-3"}
    store.mark_posted_many("E1", {"S-1": 11})
    store.mark_failed_many(
        "E1", {"S-2": ("CLOSED", "period closed", "v1"), "S-3": ("CLOSED", "closed", "v1")}
    )
    assert store.claim("E1", "S-4", "run-a", source_version="v7")

    records = store.get("E1", ["S-1", "S-4"])
    assert (records["S-1"].state, records["S-1"].source_version) == (DocumentState.POSTED, "v1")
    assert records["S-4"].source_version == "v7"  # a single claim records it too
    # Next run: S-2 is unchanged since AIQ refused it, S-3 was fixed in the source, S-1 is done.
    assert store.claim_many("E1", {"S-1": "v2", "S-2": "v1", "S-3": "v2"}, "run-b") == {"S-3"}
    assert store.get("E1", ["S-3"])["S-3"].source_version == "v2"
    assert store.claim_many("E1", {}, "run-b") == set()


def test_release_returns_an_untouched_claim(store: DocumentStore) -> None:
    store.plan("E1", [("S-1", "k", "1")])
    assert store.claim("E1", "S-1", "run-a")
    store.release("E1", "S-1", "run-b")  # not the owner: no effect
    assert not store.claim("E1", "S-1", "run-c")
    store.release("E1", "S-1", "run-a")
    assert store.claim("E1", "S-1", "run-c")


def test_written_back_only_follows_posted(store: DocumentStore) -> None:
    store.plan("E1", [("S-1", "k", "1"), ("S-2", "k", "2")])
    store.mark_posted("E1", "S-1", 5)
    store.mark_written_back("E1", ["S-1", "S-2"])
    records = store.get("E1", ["S-1", "S-2"])
    assert (records["S-1"].state, records["S-2"].state) == (DocumentState.WRITTEN_BACK, DocumentState.PLANNED)


def test_entities_are_separate(store: DocumentStore) -> None:
    store.plan("E1", [("S-1", "k", "1")])
    store.plan("E2", [("S-1", "k", "1")])
    store.mark_posted("E1", "S-1", 1)
    assert store.get("E2", ["S-1"])["S-1"].state is DocumentState.PLANNED


def test_watermark_starts_at_the_beginning_and_never_goes_back(store: DocumentStore) -> None:
    assert store.watermark("crm") == Watermark.beginning()
    later = Watermark(datetime(2026, 11, 2, 10), "20")
    assert store.advance_watermark("crm", later) == later
    assert store.advance_watermark("crm", Watermark(datetime(2026, 11, 2, 10), "19")) == later
    assert store.watermark("crm") == later
    tie_breaker = Watermark(datetime(2026, 11, 2, 10), "21")
    assert store.advance_watermark("crm", tie_breaker) == tie_breaker


def test_two_runs_writing_the_first_watermark_at_once_both_succeed(store: DocumentStore) -> None:
    """Found by two nightly runs at once: both saw no watermark row and both inserted it."""
    import threading
    from datetime import datetime

    from aiq_flows.domain.watermark import Watermark

    url = store.engine.url.render_as_string(hide_password=False)
    marks = [
        Watermark(datetime(2026, 11, 25, 6, minute), f"{n:02d}")
        for n, minute in enumerate(range(20), start=1)
    ]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(marks))

    def advance(mark: Watermark) -> None:
        other = DocumentStore(url)  # each run has its own connection pool
        try:
            barrier.wait()
            other.advance_watermark("race", mark)
        except BaseException as error:
            errors.append(error)
        finally:
            other.dispose()

    threads = [threading.Thread(target=advance, args=(mark,)) for mark in marks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.watermark("race") == max(marks)


def test_a_read_only_sources_records_keep_their_state_and_posted_is_never_downgraded(
    store: DocumentStore,
) -> None:
    store.record_states("crm-view", [("A-1", "pending", "held", None), ("A-2", "posted", "created", 501)])
    store.record_states("other-view", [("A-1", "posted", "created", 900)])  # another source's A-1
    store.record_states("crm-view", [("A-2", "failed", "refused", None), ("A-3", "quarantined", "bad", None)])

    assert store.known_records("crm-view", ["A-1", "A-2", "A-3", "A-4"]) == {
        "A-1": ("pending", None),
        "A-2": ("posted", 501),  # a later failure never takes back what AIQ holds
        "A-3": ("quarantined", None),
    }
    assert store.pending_records("crm-view") == ["A-1"]
    store.record_states("crm-view", [("A-1", "posted", "created", 502)])
    assert store.pending_records("crm-view") == []
    assert store.known_records("crm-view", ["A-1"]) == {"A-1": ("posted", 502)}
