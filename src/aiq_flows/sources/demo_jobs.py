"""Demo back-to-back jobs for the sandbox's DEMO_UK entity: placements billed with a percent
markup or a fixed fee, as principal or agent, tagged with BI codes, plus the bad rows a real
jobs system produces (each kind planted once, so the demo shows what happens to it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from aiq_flows.sources.jobs_sql import JobLineRow, JobRow, SqlJobs

D = Decimal
CUSTOMERS = ("ACME01", "BRIGHT02", "CORAL03")
SUPPLIERS = ("TEMPS01", "CONTRACT02")
# Kinds of bad job and what the flow must do with them.
BAD_JOBS = {
    "markup_and_fee": "quarantined (validation)",
    "hours_without_rate": "quarantined (validation)",
    "unknown_bi_code": "quarantined (BI-code preflight)",
    "inactive_bi_code": "quarantined (BI-code preflight)",
}


@dataclass
class SeededJobs:
    job_ids: list[int] = field(default_factory=list)
    bad: dict[int, str] = field(default_factory=dict)


def _timesheet(*rows: tuple[str, str, str]) -> list[JobLineRow]:
    return [
        JobLineRow(line_no=n, description=text, hours=D(hours), rate=D(rate))
        for n, (text, hours, rate) in enumerate(rows, start=1)
    ]


def seed_demo_jobs(jobs: SqlJobs, count: int = 16, today: date | None = None) -> SeededJobs:
    today = today or datetime.now(UTC).date()
    stamp = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    seeded = SeededJobs()
    for n in range(count):
        job_date = today - timedelta(days=n % 10)
        percent = n % 3 != 2
        job = JobRow(
            reference=f"PL-{2000 + n}",
            supplier_code=SUPPLIERS[n % 2],
            customer_code=CUSTOMERS[n % 3],
            job_date=job_date,
            currency="GBP",
            markup_percent=D("15") + n % 4 * D("2.5") if percent else None,
            fixed_fee=None if percent else D("150.00") + n,
            vat_mode="agent" if n % 4 == 3 else "principal",
            bi_code="JOB-1001" if n % 2 == 0 else "JOB-1002",
            updated_at=stamp + timedelta(seconds=n),
            lines=_timesheet(
                (f"Week ending {job_date:%d %b}", f"{35 + n % 6}.5", f"{18 + n}.45"),
                ("Overtime", f"{n % 5 + 1}", f"{27 + n}.675" if n % 2 else f"{27 + n}.50"),
            ),
        )
        seeded.job_ids.append(jobs.add(job))
    bad_rows = {
        "markup_and_fee": JobRow(markup_percent=D(10), fixed_fee=D(50), bi_code="JOB-1001"),
        "hours_without_rate": JobRow(
            markup_percent=D(10),
            bi_code="JOB-1001",
            lines=[JobLineRow(line_no=1, description="Timesheet", hours=D(8))],
        ),
        "unknown_bi_code": JobRow(markup_percent=D(10), bi_code="JOB-9999"),
        "inactive_bi_code": JobRow(markup_percent=D(10), bi_code="JOB-0900"),
    }
    for offset, (kind, row) in enumerate(bad_rows.items(), start=count):
        row.reference = f"PL-{2000 + offset}"
        row.supplier_code, row.customer_code = "TEMPS01", "ACME01"
        row.job_date, row.currency, row.vat_mode = today, "GBP", "principal"
        row.updated_at = stamp + timedelta(seconds=offset)
        if not row.lines:
            row.lines = _timesheet(("Timesheet", "10", "20.00"))
        job_id = jobs.add(row)
        seeded.job_ids.append(job_id)
        seeded.bad[job_id] = kind
    return seeded
