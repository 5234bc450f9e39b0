"""Back-to-back invoicing: a purchase invoice from the contractor and a sales invoice with the
markup to the client, raised together and tagged with the job's BI code, never half.

Reads like AIQ's guide: check the BI codes once (dimensions and departments), then for each job
save both item invoices as drafts, post both, and report the pair with its margin. A pair
interrupted between the two posts is completed by the next run; re-running a completed run
changes nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from aiq_flows.iterables import chunked
from aiq_flows.secrets import install_redaction
from blocks.aiq import AiqConnection
from blocks.jobs import JobsDatabase
from blocks.store import StateStore
from tasks.back_to_back import (
    B2BSettings,
    HalfPairsLeft,
    check_jobs,
    publish_pair_report,
    raise_pairs,
    read_jobs,
    retire_bi_codes,
    write_back_jobs,
)
from tasks.pairs import announce_pairs
from tasks.typed_prefect import load_block
from tasks.writers import writing_to


@flow(name="back-to-back-invoicing")
def back_to_back_invoicing(
    aiq_connection: str = "demo-uk",
    jobs_database: str = "demo-jobs",
    state_store: str = "demo-store",
    cost_gl: str = "5100",
    revenue_gl: str = "4200",
    recharge_tax_code: str = "EX",
    allow_create_bi_codes: bool = False,
    retire_closing_bi_codes: bool = False,
    chunk_size: int = 50,
    max_jobs: int | None = None,
) -> dict[str, Any]:
    """Parameters name Blocks, never secrets. `recharge_tax_code` is the tax code of a cost
    recharged at cost under the agent VAT mode (a disbursement: zero-rated or exempt)."""
    install_redaction()
    aiq = load_block(AiqConnection, aiq_connection)
    jobs = load_block(JobsDatabase, jobs_database)
    state = load_block(StateStore, state_store)
    run_id = str(flow_run.id or uuid.uuid4())
    settings = B2BSettings(
        cost_gl, revenue_gl, recharge_tax_code, allow_create_bi_codes, retire_closing_bi_codes
    )

    records = read_jobs(jobs, max_jobs)
    checked = check_jobs(aiq, records, settings)
    outcomes = list(checked.quarantined)
    with writing_to(state, aiq.company_id):  # one writer per entity
        for number, chunk in enumerate(chunked(checked.ready, chunk_size), start=1):
            outcomes += raise_pairs(aiq, state, chunk, settings, run_id, number)
    if settings.retire_closing_bi_codes:
        retire_bi_codes(aiq, outcomes)
    write_back_jobs(jobs, outcomes)
    summary = publish_pair_report(outcomes, len(records), f"Back-to-back invoicing in {aiq.company_id}")
    get_run_logger().info("Back-to-back invoicing finished: %s", summary)
    announce_pairs(aiq.company_id, summary)
    if summary["half_pairs"]:
        raise HalfPairsLeft(f"{summary['half_pairs']} half pairs: see the back-to-back-summary artifact")
    return summary


if __name__ == "__main__":
    back_to_back_invoicing()
