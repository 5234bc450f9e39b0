"""Back-to-back invoicing steps: read and check jobs, BI-code preflight, raise each job's pair of
item invoices (purchase from the contractor, sales to the client with the markup), retire the
BI codes of closing jobs, write the outcome back, report every pair."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from aiq_flows.domain.bi_codes import BiCodes, KnownCode, Resolved, resolve
from aiq_flows.domain.fields import Rejection
from aiq_flows.domain.jobs import Counterparty, Job, price_job, validate_job
from aiq_flows.domain.outcomes import Outcome, SaleOutcome
from aiq_flows.domain.pricing import Quote
from aiq_flows.engine.pairing import (
    Leg,
    Pair,
    PairResult,
    credit_note_compensation,
    filled_draft,
    priced_lines,
)
from aiq_flows.gateway.client import AiqGateway
from aiq_flows.gateway.errors import AiqBusinessError
from blocks.aiq import AiqConnection
from blocks.jobs import JobsDatabase
from blocks.store import StateStore
from tasks.pairs import (
    PairedOutcome,
    by_record,
    leg_columns,
    pair_outcome,
    publish_pairs_report,
    quarantined,
    read_unsettled,
    send_pairs,
    write_back,
)
from tasks.retry import retry_transient_aiq_errors


class HalfPairsLeft(RuntimeError):
    """Some pairs have one leg posted and the other not: the next run completes them."""


@dataclass(frozen=True)
class B2BSettings:
    cost_gl: str = "5100"
    revenue_gl: str = "4200"
    recharge_tax_code: str = "EX"
    allow_create_bi_codes: bool = False
    retire_closing_bi_codes: bool = False


@dataclass(frozen=True)
class ReadyJob:
    job: Job
    bi_code: Resolved
    quote: Quote
    supplier_tax: str
    customer_tax: str


@dataclass(frozen=True)
class JobOutcome(PairedOutcome):
    job: Job | None = None
    quote: Quote | None = None
    bi_code: str | None = None


@dataclass
class CheckedJobs:
    ready: list[ReadyJob] = field(default_factory=list)
    quarantined: list[JobOutcome] = field(default_factory=list)


def _quarantined(rejection: Rejection) -> JobOutcome:
    return JobOutcome(quarantined(rejection.sale_id, rejection.reference, rejection.message))


@task(name="read-unsettled-jobs", cache_policy=NONE, retries=2, retry_delay_seconds=[2, 10])
def read_jobs(jobs: JobsDatabase, limit: int | None = None) -> list[dict[str, Any]]:
    return read_unsettled(jobs.source(), "jobs", limit)


def _bi_codes(gateway: AiqGateway) -> BiCodes:
    dimensions = gateway.get_analysis_dimensions()
    codes = {d.DepartmentID: KnownCode(d.IsActive, d.analysis_codes) for d in gateway.get_departments()}
    return BiCodes(codes, [frozenset(d.element_codes) for d in dimensions])


@task(
    name="check-jobs-and-bi-codes",
    cache_policy=NONE,
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=retry_transient_aiq_errors,
)
def check_jobs(aiq: AiqConnection, records: list[dict[str, Any]], settings: B2BSettings) -> CheckedJobs:
    """Validate each job and price it; the BI-code preflight, once per run, before any write.
    A deployment setting that cannot work (an unknown GL account or tax code) fails the run."""
    gateway = aiq.gateway()
    taxes = {t.Code: t.Rate for t in gateway.get_tax_codes()}
    gl_codes = {g.code for g in gateway.get_gl_accounts()}
    for name in ("cost_gl", "revenue_gl"):
        if getattr(settings, name) not in gl_codes:
            raise ValueError(f"{name} {getattr(settings, name)!r} is not a GL account in {aiq.company_id}")
    if settings.recharge_tax_code not in taxes:
        raise ValueError(
            f"recharge_tax_code {settings.recharge_tax_code!r} is not a tax code in {aiq.company_id}"
        )
    suppliers = {s.Code: _counterparty(s) for s in gateway.get_active_suppliers() if s.Code}
    customers = {c.Code: _counterparty(c) for c in gateway.get_active_customers() if c.Code}
    known = _bi_codes(gateway)
    checked = CheckedJobs()
    for record in records:
        job = validate_job(record)
        if isinstance(job, Rejection):
            checked.quarantined.append(_quarantined(job))
            continue
        priced = price_job(job, suppliers, customers, taxes, settings.recharge_tax_code)
        if isinstance(priced, Rejection):
            checked.quarantined.append(_quarantined(priced))
            continue
        code = resolve(job, known, settings.allow_create_bi_codes)
        if isinstance(code, Rejection):
            checked.quarantined.append(_quarantined(code))
            continue
        checked.ready.append(ReadyJob(job, code, priced.quote, priced.supplier_tax, priced.customer_tax))
    get_run_logger().info("%d jobs ready, %d quarantined", len(checked.ready), len(checked.quarantined))
    return checked


def _counterparty(account: Any) -> Counterparty:
    return Counterparty(account.CurrencyCode, account.DefaultTaxCode)


# --- the pair ---------------------------------------------------------------------------------------


def _when(job: Job) -> datetime:
    return datetime.combine(job.job_date, time())


def build_pair(gateway: AiqGateway, entity: str, ready: ReadyJob, settings: B2BSettings) -> Pair:
    job, quote, code = ready.job, ready.quote, ready.bi_code.code
    when = _when(job)
    sales_lines = priced_lines(quote.sales, settings.revenue_gl, code)
    sales = Leg(
        "sales",
        entity,
        job.sales_reference,
        gateway,
        lambda: filled_draft(
            gateway.new_sales_invoice(job.customer_code),
            job.sales_reference,
            when,
            f"Back-to-back job {job.reference}; cost: purchase invoice {job.purchase_reference}",
            job.reference,
            code,
            sales_lines,
        ),
        quote.charge,
        quote.sales_vat,
        compensate=credit_note_compensation(
            gateway,
            job.sales_reference,
            job.customer_code,
            when,
            sales_lines,
            code,
            f"job {job.reference} withdrawn",
        ),
    )
    purchase = Leg(
        "purchase",
        entity,
        job.purchase_reference,
        gateway,
        lambda: filled_draft(
            gateway.new_purchases_invoice(job.supplier_code),
            job.purchase_reference,
            when,
            f"Back-to-back job {job.reference}; billed on sales invoice {job.sales_reference}",
            job.reference,
            code,
            priced_lines(quote.purchase, settings.cost_gl, code),
        ),
        quote.cost,
        quote.purchase_vat,
    )
    return Pair(
        job.pair_key,
        str(job.job_id),
        job.version,
        (sales, purchase),
        withdrawn=job.cancelled,
    )


def _ensure_code(gateway: AiqGateway, ready: ReadyJob) -> None:
    job = ready.job
    try:
        gateway.create_department(ready.bi_code.code, f"Job {job.reference}", job.analysis_codes)
    except AiqBusinessError as error:
        if error.error_code != "DEPARTMENT_ID_ALREADY_IN_USE":  # another run made it first
            raise


@task(
    name="raise-back-to-back-pairs",
    task_run_name="raise-pairs-{chunk_number}",
    cache_policy=NONE,
)
def raise_pairs(
    aiq: AiqConnection,
    state: StateStore,
    ready: list[ReadyJob],
    settings: B2BSettings,
    run_id: str,
    chunk_number: int,
) -> list[JobOutcome]:
    """Each job's pair exactly once; a job whose BI code must be created gets it first."""
    gateway = aiq.gateway()

    def code_first(item: ReadyJob) -> JobOutcome | None:
        """The job's BI code created, if it must be; the job's outcome when AIQ refuses it."""
        if not item.bi_code.create or item.job.cancelled:
            return None
        try:
            _ensure_code(gateway, item)
        except AiqBusinessError as error:
            reason = f"could not create BI code {item.bi_code.code}: {error}"
            failed = SaleOutcome(
                item.job.job_id,
                item.job.reference,
                Outcome.FAILED,
                error_code=error.error_code,
                reason=reason,
            )
            return JobOutcome(failed, job=item.job, quote=item.quote, bi_code=item.bi_code.code)
        return None

    def outcome_of(item: ReadyJob, result: PairResult) -> JobOutcome:
        outcome = pair_outcome(
            item.job.job_id,
            item.job.reference,
            item.job.pair_key,
            result,
            customer_code=item.job.customer_code,
            gross_total=item.quote.charge + item.quote.sales_vat,
            currency=item.job.currency,
        )
        return JobOutcome(outcome, result, job=item.job, quote=item.quote, bi_code=item.bi_code.code)

    return send_pairs(
        state,
        run_id,
        ready,
        lambda item: build_pair(gateway, aiq.company_id, item, settings),
        outcome_of,
        code_first,
    )


