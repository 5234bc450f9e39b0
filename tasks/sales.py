"""Reading and checking sales: from the CRM since the watermark, against AIQ's reference data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from aiq_flows.domain.outcomes import Outcome, SaleOutcome
from aiq_flows.domain.sales import ReferenceData, Rejection, Sale, validate_sale
from aiq_flows.domain.watermark import Watermark
from blocks.aiq import AiqConnection
from blocks.crm import CrmDatabase
from blocks.store import StateStore
from tasks.retry import retry_transient_aiq_errors


@dataclass(frozen=True)
class SalesBatch:
    records: list[dict[str, Any]]
    high_watermark: Watermark | None


@dataclass
class CheckedSales:
    sales: list[Sale] = field(default_factory=list)
    quarantined: list[SaleOutcome] = field(default_factory=list)


@task(name="read-changed-sales", cache_policy=NONE, retries=2, retry_delay_seconds=[2, 10])
def read_changed_sales(
    crm: CrmDatabase,
    state: StateStore,
    watermark_name: str,
    overlap_minutes: int,
    max_sales: int | None = None,
    after: Watermark | None = None,
) -> SalesBatch:
    """Sales changed since the watermark (with an overlap window), plus any never synced or
    pending: a page of at most `max_sales`, after the last sale of the previous page."""
    store, source = state.store(), crm.source()
    try:
        since = store.watermark(watermark_name)
        records = source.changed_sales(since, timedelta(minutes=overlap_minutes), max_sales, after)
    finally:
        store.dispose()
        source.dispose()
    high = max((Watermark(r["updated_at"], r["sale_id"]) for r in records), default=None)
    get_run_logger().info(
        "Read %d sales (watermark %s, overlap %d min)",
        len(records),
        since.updated_at.isoformat(),
        overlap_minutes,
    )
    return SalesBatch(records, high)


@task(name="read-change-window", cache_policy=NONE, retries=2, retry_delay_seconds=[2, 10])
def read_change_window(
    crm: CrmDatabase, state: StateStore, watermark_name: str, overlap_minutes: int
) -> tuple[date, date] | None:
    """The first and last sale date of the sales this run will read."""
    store, source = state.store(), crm.source()
    try:
        return source.changed_window(store.watermark(watermark_name), timedelta(minutes=overlap_minutes))
    finally:
        store.dispose()
        source.dispose()


@task(
    name="load-aiq-reference-data",
    cache_policy=NONE,
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=retry_transient_aiq_errors,
)
def load_reference_data(aiq: AiqConnection) -> ReferenceData:
    gateway = aiq.gateway()
    tax_rates = {tax.Code: tax.Rate for tax in gateway.get_tax_codes()}
    gl_codes = frozenset(account.code for account in gateway.get_gl_accounts())
    # GetGLAccountList does not say which accounts are control accounts; AIQ itself refuses
    # invoice lines on them, so a line coded to one fails in-band with its ErrorCode.
    return ReferenceData(tax_rates=tax_rates, gl_codes=gl_codes)


def _quarantine(rejection: Rejection) -> SaleOutcome:
    return SaleOutcome(
        sale_id=rejection.sale_id,
        reference=rejection.reference,
        outcome=Outcome.QUARANTINED,
        reason=rejection.message,
        error_code=f"INVALID:{rejection.field}",
    )


@task(name="validate-sales", cache_policy=NONE)
def validate_sales(records: list[dict[str, Any]], reference: ReferenceData) -> CheckedSales:
    """Split records into valid sales and quarantined ones, each naming its field and rule."""
    checked = CheckedSales()
    for record in records:
        result = validate_sale(record, reference)
        if isinstance(result, Rejection):
            checked.quarantined.append(_quarantine(result))
        else:
            checked.sales.append(result)
    if checked.quarantined:
        logger = get_run_logger()
        for outcome in checked.quarantined:
            logger.warning("Quarantined %s", outcome.reason)
    return checked
