"""Sales from a drop folder of CRM exports (CSV or Excel) into AccountsIQ: the same steps as the
nightly sync (validate, customers, credit check, one sweep of AIQ, bulk posting, exactly once),
then each file archived with a results file beside it instead of a CRM write-back."""

from __future__ import annotations

import uuid
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from aiq_flows.domain.credit import CreditPolicy
from aiq_flows.domain.outcomes import SaleOutcome
from aiq_flows.secrets import install_redaction
from aiq_flows.sources.file_drop import DropBatch, DropFolder
from blocks.aiq import AiqConnection
from blocks.store import StateStore
from flows.nightly_sales_sync import POSTING_THREADS, collect, submit_sales
from tasks.credit import credit_check
from tasks.customers import ensure_customers
from tasks.invoices import DeferralSettings, PostingSettings, sweep_aiq
from tasks.reporting import publish_sync_report
from tasks.sales import load_reference_data, validate_sales


@task(name="read-drop-folder", cache_policy=NONE)
def read_drop_folder(folder: str) -> DropBatch:
    batch = DropFolder(folder).read()
    logger = get_run_logger()
    for file in batch.files:
        if file.problem:
            logger.error("Rejected %s", file.problem)
    logger.info("Read %d sales from %d files", len(batch.records), len(batch.files))
    return batch


@task(name="archive-files-with-results", cache_policy=NONE)
def settle_drop_folder(folder: str, batch: DropBatch, outcomes: list[SaleOutcome]) -> list[str]:
    return [str(path) for path in DropFolder(folder).settle(batch, outcomes)]


@flow(name="file-drop-sales-sync", task_runner=ThreadPoolTaskRunner(max_workers=POSTING_THREADS))
def file_drop_sales_sync(
    folder: str,
    aiq_connection: str = "demo-uk",
    state_store: str = "demo-store",
    chunk_size: int = 200,
    deferred_revenue_gl: str = "2400",
    credit_policy: CreditPolicy = CreditPolicy.POST,
) -> dict[str, Any]:
    """`folder` holds incoming/, archive/ and rejected/ (created when missing)."""
    install_redaction()
    aiq = AiqConnection.load(aiq_connection)
    state = StateStore.load(state_store)
    run_id = str(flow_run.id or uuid.uuid4())
    batch = read_drop_folder(folder)
    reference = load_reference_data(aiq)
    checked = validate_sales(quote(batch.records), reference)
    customers = ensure_customers(aiq, quote(checked.sales))
    valid, refused = customers.split(checked.sales)
    credit = credit_check(aiq, state, quote(valid), quote(customers), CreditPolicy(credit_policy))
    outcomes = [*checked.quarantined, *refused, *credit.held]
    dates = [sale.sale_date for sale in credit.cleared]
    in_aiq = sweep_aiq(aiq, (min(dates), max(dates)) if dates else None)
    posting = submit_sales(
        aiq,
        state,
        credit,
        customers,
        reference,
        run_id,
        DeferralSettings(deferred_revenue_gl),
        PostingSettings(True, chunk_size),
        [0],
        in_aiq,
    )
    outcomes += collect(credit, posting)
    results = settle_drop_folder(folder, quote(batch), quote(outcomes))
    summary = publish_sync_report(
        quote(outcomes), len(batch.records), f"File drop into {aiq.company_id}", "file-drop-sales-sync"
    )
    rejected = [file for file in batch.files if file.problem]
    get_run_logger().info("File drop finished: %s; results in %s", summary, results)
    return {**summary, "files": len(batch.files), "rejected_files": len(rejected)}
