"""The run report in the Prefect UI: one row per sale, and counts that must add up to the input."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from aiq_flows.domain.money import round_money
from aiq_flows.domain.outcomes import CountsDoNotAddUp, Outcome, SaleOutcome, id_order, summarize
from aiq_flows.engine.delivery import CHANGED_AFTER_POSTING, POSTED_UNCHANGED


def _amount(outcome: SaleOutcome) -> str:
    if outcome.gross_total is None:
        return ""
    if outcome.currency is None:
        return str(outcome.gross_total)
    return f"{round_money(outcome.gross_total, outcome.currency)} {outcome.currency}"


# The UI's table shows at most this many sales: those that need attention first, then the rest.
MAX_TABLE_ROWS = 20_000


def report_rows(outcomes: list[SaleOutcome]) -> list[dict[str, Any]]:
    attention = (Outcome.QUARANTINED, Outcome.FAILED, Outcome.HELD)
    if len(outcomes) > MAX_TABLE_ROWS:
        ranked = sorted(outcomes, key=lambda o: (o.outcome not in attention, id_order(o.sale_id)))
        outcomes = ranked[:MAX_TABLE_ROWS]
    return [
        {
            "sale_id": o.sale_id,
            "reference": o.reference or "",
            "external_reference": o.external_reference or "",
            "customer": o.customer_code or "",
            "gross_total": _amount(o),
            "outcome": o.outcome.value,
            "aiq_transaction_id": o.transaction_id if o.transaction_id is not None else "",
            "error_code": o.error_code or "",
            "reason": o.reason or "",
        }
        for o in sorted(outcomes, key=lambda o: id_order(o.sale_id))
    ]


@task(name="publish-sync-report", cache_policy=NONE)
def publish_sync_report(
    outcomes: list[SaleOutcome], input_count: int, title: str, key_prefix: str
) -> dict[str, Any]:
    summary = summarize(outcomes, input_count)
    counts = {kind.value: summary.counts[kind] for kind in Outcome}
    lines = [f"# {title}", "", "| outcome | sales |", "|---|---:|"]
    lines += [f"| {kind} | {n} |" for kind, n in counts.items()]
    lines += [f"| **total** | **{summary.accounted_for}** of {input_count} read |"]
    problems = [o for o in outcomes if o.outcome in (Outcome.QUARANTINED, Outcome.FAILED)]
    if problems:
        lines += ["", "## Needs attention", ""]
        lines += [f"- `{o.reference or o.sale_id}` {o.outcome.value}: {o.reason}" for o in problems[:200]]
    changed = [o for o in outcomes if o.error_code == CHANGED_AFTER_POSTING]
    if changed:
        lines += [
            "",
            f"## Changed in the source after posting ({len(changed)}): AIQ keeps the posted invoice",
            "",
        ]
        lines += [f"- `{o.reference or o.sale_id}` transaction {o.transaction_id}" for o in changed[:200]]
        get_run_logger().warning(
            "%d sales changed after their invoice was posted (AIQ keeps the posted invoice): %s",
            len(changed),
            ", ".join(str(o.reference or o.sale_id) for o in changed[:20]),
        )
    unchanged = sum(1 for o in outcomes if o.reason == POSTED_UNCHANGED)
    if unchanged:
        lines += [
            "",
            f"Read again but unchanged since posting: {unchanged} (their change time moved, their content "
            "did not: the source's version is a hash of what was posted, so nothing was sent)",
        ]
        get_run_logger().info("%d sales read again are unchanged since they were posted", unchanged)
    create_markdown_artifact(key=f"{key_prefix}-summary", markdown="\n".join(lines), description=title)
    shown = (
        "one row per sale"
        if len(outcomes) <= MAX_TABLE_ROWS
        else (
            f"{MAX_TABLE_ROWS:,} of {len(outcomes):,} sales: every one that needs attention, then the others"
        )
    )
    create_table_artifact(
        key=f"{key_prefix}-report", table=report_rows(outcomes), description=f"{title}: {shown}"
    )
    if not summary.adds_up:
        raise CountsDoNotAddUp(f"{summary.accounted_for} outcomes for {input_count} sales read")
    get_run_logger().info("Outcomes: %s", counts)
    return {"input": input_count, **counts}
