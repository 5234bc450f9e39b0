"""What the two-leg flows (back-to-back, intercompany) share around the pair machinery: reading
the work list, one outcome per record from a pair's result, the write-back, and the report
(a summary with the half pairs first, and a table with one row per record)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from aiq_flows.domain.outcomes import CountsDoNotAddUp, Outcome, SaleOutcome, id_order, summarize
from aiq_flows.engine.pairing import Pair, PairResult, PairSender, PairStatus
from blocks.store import StateStore
from tasks.events import announce_if_needed

Item = TypeVar("Item")  # a record on its way to a pair (a job, a charge)
Out = TypeVar("Out", bound="PairedOutcome")

OUTCOME_OF = {
    PairStatus.COMPLETE: Outcome.CREATED,
    PairStatus.ALREADY_COMPLETE: Outcome.ALREADY_PRESENT,
    PairStatus.UNWOUND: Outcome.CREATED,
    PairStatus.HALF: Outcome.FAILED,
    PairStatus.FAILED: Outcome.FAILED,
    PairStatus.HELD: Outcome.HELD,
}
# What the source is told, where it differs from the outcome's (posted/quarantined/failed/pending).
SOURCE_STATUS = {
    PairStatus.COMPLETE: "posted",
    PairStatus.ALREADY_COMPLETE: "posted",
    PairStatus.UNWOUND: "cancelled",
    PairStatus.HALF: "half",
}


class WorkList(Protocol):
    def unsettled(self, limit: int | None = None) -> list[dict[str, Any]]: ...
    def write_back(self, results: list[dict[str, Any]]) -> None: ...
    def dispose(self) -> None: ...


@dataclass(frozen=True)
class PairedOutcome:
    """One record's end: its outcome and, once it reached AIQ, its pair's result."""

    outcome: SaleOutcome
    pair: PairResult | None = None

    @property
    def status(self) -> str:
        if self.pair is not None and self.pair.status in SOURCE_STATUS:
            return SOURCE_STATUS[self.pair.status]
        return self.outcome.crm_status.value

    @property
    def half(self) -> bool:
        return self.pair is not None and self.pair.status is PairStatus.HALF


def quarantined(record_id: Any, reference: str | None, reason: str) -> SaleOutcome:
    return SaleOutcome(record_id, reference, Outcome.QUARANTINED, reason=reason)


def by_record(outcomes: Sequence[Out]) -> list[Out]:
    """Outcomes in the order of their records' ids (those without one last)."""
    return sorted(outcomes, key=lambda o: id_order(o.outcome.sale_id))


def pair_outcome(
    record_id: int | str,
    reference: str,
    pair_key: str,
    result: PairResult,
    *,
    customer_code: str,
    gross_total: Decimal,
    currency: str,
    reason: str | None = None,
) -> SaleOutcome:
    return SaleOutcome(
        record_id,
        reference,
        OUTCOME_OF[result.status],
        external_reference=pair_key,
        customer_code=customer_code,
        gross_total=gross_total,
        currency=currency,
        transaction_id=result.posted_transaction("sales"),
        error_code=result.error_code,
        reason=reason or result.reason,
        retryable=result.retryable,
    )


def send_pairs(
    state: StateStore,
    run_id: str,
    items: Sequence[Item],
    pair_of: Callable[[Item], Pair],
    outcome_of: Callable[[Item, PairResult], Out],
    before: Callable[[Item], Out | None] | None = None,
) -> list[Out]:
    """Each item's pair exactly once (`PairSender`), the pairs planned in one store round trip;
    `before` may end an item before its pair is sent (returning its outcome)."""
    store = state.store()
    try:
        sender = PairSender(store, run_id)
        pairs = [pair_of(item) for item in items]
        sender.plan(pairs)
        outcomes: list[Out] = []
        for item, pair in zip(items, pairs, strict=True):
            ended = before(item) if before is not None else None
            outcomes.append(ended if ended is not None else outcome_of(item, sender.send(pair)))
        return outcomes
    finally:
        store.dispose()


def read_unsettled(source: WorkList, noun: str, limit: int | None) -> list[dict[str, Any]]:
    try:
        records = source.unsettled(limit)
    finally:
        source.dispose()
    get_run_logger().info("Read %d unsettled %s", len(records), noun)
    return records


def write_back(
    source: WorkList, outcomes: Sequence[PairedOutcome], extra: Callable[[Any], dict[str, Any]] | None = None
) -> None:
    """Status, message and both legs' posted transaction IDs, plus any ``extra`` columns."""
    results = [
        {
            "id": o.outcome.sale_id,
            "status": o.status,
            "aiq_sales_transaction_id": o.pair.posted_transaction("sales") if o.pair else None,
            "aiq_purchase_transaction_id": o.pair.posted_transaction("purchase") if o.pair else None,
            "message": o.outcome.reason,
            **(extra(o) if extra else {}),
        }
        for o in outcomes
        if o.outcome.sale_id is not None
    ]
    try:
        source.write_back(results)
    finally:
        source.dispose()


def leg_columns(pair: PairResult | None) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for role in ("sales", "purchase"):
        leg = pair.leg(role) if pair else None
        columns[f"{role}_leg"] = f"{leg.reference} {leg.state}" if leg else ""
        columns[f"{role}_transaction_id"] = leg.transaction_id if leg and leg.transaction_id else ""
    return columns


def publish_pairs_report(
    outcomes: Sequence[PairedOutcome],
    input_count: int,
    title: str,
    key: str,
    noun: str,
    rows: list[dict[str, Any]],
    sections: Sequence[tuple[str, Sequence[PairedOutcome]]] = (),
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """A markdown summary (counts, half pairs, then ``sections``, then what needs attention) and
    a table with one row per record; fails when the counts do not add up to the records read."""
    summary = summarize([o.outcome for o in outcomes], input_count)
    counts = {kind.value: summary.counts[kind] for kind in Outcome}
    half = [o for o in outcomes if o.half]
    lines = [f"# {title}", "", f"| outcome | {noun} |", "|---|---:|"]
    lines += [f"| {kind} | {n} |" for kind, n in counts.items()]
    lines += [f"| **total** | **{summary.accounted_for}** of {input_count} read |", *notes]
    listed = {id(o) for _, items in sections for o in items} | {id(o) for o in half}
    attention = [
        o
        for o in outcomes
        if o.outcome.outcome in (Outcome.QUARANTINED, Outcome.FAILED) and id(o) not in listed
    ]
    for heading, items in (
        ("Half pairs (one leg posted; the next run completes them)", half),
        *sections,
        ("Needs attention", attention),
    ):
        if items:
            lines += ["", f"## {heading}", ""]
            lines += [
                f"- `{o.outcome.reference or o.outcome.sale_id}` {o.status}: {o.outcome.reason}"
                for o in items[:200]
            ]
    create_markdown_artifact(key=f"{key}-summary", markdown="\n".join(lines), description=title)
    create_table_artifact(key=f"{key}-pairs", table=rows, description=f"{title}: one row per {noun[:-1]}")
    if not summary.adds_up:
        raise CountsDoNotAddUp(f"{summary.accounted_for} outcomes for {input_count} {noun} read")
    return {"input": input_count, **counts, "half_pairs": len(half)}


def announce_pairs(entity: str, summary: dict[str, Any]) -> None:
    """Tell the automations what a pair run left for a person (half pairs, parity, the rest)."""
    announce_if_needed(
        entity,
        {
            name: int(summary.get(name, 0))
            for name in ("held", "quarantined", "failed", "half_pairs", "parity_mismatches")
        },
    )
