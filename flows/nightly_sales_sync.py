"""Nightly sales sync: CRM sales into AccountsIQ as batch invoices, exactly once.

Reads like AIQ's "Sales Invoicing Integrations" guide: customers first, then a duplicate check by
external reference, then the batch invoice, then the transaction ID back to the CRM. Safe to run
again at any time (a UI retry, a duplicate schedule, two runs at once): the store and the lookup
by external reference make every invoice exist once.
"""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from decimal import Decimal
from typing import Any

from prefect import flow, get_run_logger
from prefect.concurrency.sync import concurrency
from prefect.flow_runs import pause_flow_run
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from aiq_flows.concurrency import write_limit
from aiq_flows.domain.credit import CreditPolicy
from aiq_flows.domain.outcomes import SaleOutcome
from aiq_flows.domain.sales import InvoiceKind, PostingLimits, Sale
from aiq_flows.domain.spreading import Allocation, Method
from aiq_flows.domain.watermark import Watermark
from aiq_flows.secrets import install_redaction
from blocks.aiq import AiqConnection
from blocks.crm import CrmDatabase
from blocks.store import StateStore
from tasks.attachments import BreakdownFormat, DocumentSettings, attach_and_fetch, publish_pdf_links
from tasks.credit import CreditResult
from tasks.crm_writeback import advance_watermark, write_back_outcomes
from tasks.customers import check_customer_codes, ensure_customers
from tasks.invoices import (
    DeferralSettings,
    PostingSettings,
    publish_deferral_schedules,
    sweep_aiq,
)
from tasks.plan import PlanApproval, publish_plan
from tasks.reporting import publish_sync_report
from tasks.sales import load_reference_data, read_change_window, read_changed_sales
from tasks.sales_pages import POSTING_THREADS, Posting, SalesPages, collect


@flow(name="nightly-sales-sync", task_runner=ThreadPoolTaskRunner(max_workers=POSTING_THREADS))
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
    in the plan."""
    install_redaction()
    aiq = AiqConnection.load(aiq_connection)
    crm = CrmDatabase.load(crm_database)
    state = StateStore.load(state_store)
    run_id = str(flow_run.id or uuid.uuid4())
    documents = DocumentSettings(attach_breakdown, pdf_folder)
    pdfs: dict[str, str] = {}
    watermark_name = f"nightly-sales-sync:{crm_database}:{aiq.company_id}"

    reference = load_reference_data(aiq)
    if deferred_revenue_gl not in reference.gl_codes:
        raise ValueError(
            f"deferred_revenue_gl {deferred_revenue_gl!r} is not a GL account in {aiq.company_id}"
        )
    planning = dry_run or approval
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
    )
    outcomes: list[SaleOutcome] = []
    deferred: list[Sale] = []
    planned: list[Sale] = []  # dry run and approval: the sales the plan would post
    read = 0
    high: Watermark | None = None
    cursor: tuple[Any, Any] | None = None
    # Read before write, once for the run: before anything is posted, AIQ's invoices dated in the
    # window of the run's sales (the store knows what the run itself posts).
    window = read_change_window(crm, state, watermark_name, overlap_minutes)
    in_aiq = sweep_aiq(aiq, window) if bulk or planning or invoice_kind == "item" else None
    waiting: list[tuple[CreditResult, list[SaleOutcome], Posting]] = []  # the page being posted

    def settle(credit: CreditResult, page_outcomes: list[SaleOutcome], posting: Posting) -> None:
        """A posted page's outcomes back to the CRM (its invoices' breakdowns and PDFs, if asked)."""
        page_outcomes = page_outcomes + collect(credit, posting)
        write_back_outcomes(crm, state, aiq.company_id, quote(page_outcomes))
        if documents.breakdown or documents.pdf_folder:
            pdfs.update(attach_and_fetch(aiq, quote(credit.cleared), quote(page_outcomes), documents))
        outcomes.extend(page_outcomes)
        deferred.extend(sale for sale in credit.cleared if sale.is_deferred)

    writer = nullcontext() if planning else concurrency(write_limit(aiq.company_id), occupy=1)
    # Page through the CRM, so that memory stays flat however many sales the night brings; each
    # page is read and checked while the previous one is being posted.
    with writer:  # one writer per AIQ entity
        while max_sales is None or read < max_sales:
            page_size_now = min(page_size, max_sales - read) if max_sales is not None else page_size
            batch = read_changed_sales(crm, state, watermark_name, overlap_minutes, page_size_now, cursor)
            if not batch.records:
                break
            page_read = len(batch.records)
            read += page_read
            cursor = batch.cursor
            high = max(filter(None, (high, batch.high_watermark)), default=None)
            page = pages.check(batch.records)
            batch.records.clear()  # the raw rows are not needed once validated: keep memory flat
            if waiting and pages.policy is not CreditPolicy.POST:
                settle(*waiting.pop())  # the balances must include the previous page's invoices
            credit = pages.credit(page.valid)
            page_outcomes = [*page.outcomes, *credit.held]
            if planning:
                outcomes += page_outcomes
                planned += credit.cleared
            else:
                posting = pages.submit(credit, in_aiq)
                if waiting:
                    settle(*waiting.pop())
                waiting.append((credit, page_outcomes, posting))
            if page_read < page_size_now:
                break

        if waiting:
            settle(*waiting.pop())

    if planning:
        customers = pages.customers
        plan = publish_plan(quote(planned), quote(outcomes), quote(customers), quote(in_aiq or {}), read)
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
        codes = check_customer_codes(state, aiq.company_id, quote(planned))  # recorded now
        pages.customers = ensure_customers(aiq, quote(codes.sales), quote(customers.without_planned()))
        # A customer AIQ refuses now, or whose code another took meanwhile, keeps its sales back.
        cleared, refused_now = pages.customers.split(codes.sales)
        approved = CreditResult(cleared=cleared)
        with concurrency(write_limit(aiq.company_id), occupy=1):
            posted = collect(approved, pages.submit(approved, in_aiq))
        refused_now += codes.quarantined
        write_back_outcomes(crm, state, aiq.company_id, quote([*outcomes, *refused_now, *posted]))
        if documents.breakdown or documents.pdf_folder:
            pdfs |= attach_and_fetch(aiq, quote(approved.cleared), quote(posted), documents)
        outcomes += [*refused_now, *posted]
        deferred += [sale for sale in approved.cleared if sale.is_deferred]

    # Only now, every outcome written back: the watermark moves (forward only).
    advance_watermark(state, watermark_name, high)
    summary = publish_sync_report(
        quote(outcomes), read, f"Nightly sales sync into {aiq.company_id}", "nightly-sales-sync"
    )
    publish_deferral_schedules(quote(deferred), quote(outcomes), pages.deferrals)
    publish_pdf_links(quote(pdfs), aiq.company_id)
    get_run_logger().info("Nightly sales sync finished: %s", summary)
    return summary


if __name__ == "__main__":
    nightly_sales_sync()
