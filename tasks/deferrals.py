"""Releasing deferred revenue: one journal per sale and month (``DEF-<sale ref>-<yyyymm>``), debit
deferred revenue and credit revenue with the sale's BI code on both lines, each exactly once; and
one credit journal (``DEF-<sale ref>-CR``) for what remains when a sale is credited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE

from aiq_flows.domain.codes import ErrorCode
from aiq_flows.domain.deferrals import (
    ClosedPeriodPolicy,
    DueJournal,
    OpenPeriod,
    PeriodClosed,
    due_journals,
    posting_date,
    release_lines,
)
from aiq_flows.domain.outcomes import Outcome
from aiq_flows.engine.delivery import Document, ExactlyOnceSender
from aiq_flows.gateway.client import AiqGateway
from aiq_flows.gateway.models import GeneralJournal, GeneralJournalLine
from aiq_flows.store.schedules import ScheduledMonth, ScheduleState, ScheduleStore
from blocks.aiq import AiqConnection
from blocks.store import StateStore
from tasks.lookups import find_transaction
from tasks.runs import runs_over

JOURNAL_KIND = "deferral_release"


@dataclass(frozen=True)
class ReleaseOutcome:
    journal_reference: str
    sale_reference: str
    months: str
    amount: Decimal
    outcome: Outcome
    posted_on: date | None = None
    transaction_id: int | None = None
    error_code: str | None = None
    reason: str | None = None


def release_journal(
    reference: str, when: date, rows: list[ScheduledMonth], note: str | None
) -> GeneralJournal:
    """The release journal as AIQ takes it (`release_lines`: debit deferred, credit revenue)."""
    description = f"Deferred revenue release {reference}" + (f" ({note})" if note else "")
    return GeneralJournal(
        InternalReference=reference,
        ExternalReference=reference,
        TransactionDate=datetime.combine(when, time()),
        Lines=[
            GeneralJournalLine(
                GLAccountCode=line.gl_account,
                Description=description,
                DepartmentID=line.department_id,
                Amount=line.amount,
            )
            for line in release_lines(rows)
        ],
    )


def _outcome(due: DueJournal[ScheduledMonth], outcome: Outcome, **details: Any) -> ReleaseOutcome:
    return ReleaseOutcome(due.reference, due.sale, due.months, due.amount, outcome, **details)


class Releaser:
    def __init__(
        self,
        gateway: AiqGateway,
        sender: ExactlyOnceSender,
        schedules: ScheduleStore,
        entity: str,
        periods: list[OpenPeriod],
        policy: ClosedPeriodPolicy,
    ) -> None:
        self.gateway, self.sender, self.schedules, self.entity = gateway, sender, schedules, entity
        self.periods, self.policy = periods, policy

    def _document(self, due: DueJournal[ScheduledMonth], when: date, note: str | None) -> Document:
        journal = release_journal(due.reference, when, due.rows, note)
        return Document(
            reference=due.reference,
            kind=JOURNAL_KIND,
            source_id=due.sale,
            source_version=str(due.amount),
            find=lambda: find_transaction(self.gateway, due.reference, datetime.combine(when, time()), []),
            create=lambda: self.gateway.create_general_journal(journal),
        )

    def release_all(self, due_journals: list[DueJournal[ScheduledMonth]]) -> list[ReleaseOutcome]:
        """Date every journal (closed periods per the policy), then send each exactly once (the
        store read and claimed for all of them at once) and mark its months."""
        outcomes: list[ReleaseOutcome] = []
        ready: list[tuple[DueJournal[ScheduledMonth], date, str | None, Document]] = []
        for due in due_journals:
            try:
                when, note = posting_date(due.wanted, self.periods, self.policy)
            except PeriodClosed as closed:
                reason = f"{due.reference}: {closed}"
                outcomes.append(
                    _outcome(due, Outcome.FAILED, error_code=ErrorCode.PERIOD_CLOSED, reason=reason)
                )
                continue
            ready.append((due, when, note, self._document(due, when, note)))
        deliveries = self.sender.send_each([document for *_, document in ready])
        for due, when, note, _document in ready:
            delivery = deliveries[due.reference]
            if delivery.transaction_id is not None:
                state = ScheduleState.CREDITED if due.credit else ScheduleState.RELEASED
                months = [r.month for r in due.rows]
                self.schedules.mark(
                    self.entity, due.sale, months, state, due.reference, delivery.transaction_id, when, note
                )
            outcomes.append(
                _outcome(
                    due,
                    delivery.outcome,
                    posted_on=when,
                    transaction_id=delivery.transaction_id,
                    error_code=delivery.error_code,
                    reason=delivery.reason or note,
                )
            )
        return outcomes


@task(name="release-deferred-revenue", cache_policy=NONE)
def release_deferred_revenue(
    aiq: AiqConnection,
    state: StateStore,
    run_date: date,
    post_all_upfront: bool,
    policy: ClosedPeriodPolicy,
    run_id: str,
) -> list[ReleaseOutcome]:
    """Credit journals for credited sales, then every month due by `run_date` (or all of them),
    catching up any month an earlier run missed."""
    gateway = aiq.gateway()
    periods = [
        OpenPeriod(p.StartDate.date(), p.EndDate.date(), p.is_open("General")) for p in gateway.get_periods()
    ]
    store = state.store()
    try:
        schedules = state.schedules(store)
        releaser = Releaser(
            gateway,
            ExactlyOnceSender(store, aiq.company_id, run_id, dead_runs=runs_over),
            schedules,
            aiq.company_id,
            periods,
            policy,
        )
        pending = schedules.months(aiq.company_id, state=ScheduleState.SCHEDULED)
        due = due_journals(pending, run_date, post_all_upfront)
        outcomes = releaser.release_all(due)
    finally:
        store.dispose()
    get_run_logger().info(
        "Deferred revenue: %d journals due, %d posted now",
        len(outcomes),
        sum(o.outcome is Outcome.CREATED for o in outcomes),
    )
    return outcomes


@task(name="publish-release-report", cache_policy=NONE)
def publish_release_report(outcomes: list[ReleaseOutcome], policy: ClosedPeriodPolicy) -> dict[str, Any]:
    rows = [
        {
            "journal": o.journal_reference,
            "sale": o.sale_reference,
            "months": o.months,
            "amount": str(o.amount),
            "outcome": o.outcome.value,
            "posted_on": str(o.posted_on or ""),
            "aiq_transaction_id": o.transaction_id or "",
            "error_code": o.error_code or "",
            "note": o.reason or "",
        }
        for o in outcomes
    ]
    create_table_artifact(
        key="deferred-revenue-release",
        table=rows,
        description="Deferred revenue journals of this run, one row per journal",
    )
    counts = {kind.value: sum(o.outcome is kind for o in outcomes) for kind in Outcome}
    failed = [o for o in outcomes if o.outcome is Outcome.FAILED]
    if failed:
        detail = "; ".join(o.reason or o.journal_reference for o in failed[:20])
        raise RuntimeError(
            f"{len(failed)} deferred revenue journals were not posted (policy {policy}): {detail}"
        )
    return {"journals": len(outcomes), **counts}
