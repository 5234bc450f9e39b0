"""Back-to-back invoicing under a real Prefect API against the sandbox over HTTP: both legs
posted once with the job's BI code, the margin in the report equal to the ledger's, bad BI codes
quarantined alone, a pair interrupted between its two posts completed by the next run, nothing
half when the first post is refused, re-runs that change nothing."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from aiq_flows.sources.demo_jobs import BAD_JOBS, seed_demo_jobs
from aiq_flows.sources.jobs_sql import JobLineRow, JobRow, SqlJobs
from blocks import JobsDatabase
from flows.back_to_back_invoicing import back_to_back_invoicing
from tasks.back_to_back import HalfPairsLeft
from tests.conftest import DemoBlocks
from tests.support.artifacts import latest_table
from tests.support.processes import Sandbox
from tests.test_gateway_sandbox import gateway_for

WRITES = (
    "SaveInvoiceGetBackInvoiceID",
    "PostInvoiceGetBackTransactionID",
    "CancelInvoice",
    "CreateDepartment",
)


@pytest.fixture
def jobs_block(demo_blocks: DemoBlocks, tmp_path: Any) -> tuple[str, SqlJobs]:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    name = f"jobs-{uuid.uuid4().hex[:8]}"
    JobsDatabase(url=SecretStr(url)).save(name)
    return name, SqlJobs(url)


def run(blocks: DemoBlocks, jobs: tuple[str, SqlJobs], **parameters: Any) -> dict[str, Any]:
    return back_to_back_invoicing(
        aiq_connection=blocks.aiq, jobs_database=jobs[0], state_store=blocks.store, **parameters
    )


def add_job(jobs: SqlJobs, **fields: Any) -> int:
    values: dict[str, Any] = {
        "reference": f"PL-T{uuid.uuid4().hex[:6]}",
        "supplier_code": "TEMPS01",
        "customer_code": "ACME01",
        "job_date": date(2026, 11, 20),
        "currency": "GBP",
        "markup_percent": Decimal(20),
        "vat_mode": "principal",
        "bi_code": "JOB-1001",
        "updated_at": datetime(2026, 11, 20, 9),
        "lines": [
            JobLineRow(line_no=1, description="Timesheet", hours=Decimal("37.5"), rate=Decimal("22.50"))
        ],
        **fields,
    }
    return jobs.add(JobRow(**values))


def legs(sandbox: Sandbox, job_id: int) -> dict[str, list[dict[str, Any]]]:
    return {
        role: sandbox.documents(external_reference=f"B2B-{job_id}-{suffix}")
        for role, suffix in (("sales", "S"), ("purchase", "P"))
    }


def lines_of(sandbox: Sandbox, transaction_id: int) -> list[Any]:
    gateway = gateway_for(sandbox)
    try:
        transaction = gateway.get_transaction(transaction_id)
        assert transaction is not None
        return transaction.Lines
    finally:
        gateway.close()


def report_rows() -> list[dict[str, Any]]:
    return latest_table("back-to-back-pairs")


def test_demo_jobs_post_both_legs_once_with_the_bi_code_and_the_margin_of_the_ledger(
    sandbox: Sandbox, demo_blocks: DemoBlocks, jobs_block: tuple[str, SqlJobs]
) -> None:
    seeded = seed_demo_jobs(jobs_block[1], count=16, today=date(2026, 11, 20))
    summary = run(demo_blocks, jobs_block)
    assert (summary["input"], summary["created"], summary["quarantined"], summary["half_pairs"]) == (
        20,
        16,
        4,
        0,
    )

    rows = {row["job_id"]: row for row in report_rows()}
    assert len(rows) == 20
    good = [job_id for job_id in seeded.job_ids if job_id not in seeded.bad]
    for job_id in good:
        found = legs(sandbox, job_id)
        assert [len(found["sales"]), len(found["purchase"])] == [1, 1], job_id
        sales, purchase = found["sales"][0], found["purchase"][0]
        row = rows[job_id]
        assert (row["sales_transaction_id"], row["purchase_transaction_id"]) == (
            sales["transaction_id"],
            purchase["transaction_id"],
        )
        sales_lines = lines_of(sandbox, sales["transaction_id"])
        purchase_lines = lines_of(sandbox, purchase["transaction_id"])
        codes = {
            line.model_extra["DepartmentID"]
            for line in (*sales_lines, *purchase_lines)
            if line.BroadType == "Net"
        }
        assert codes == {row["bi_code"]} and row["bi_code"] in ("JOB-1001", "JOB-1002")
        charge = -sum(line.Amount for line in sales_lines if line.GLAccountCode == "4200")
        cost = sum(line.Amount for line in purchase_lines if line.GLAccountCode == "5100")
        assert (Decimal(row["charge"]), Decimal(row["cost"])) == (charge, cost)
        assert Decimal(row["margin"]) == charge - cost > 0
    for job_id in seeded.bad:
        assert legs(sandbox, job_id) == {"sales": [], "purchase": []}
        assert rows[job_id]["outcome"] == "quarantined" and rows[job_id]["reason"].startswith("job 'PL-")
    messages = {seeded.bad[j]: rows[j]["reason"] for j in seeded.bad}
    assert set(messages) == set(BAD_JOBS)
    assert "bi_code: BI code 'JOB-9999' does not exist in AccountsIQ" in messages["unknown_bi_code"]
    assert "bi_code: BI code 'JOB-0900' is inactive in AccountsIQ" in messages["inactive_bi_code"]
    assert "markup_percent or a fixed_fee" in messages["markup_and_fee"]
    assert "lines[1]" in messages["hours_without_rate"]
    statuses = Counter(jobs_block[1].get(j).aiq_status for j in seeded.job_ids)  # type: ignore[union-attr]
    assert statuses == {"posted": 16, "quarantined": 4}
    assert sum(Decimal(v) for v in sandbox.trial_balance().values()) == 0


def test_rerunning_a_completed_run_changes_nothing(
    sandbox: Sandbox, demo_blocks: DemoBlocks, jobs_block: tuple[str, SqlJobs]
) -> None:
    job_id = add_job(jobs_block[1])
    assert run(demo_blocks, jobs_block)["created"] == 1
    writes = {op: sandbox.calls().get(op, 0) for op in WRITES}
    assert run(demo_blocks, jobs_block)["input"] == 0  # settled jobs are not read again
    # even with the write-back lost, the store knows the pair is complete: no AIQ write at all
    jobs_block[1].write_back([{"id": job_id, "status": None}])
    again = run(demo_blocks, jobs_block)
    assert (again["input"], again["already_present"]) == (1, 1)
    assert {op: sandbox.calls().get(op, 0) for op in WRITES} == writes
    assert [len(found) for found in legs(sandbox, job_id).values()] == [1, 1]
    assert jobs_block[1].get(job_id).aiq_status == "posted"  # type: ignore[union-attr]


def test_a_fault_between_the_two_posts_leaves_a_half_pair_the_next_run_completes(
    sandbox: Sandbox, demo_blocks: DemoBlocks, jobs_block: tuple[str, SqlJobs]
) -> None:
    job_id = add_job(jobs_block[1])
    sandbox.faults(
        {"kind": "http_error", "operation": "PostInvoiceGetBackTransactionID", "skip": 1, "count": 1}
    )
    with pytest.raises(HalfPairsLeft):
        run(demo_blocks, jobs_block)
    found = legs(sandbox, job_id)
    assert (len(found["sales"]), len(found["purchase"])) == (1, 0)  # sales posted, purchase a draft
    assert jobs_block[1].get(job_id).aiq_status == "half"  # type: ignore[union-attr]
    [row] = report_rows()
    assert row["outcome"] == "half" and "purchase" not in row["sales_leg"]
    assert row["purchase_leg"] == f"B2B-{job_id}-P draft"

    sandbox.clear_faults()
    summary = run(demo_blocks, jobs_block)
    assert summary["created"] == 1 and summary["half_pairs"] == 0
    found = legs(sandbox, job_id)
    assert (len(found["sales"]), len(found["purchase"])) == (1, 1)
    gateway = gateway_for(sandbox)
    statuses = sorted(i.Status for i in gateway.invoices_by_external_reference(f"B2B-{job_id}-P"))
    gateway.close()
    assert statuses == ["Posted"]  # the draft of the first run was posted, not saved again
    assert jobs_block[1].get(job_id).aiq_sales_transaction_id == found["sales"][0]["transaction_id"]  # type: ignore[union-attr]


def test_an_answer_lost_after_the_second_post_is_read_back_not_reposted(
    sandbox: Sandbox, demo_blocks: DemoBlocks, jobs_block: tuple[str, SqlJobs]
) -> None:
    job_id = add_job(jobs_block[1])
    sandbox.faults(
        {"kind": "drop_response", "operation": "PostInvoiceGetBackTransactionID", "skip": 1, "count": 1},
        {"kind": "drop_response", "operation": "SaveInvoiceGetBackInvoiceID", "count": 1},
    )
    summary = run(demo_blocks, jobs_block)
    assert summary["created"] == 1
    assert [len(found) for found in legs(sandbox, job_id).values()] == [1, 1]
    gateway = gateway_for(sandbox)
    for suffix in ("S", "P"):
        assert [i.Status for i in gateway.invoices_by_external_reference(f"B2B-{job_id}-{suffix}")] == [
            "Posted"
        ]
    gateway.close()


def test_a_refused_first_post_cancels_both_drafts_and_posts_nothing(
    sandbox: Sandbox, demo_blocks: DemoBlocks, jobs_block: tuple[str, SqlJobs]
) -> None:
    job_id = add_job(jobs_block[1], job_date=date(2025, 1, 15))  # the sales ledger is closed then
    summary = run(demo_blocks, jobs_block)
    assert (summary["failed"], summary["half_pairs"]) == (1, 0)
    assert legs(sandbox, job_id) == {"sales": [], "purchase": []}
    gateway = gateway_for(sandbox)
    for suffix in ("S", "P"):
        assert [i.Status for i in gateway.invoices_by_external_reference(f"B2B-{job_id}-{suffix}")] == [
            "Cancelled"
        ]
    gateway.close()
    job = jobs_block[1].get(job_id)
    assert (
        job is not None
        and job.aiq_status == "failed"
        and "SALES_LEDGER_ALREADY_CLOSED" in (job.aiq_message or "")
    )


def test_bi_codes_created_when_allowed_with_elements_checked_and_retired_when_closing(
    sandbox: Sandbox, demo_blocks: DemoBlocks, jobs_block: tuple[str, SqlJobs]
) -> None:
    jobs = jobs_block[1]
    codes = {"analysis_code1": "C-ACME", "analysis_code2": "P-1003", "analysis_code3": "CONSULT"}
    new = add_job(jobs, bi_code="JOB-1003", closing=True, **codes)
    bad_element = add_job(jobs, bi_code="JOB-1004", analysis_code2="P-7777")
    by_elements = add_job(
        jobs, bi_code=None, analysis_code1="C-BRIGHT", analysis_code2="P-1002", analysis_code3="CONSULT"
    )
    summary = run(demo_blocks, jobs_block, allow_create_bi_codes=True, retire_closing_bi_codes=True)
    assert (summary["created"], summary["quarantined"]) == (2, 1)
    rows = {row["job_id"]: row for row in report_rows()}
    assert rows[by_elements]["bi_code"] == "JOB-1002"
    assert (
        "analysis_codes[2]: 'P-7777' is not an element of analysis dimension 2" in rows[bad_element]["reason"]
    )
    gateway = gateway_for(sandbox)
    created = gateway.get_department("JOB-1003")
    gateway.close()
    assert created is not None and created.analysis_codes[:3] == ("C-ACME", "P-1003", "CONSULT")
    assert created.IsActive is False  # the closing job retired it once its pair was complete
    assert rows[new]["outcome"] == "posted"


def test_a_withdrawn_job_with_a_half_pair_is_unwound_with_a_credit_note(
    sandbox: Sandbox, demo_blocks: DemoBlocks, jobs_block: tuple[str, SqlJobs]
) -> None:
    job_id = add_job(jobs_block[1])
    sandbox.faults(
        {"kind": "http_error", "operation": "PostInvoiceGetBackTransactionID", "skip": 1, "count": 1}
    )
    with pytest.raises(HalfPairsLeft):
        run(demo_blocks, jobs_block)
    sandbox.clear_faults()
    jobs_block[1].touch(job_id, cancelled=True)
    summary = run(demo_blocks, jobs_block)
    assert summary["half_pairs"] == 0
    [row] = report_rows()
    assert row["outcome"] == "cancelled" and row["sales_leg"].endswith("compensated")
    gateway = gateway_for(sandbox)
    assert [i.Status for i in gateway.invoices_by_external_reference(f"B2B-{job_id}-P")] == ["Cancelled"]
    [note] = gateway.credit_notes_by_external_reference(f"B2B-{job_id}-S-CN")
    gateway.close()
    assert note.Status == "Posted"
    revenue = Decimal(sandbox.trial_balance().get("4200", "0"))
    assert revenue == 0  # the credit note reversed the sales leg exactly


def test_agent_mode_refuses_a_recharge_tax_code_that_would_tax_the_disbursement(
    sandbox: Sandbox, demo_blocks: DemoBlocks, jobs_block: tuple[str, SqlJobs]
) -> None:
    agent = add_job(jobs_block[1], vat_mode="agent")
    principal = add_job(jobs_block[1])

    summary = run(demo_blocks, jobs_block, recharge_tax_code="T1")  # 20%: VAT on a disbursement

    assert (summary["created"], summary["quarantined"]) == (1, 1)
    assert legs(sandbox, agent) == {"sales": [], "purchase": []}
    assert all(len(documents) == 1 for documents in legs(sandbox, principal).values())
    [row] = [r for r in latest_table("back-to-back-pairs") if r["job_id"] == agent]
    assert (
        "vat_mode: agent mode recharges the cost as a disbursement under T1, whose rate is 20"
        in row["reason"]
    )
