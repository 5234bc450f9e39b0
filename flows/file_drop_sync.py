"""Sales from a drop folder of CRM exports (CSV or Excel) into AccountsIQ: the same steps as the
nightly sync (validate, customers, credit check, one sweep of AIQ, bulk posting, exactly once),
then each file archived with a results file beside it instead of a CRM write-back."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.runtime import flow_run

from aiq_flows.domain.credit import CreditPolicy
from aiq_flows.domain.outcomes import SaleOutcome
from aiq_flows.domain.sales import PostingLimits
from aiq_flows.domain.values import date_span
from aiq_flows.secrets import install_redaction
from aiq_flows.sources.file_drop import DropBatch, DropFolder
from aiq_flows.sources.mapping import DEFAULT_EXPORT, load_export_mapping
from blocks.aiq import AiqConnection
from blocks.store import StateStore
from tasks.invoices import DeferralSettings, PostingSettings, sweep_aiq
from tasks.reporting import RunReport, load_results_folder, publish_sync_report
from tasks.sales import load_reference_data
from tasks.sales_pages import POSTING_THREADS, SalesPages
from tasks.typed_prefect import as_is, load_block, threads
from tasks.writers import writing_to


@task(name="read-drop-folder", cache_policy=NONE)
def read_drop_folder(folder: str, mapping: str | None = None) -> DropBatch:
    """Every file waiting in the folder, read through `mapping` (YAML text or a file's path: the
    columns sections naming the export's own headers), or the file drop's own headers."""
    batch = DropFolder(folder).read(load_export_mapping(mapping) if mapping else DEFAULT_EXPORT)
    logger = get_run_logger()
    for file in batch.files:
        if file.problem:
            logger.error("Rejected %s", file.problem)
    logger.info("Read %d sales from %d files", len(batch.records), len(batch.files))
    return batch


@task(name="archive-files-with-results", cache_policy=NONE)
def settle_drop_folder(folder: str, batch: DropBatch, outcomes: list[SaleOutcome]) -> list[str]:
    return [str(path) for path in DropFolder(folder).settle(batch, outcomes)]


@flow(name="file-drop-sales-sync", task_runner=threads(POSTING_THREADS))
def file_drop_sales_sync(
    folder: str,
    aiq_connection: str = "demo-uk",
    state_store: str = "demo-store",
    chunk_size: int = 200,
    deferred_revenue_gl: str = "2400",
    credit_policy: CreditPolicy = CreditPolicy.POST,
    max_invoice_total: Decimal | None = None,
    mapping: str | None = None,
    results_folder: str | None = None,
) -> dict[str, Any]:
    """`folder` holds incoming/, archive/ and rejected/ (created when missing). A sale above
    `max_invoice_total` is held (its file's results say so; drop it again to retry). `mapping`:
    the export's own headers (YAML text or a file's path), as a source mapping's columns name
    them; without it, the file drop's own headers."""
    install_redaction()
    aiq = load_block(AiqConnection, aiq_connection)
    state = load_block(StateStore, state_store)
    run_id = str(flow_run.id or uuid.uuid4())
    batch = read_drop_folder(folder, mapping)
    report = RunReport(
        f"File drop into {aiq.company_id}",
        "file-drop-sales-sync",
        load_results_folder(results_folder),
        flow_run.name or run_id,
        aiq.company_id,
    )
    outcomes: list[SaleOutcome] = []  # each file's results file lists its own (a drop is small)
    pages = SalesPages(
        aiq,
        state,
        load_reference_data(aiq),
        run_id,
        DeferralSettings(deferred_revenue_gl),
        PostingSettings(True, chunk_size),
        PostingLimits(max_invoice_total),
        CreditPolicy(credit_policy),
        on_settled=lambda _sales, settled: outcomes.extend(settled),
        report=report,
    )
    read = len(batch.records)
    pages.in_aiq = sweep_aiq(aiq, date_span(r.get("sale_date") for r in batch.records))  # read before write
    with writing_to(state, aiq.company_id):  # one writer per AIQ entity
        pages.add(batch.records)  # validate, customers, credit check, post
        pages.settle()
    results = settle_drop_folder(folder, as_is(batch), as_is(outcomes))
    summary = publish_sync_report(as_is(report), read)
    rejected = [file for file in batch.files if file.problem]
    get_run_logger().info("File drop finished: %s; results in %s", summary, results)
    return {**summary, "files": len(batch.files), "rejected_files": len(rejected)}
