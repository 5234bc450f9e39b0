"""Nightly sales sync: CRM sales into AccountsIQ as batch invoices, exactly once.

Reads like AIQ's "Sales Invoicing Integrations" guide: customers first, then a duplicate check by
external reference, then the batch invoice, then the transaction ID back to the CRM. Safe to run
again at any time (a UI retry, a duplicate schedule, two runs at once): the store and the lookup
by external reference make every invoice exist once.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from prefect import flow, get_run_logger
from prefect.flow_runs import pause_flow_run
from prefect.runtime import flow_run

from aiq_flows.domain.credit import CreditPolicy
from aiq_flows.domain.outcomes import SaleOutcome
from aiq_flows.domain.sales import InvoiceKind, PostingLimits, Sale
from aiq_flows.domain.spreading import Allocation, Method
from aiq_flows.secrets import install_redaction
from blocks.aiq import AiqConnection
from blocks.store import StateStore
from tasks.attachments import BreakdownFormat, DocumentSettings, attach_and_fetch, publish_pdf_links
from tasks.crm_writeback import advance_watermark, write_back_outcomes
from tasks.invoices import (
    DeferralSettings,
    PostingSettings,
    publish_deferral_schedules,
    sweep_aiq,
)
from tasks.plan import PlanApproval, publish_plan
from tasks.reporting import RunReport, load_results_folder, publish_sync_report
from tasks.sales import ChangedPages, check_source, load_reference_data, read_change_window
from tasks.sales_pages import POSTING_THREADS, SalesPages
from tasks.typed_prefect import as_is, load_block, load_origin, threads
from tasks.writers import writing_to


@flow(name="nightly-sales-sync", task_runner=threads(POSTING_THREADS))
def nightly_sales_sync(
    aiq_connection: str = "demo-uk",
    crm_database: str = "demo-crm",
    state_store: str = "demo-store",
    chunk_size: int = 200,
    bulk: bool = True,
    invoice_kind: InvoiceKind = "batch",
    overlap_minutes: int = 60,
    max_sales: int | None = None,
    page_size: int = 2000,
    deferred_revenue_gl: str = "2400",
    deferral_method: Method = Method.EQUAL_MONTHS,
    deferral_allocation: Allocation = Allocation.LARGEST_REMAINDER,
    credit_policy: CreditPolicy = CreditPolicy.POST,
    credit_overdue_days: int | None = None,
    attach_breakdown: BreakdownFormat | None = None,
    pdf_folder: str | None = None,
    dry_run: bool = False,
    approval: bool = False,
    approval_timeout_minutes: int = 12 * 60,
    claim_lease_seconds: float = 900,
    max_invoice_total: Decimal | None = None,
    results_folder: str | None = None,
) -> dict[str, Any]:
    """Parameters name Blocks, never secrets: the keys live in the AIQ Connection block.
    `bulk` reads AIQ once for the run (a sweep of the sales' dates) and posts each chunk of
    `chunk_size` invoices in one call; without it, one lookup and one call per invoice.
    `invoice_kind` (batch or item) applies to sales whose CRM row does not choose; item invoices
    always go through the bulk draft-and-post operations.
    Sales with a service period are invoiced to `deferred_revenue_gl` and released monthly by
    the deferred-revenue-release flow. `credit_policy`: `post` (no check), `hold` (a sale that
    would take its customer over the credit limit, or whose customer owes more than
    `credit_overdue_days` past due, is held and tried again next run) or `post_and_warn`.
    The CRM is read `page_size` sales at a time, each page written back before the next.
    `attach_breakdown` (csv or xlsx) attaches each invoice's lines to it in AIQ; `pdf_folder`
    fetches each invoice's PDF there, linked from the run's artifacts.
    `dry_run` publishes the plan (customers to create, invoices with totals, holds, quarantine)
    and writes nothing anywhere; `approval` publishes it, waits for a typed approval in the UI,
    then posts exactly that plan. A sale whose total is above `max_invoice_total` (in its own
    currency) is held for approval: a normal run leaves it pending, an approval run includes it
    in the plan. Every sale's outcome goes to a CSV in the `results_folder` block's folder (default:
    the worker's Prefect home), linked from the report, which lists what needs a person."""
    install_redaction()
    aiq = load_block(AiqConnection, aiq_connection)
    crm = load_origin(crm_database)
    state = load_block(StateStore, state_store)
    run_id = str(flow_run.id or uuid.uuid4())
    report = RunReport(
        f"Nightly sales sync into {aiq.company_id}",
        "nightly-sales-sync",
        load_results_folder(results_folder),
        flow_run.name or run_id,
        aiq.company_id,
    )
    documents = DocumentSettings(attach_breakdown, pdf_folder)
    pdfs: dict[str, str] = {}
    watermark_name = f"nightly-sales-sync:{crm_database}:{aiq.company_id}"

    check_source(crm)  # a wrong mapping stops the run here, before anything is read or written
    reference = load_reference_data(aiq)
    if deferred_revenue_gl not in reference.gl_codes:
        raise ValueError(
            f"deferred_revenue_gl {deferred_revenue_gl!r} is not a GL account in {aiq.company_id}"
        )
    planning = dry_run or approval

    def write_back(sales: list[Sale], outcomes: list[SaleOutcome]) -> None:
        """A settled page back to the CRM (its invoices' breakdowns and PDFs attached, if asked)."""
        write_back_outcomes(crm, state, aiq.company_id, as_is(outcomes))
        if documents.breakdown or documents.pdf_folder:
            pdfs.update(attach_and_fetch(aiq, as_is(sales), as_is(outcomes), documents))

    pages = SalesPages(
        aiq,
        state,
        reference,
        run_id,
        DeferralSettings(deferred_revenue_gl, Method(deferral_method), Allocation(deferral_allocation)),
        PostingSettings(bulk, chunk_size, invoice_kind, claim_lease_seconds),
        # An approval run shows every sale in its plan, those above max_invoice_total included.
        PostingLimits(None if approval else max_invoice_total),
        CreditPolicy(credit_policy),
        credit_overdue_days,
        planning,
        on_settled=write_back,
        report=report,
    )
    changed = ChangedPages(crm, state, watermark_name, overlap_minutes, page_size, max_sales)
    # Read before write, once for the run: before anything is posted, AIQ's invoices dated in the
    # window of the run's sales (the store knows what the run itself posts).
    window = read_change_window(crm, state, watermark_name, overlap_minutes)
    pages.in_aiq = sweep_aiq(aiq, window) if bulk or planning or invoice_kind == "item" else None

    with writing_to(state, aiq.company_id, planning=planning):
        for records in changed:  # the CRM page by page: each checked while the previous one posts
            pages.add(records)  # validate, customers, credit check, post (or plan)
        pages.settle()

    if planning:
        plan = publish_plan(
            as_is(pages.planned),
            as_is(pages.outcomes),
            as_is(pages.customers),
            as_is(pages.in_aiq or {}),
            changed.read,
        )
        if dry_run:
            get_run_logger().info("Dry run: nothing was written to AIQ or the CRM: %s", plan.summary)
            return plan.summary
        decision = pause_flow_run(
            wait_for_input=PlanApproval.with_initial_data(description=plan.markdown, approver=""),
            timeout=approval_timeout_minutes * 60,
        )
        if not plan.approved_by(decision):
            get_run_logger().warning("Plan not approved (%s): nothing posted", decision.approver or "nobody")
            return {**plan.summary, "approved": False}
        get_run_logger().info("Plan approved by %s: posting exactly it", decision.approver)
        with writing_to(state, aiq.company_id):
            pages.post_approved()

    # Only now, every outcome written back: the watermark moves (forward only).
    advance_watermark(state, watermark_name, changed.high)
    summary = publish_sync_report(as_is(report), changed.read)
    publish_deferral_schedules(as_is(pages.deferred), pages.deferrals, pages.deferred_invoiced)
    publish_pdf_links(as_is(pdfs), aiq.company_id)
    get_run_logger().info("Nightly sales sync finished: %s", summary)
    return summary


if __name__ == "__main__":
    nightly_sales_sync()