@task(name="retire-closing-bi-codes", cache_policy=NONE)
def retire_bi_codes(aiq: AiqConnection, outcomes: list[JobOutcome]) -> list[str]:
    """Closing jobs whose pair is complete retire their BI code (UpdateDepartment active=false)."""
    closing = {
        o.bi_code
        for o in outcomes
        if o.job is not None and o.job.closing and o.bi_code and o.status in ("posted", "cancelled")
    }
    if not closing:
        return []
    gateway = aiq.gateway()
    retired = []
    for department in gateway.get_departments():
        if department.DepartmentID in closing and department.IsActive:
            gateway.update_department(department.DepartmentID, department.Description or "", active=False)
            retired.append(department.DepartmentID)
    get_run_logger().info("Retired BI codes: %s", retired)
    return sorted(retired)


@task(name="write-back-jobs", cache_policy=NONE, retries=3, retry_delay_seconds=[2, 10, 30])
def write_back_jobs(jobs: JobsDatabase, outcomes: list[JobOutcome]) -> None:
    write_back(jobs.source(), outcomes, lambda o: {"aiq_bi_code": o.bi_code})


def pair_rows(outcomes: list[JobOutcome]) -> list[dict[str, Any]]:
    rows = []
    for o in by_record(outcomes):
        quote = o.quote
        rows.append(
            {
                "job_id": o.outcome.sale_id,
                "job": o.outcome.reference or "",
                "bi_code": o.bi_code or "",
                **leg_columns(o.pair),
                "cost": str(quote.cost) if quote else "",
                "charge": str(quote.charge) if quote else "",
                "margin": str(quote.margin) if quote else "",
                "margin_percent": str(quote.margin_percent)
                if quote and quote.margin_percent is not None
                else "",
                "outcome": o.status,
                "reason": o.outcome.reason or "",
            }
        )
    return rows


@task(name="publish-pair-report", cache_policy=NONE)
def publish_pair_report(outcomes: list[JobOutcome], input_count: int, title: str) -> dict[str, Any]:
    rows = pair_rows(outcomes)
    margin = sum((Decimal(r["margin"]) for r in rows if r["margin"] and r["outcome"] == "posted"), Decimal(0))
    note = f"\nMargin on posted pairs: **{margin}**"
    summary = publish_pairs_report(outcomes, input_count, title, "back-to-back", "jobs", rows, notes=[note])
    return {**summary, "margin": str(margin)}
