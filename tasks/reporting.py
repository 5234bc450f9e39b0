"""The run report: every outcome to the run's results file as its pages settle (one CSV row per
sale, in a `ResultsFolder`), and in the Prefect UI the counts, which must add up to the input,
and a table of what needs a person, linked to the full results. The UI's share stays the same size
whatever the night's: readable, and under Prefect's event size at 100,000 sales."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.settings import PREFECT_HOME

from aiq_flows.domain.money import round_money
from aiq_flows.domain.outcomes import CountsDoNotAddUp, Outcome, OutcomeTally, SaleOutcome, id_order
from blocks.results import ResultsFolder
from tasks.events import announce_if_needed
from tasks.typed_prefect import load_block

# The UI's tables show at most this many rows; every row is in the results file.
MAX_TABLE_ROWS = 1_000
COLUMNS = (
    "sale_id",
    "reference",
    "external_reference",
    "customer",
    "gross_total",
    "outcome",
    "aiq_transaction_id",
    "error_code",
    "reason",
)


def _amount(outcome: SaleOutcome) -> str:
    if outcome.gross_total is None:
        return ""
    if outcome.currency is None:
        return str(outcome.gross_total)
    return f"{round_money(outcome.gross_total, outcome.currency)} {outcome.currency}"


def report_row(o: SaleOutcome) -> dict[str, Any]:
    return {
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


def load_results_folder(name: str | None) -> ResultsFolder:
    """The `ResultsFolder` block of that name; without one, a folder in the Prefect home of the
    process that runs the flow."""
    if name:
        return load_block(ResultsFolder, name)
    return ResultsFolder(path=str(Path(PREFECT_HOME.value()) / "aiq-results"))


@dataclass
class RunReport:
    """One run's report, built as its pages settle: `add` counts each outcome, keeps the first
    that need a person, and appends every one to the results file; `publish_sync_report` shows it."""

    title: str
    key_prefix: str
    results: ResultsFolder
    run_name: str
    entity: str = ""
    tally: OutcomeTally = field(default_factory=lambda: OutcomeTally(keep=MAX_TABLE_ROWS))
    file: Path | None = None
    _out: TextIO | None = None
    _writer: Any = None

    def add(self, outcomes: list[SaleOutcome]) -> None:
        self.tally.add(outcomes)
        if self._writer is None:
            self._open()
        self._writer.writerows(report_row(o) for o in sorted(outcomes, key=lambda o: id_order(o.sale_id)))
        if self._out is not None:
            self._out.flush()

    def _open(self) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{stamp}-{self.run_name}")
        folder = self.results.folder() / self.key_prefix
        folder.mkdir(parents=True, exist_ok=True)
        self.file = folder / f"{safe}.csv"
        self._out = self.file.open("w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._out, fieldnames=COLUMNS)
        self._writer.writeheader()

    def close(self) -> None:
        if self._writer is None:
            self._open()  # a run that read nothing still has its (empty) results file
        if self._out is not None:
            self._out.close()
            self._out = None

    @property
    def link(self) -> str:
        return self.results.link(self.file) if self.file is not None else ""


@task(name="publish-sync-report", cache_policy=NONE)
def publish_sync_report(report: RunReport, input_count: int) -> dict[str, Any]:
    """The counts (which must add up to the sales read: the run fails if they do not), what needs
    a person, and the link to the full results."""
    report.close()
    tally, logger = report.tally, get_run_logger()
    summary = tally.summary(input_count)
    counts = {kind.value: summary.counts[kind] for kind in Outcome}
    lines = [f"# {report.title}", "", "| outcome | sales |", "|---|---:|"]
    lines += [f"| {kind} | {n:,} |" for kind, n in counts.items()]
    lines += [f"| **total** | **{summary.accounted_for:,}** of {input_count:,} read |", ""]
    lines += [f"Full results, one row per sale: [{report.file.name if report.file else ''}]({report.link})"]
    if tally.needing_attention:
        shown = len(tally.attention)
        lines += ["", f"## Needs attention ({tally.needing_attention:,})", ""]
        lines += [
            f"- `{o.reference or o.sale_id}` {o.outcome.value}: {o.reason}" for o in tally.attention[:200]
        ]
        if tally.needing_attention > 200:
            lines += [
                f"- … {tally.needing_attention - 200:,} more in the table ({shown:,}) and the results file"
            ]
    if tally.changed_after_posting:
        lines += [
            "",
            f"## Changed in the source after posting ({tally.changed_after_posting:,}): AIQ keeps the "
            "posted invoice; credit it to change it",
        ]
        logger.warning(
            "%d sales changed after their invoice was posted (AIQ keeps the posted invoice)",
            tally.changed_after_posting,
        )
    if tally.unchanged_rereads:
        lines += [
            "",
            f"Read again but unchanged since posting: {tally.unchanged_rereads:,} (their change time moved, "
            "their content did not: the source's version is a hash of what was posted, so nothing was sent)",
        ]
    create_markdown_artifact(
        key=f"{report.key_prefix}-summary", markdown="\n".join(lines), description=report.title
    )
    shown_rows = [report_row(o) for o in sorted(tally.attention, key=lambda o: id_order(o.sale_id))]
    more = "" if len(shown_rows) == tally.needing_attention else f" (the first {len(shown_rows):,})"
    create_table_artifact(
        key=f"{report.key_prefix}-report",
        table=shown_rows,
        description=(
            f"{report.title}: what needs a person, {tally.needing_attention:,} of {input_count:,} sales"
            f"{more}; every sale in {report.link}"
        ),
    )
    create_table_artifact(  # one row: what a group run reads back from each entity's run
        key=f"{report.key_prefix}-counts",
        table=[{"entity": report.entity, "input": input_count, **counts}],
        description=f"{report.title}: counts",
    )
    announce_if_needed(
        report.entity,
        {
            "held": summary.counts[Outcome.HELD],
            "quarantined": summary.counts[Outcome.QUARANTINED],
            "failed": summary.counts[Outcome.FAILED],
            "changed_after_posting": tally.changed_after_posting,
        },
        results=report.link,
    )
    if not summary.adds_up:
        raise CountsDoNotAddUp(f"{summary.accounted_for} outcomes for {input_count} sales read")
    logger.info("Outcomes: %s; full results: %s", counts, report.link)
    return {"input": input_count, **counts}
