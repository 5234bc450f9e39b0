"""Reading and checking sales: from the CRM since the watermark, against AIQ's reference data."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol, runtime_checkable

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from aiq_flows.domain.codes import ErrorCode, invalid
from aiq_flows.domain.fields import Rejection
from aiq_flows.domain.outcomes import Outcome, SaleOutcome, outcome_for
from aiq_flows.domain.sales import PostingLimits, ReferenceData, Sale, hold_reason, validate_sale
from aiq_flows.domain.values import ValueRefused, datetime_value
from aiq_flows.domain.watermark import Watermark
from aiq_flows.sources.contract import SalesSource, SourceRefused
from aiq_flows.sources.mapping import MappingError
from aiq_flows.store.outbox import DocumentStore
from blocks.aiq import AiqConnection
from blocks.store import StateStore
from tasks.lookups import reference_data
from tasks.retry import retry_transient_aiq_errors


@dataclass(frozen=True)
class SalesBatch:
    records: list[dict[str, Any]]
    high_watermark: Watermark | None  # the latest readable change among the records
    cursor: Any  # where the next page starts, as the source keeps it; None: the last page


def high_watermark(records: list[dict[str, Any]]) -> Watermark | None:
    """The latest (change time, id) among records whose change time can be read; a record whose
    cannot is quarantined by validation and does not move the watermark."""
    marks = []
    for record in records:
        try:
            changed = datetime_value(record.get("updated_at"))
        except ValueRefused:
            continue
        if changed is not None and record.get("sale_id") is not None:
            marks.append(Watermark(changed, str(record["sale_id"])))
    return max(marks, default=None)


@dataclass
class CheckedSales:
    sales: list[Sale] = field(default_factory=list)
    quarantined: list[SaleOutcome] = field(default_factory=list)
    held: list[SaleOutcome] = field(default_factory=list)  # valid, but waiting for a person or AIQ


@runtime_checkable
class SourceBlock(Protocol):
    """A block that opens a source of sales (`blocks.crm`, `blocks.salesforce`)."""

    def source(self, name: str = ...) -> SalesSource: ...


@dataclass(frozen=True)
class Origin:
    """Where a run's sales come from: a source block, and the name it goes by (its watermark and,
    for a read-only source, its records' states in the store are kept under it)."""

    block: SourceBlock
    name: str

    def open(self) -> SalesSource:
        return self.block.source(self.name)


def worth_retrying(task: Any, task_run: Any, state: Any) -> bool:
    """A source read is retried unless the failure says a retry cannot help: a mapping that does
    not fit, a source that refuses (a login, a daily API limit)."""
    try:
        state.result()
    except (MappingError, SourceRefused):
        return False
    except Exception:
        return True
    return False


# A task that talks to the sales source: retried twice, unless retrying cannot help.
SOURCE_TASK_OPTIONS: dict[str, Any] = {
    "cache_policy": NONE,
    "retries": 2,
    "retry_delay_seconds": [2, 10],
    "retry_condition_fn": worth_retrying,
}


@contextmanager
def _opened(origin: Origin, state: StateStore) -> Iterator[tuple[DocumentStore, SalesSource]]:
    """The store and the source for one read, both closed after it."""
    store, source = state.store(), origin.open()
    try:
        yield store, source
    finally:
        store.dispose()
        source.dispose()


@task(
    name="check-sales-source",
    **SOURCE_TASK_OPTIONS,
)
def check_source(origin: Origin) -> None:
    """Every table, view, filter and column the source's mapping names is there: a wrong one
    stops the run here, before anything is read or written, with one line naming it."""
    source = origin.open()
    try:
        warnings = source.check()
    finally:
        source.dispose()
    for warning in warnings:
        get_run_logger().warning("%s: %s", origin.name, warning)


@task(
    name="read-changed-sales",
    **SOURCE_TASK_OPTIONS,
)
def read_changed_sales(
    origin: Origin,
    state: StateStore,
    watermark_name: str,
    overlap_minutes: int,
    max_sales: int | None = None,
    after: Any = None,
) -> SalesBatch:
    """Sales changed since the watermark (with an overlap window), plus, where the source keeps
    write-back columns, any never synced or pending: a page of at most `max_sales`, after the
    last sale of the previous page."""
    with _opened(origin, state) as (store, source):
        since = store.watermark(watermark_name)
        page = source.changed_sales(since, timedelta(minutes=overlap_minutes), max_sales, after)
    get_run_logger().info(
        "Read %d sales (watermark %s, overlap %d min)",
        len(page.records),
        since.updated_at.isoformat(),
        overlap_minutes,
    )
    return SalesBatch(page.records, high_watermark(page.records), page.cursor)


@task(
    name="read-unsettled-sales",
    **SOURCE_TASK_OPTIONS,
)
def read_unsettled_sales(
    origin: Origin, state: StateStore, watermark_name: str, overlap_minutes: int
) -> list[dict[str, Any]]:
    """For a read-only source (no write-back columns), the sales outside the changed window that
    the store says are pending, or has never seen (a view an ELT tool fills late, with the source's
    own change times): a source with write-back columns finds those itself."""
    with _opened(origin, state) as (store, source):
        if not source.read_only:
            return []
        since, overlap = store.watermark(watermark_name), timedelta(minutes=overlap_minutes)
        wanted = set(store.pending_records(origin.name))
        if since != Watermark.beginning():  # on a first run every sale is in the window
            for ids in source.ids():
                known = store.known_records(origin.name, [str(i) for i in ids])
                wanted |= {str(i) for i in ids if str(i) not in known}
        records = source.sales_by_id(sorted(wanted), since, overlap)
    if records:
        get_run_logger().info("Read %d pending or never-synced sales outside the window", len(records))
    return records


@task(
    name="read-change-window",
    **SOURCE_TASK_OPTIONS,
)
def read_change_window(
    origin: Origin, state: StateStore, watermark_name: str, overlap_minutes: int
) -> tuple[date, date] | None:
    """The first and last sale date of the sales this run will read."""
    with _opened(origin, state) as (store, source):
        return source.changed_window(store.watermark(watermark_name), timedelta(minutes=overlap_minutes))


@task(
    name="load-aiq-reference-data",
    cache_policy=NONE,
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=retry_transient_aiq_errors,
)
def load_reference_data(aiq: AiqConnection) -> ReferenceData:
    return reference_data(aiq.gateway())


def _quarantine(rejection: Rejection) -> SaleOutcome:
    return SaleOutcome(
        sale_id=rejection.sale_id,
        reference=rejection.reference,
        outcome=Outcome.QUARANTINED,
        reason=rejection.message,
        error_code=invalid(rejection.field),
    )


@task(name="validate-sales", cache_policy=NONE)
def validate_sales(
    records: list[dict[str, Any]], reference: ReferenceData, limits: PostingLimits | None = None
) -> CheckedSales:
    """Split records into valid sales, quarantined ones (each naming its field and rule) and
    valid ones held by the deployment's limits (`PostingLimits`) or AIQ's periods."""
    checked = CheckedSales()
    for record in records:
        result = validate_sale(record, reference)
        if isinstance(result, Rejection):
            checked.quarantined.append(_quarantine(result))
        elif reason := hold_reason(result, reference, limits or PostingLimits()):
            checked.held.append(
                outcome_for(
                    result,
                    Outcome.HELD,
                    error_code=ErrorCode.HELD,
                    reason=f"sale {result.reference!r} (id {result.sale_id}): {reason}",
                    retryable=True,
                )
            )
        else:
            checked.sales.append(result)
    logger = get_run_logger()
    for outcome in checked.quarantined:
        logger.warning("Quarantined %s", outcome.reason)
    for outcome in checked.held:
        logger.warning("Held %s", outcome.reason)
    return checked


class ChangedPages:
    """The CRM's changed sales, page after page (`read_changed_sales`), so that memory stays flat
    however many sales the night brings; counts what was read and the latest change seen."""

    def __init__(
        self,
        origin: Origin,
        state: StateStore,
        watermark_name: str,
        overlap_minutes: int,
        page_size: int,
        max_sales: int | None = None,
    ) -> None:
        self.origin, self.state, self.watermark_name = origin, state, watermark_name
        self.overlap_minutes, self.page_size, self.max_sales = overlap_minutes, page_size, max_sales
        self.read = 0
        self.high: Watermark | None = None  # where the watermark moves once every page is settled

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        yield from self._changed()
        if self.max_sales is None or self.read < self.max_sales:
            extra = read_unsettled_sales(self.origin, self.state, self.watermark_name, self.overlap_minutes)
            for start in range(0, len(extra), self.page_size):
                page = extra[start : start + self.page_size]
                self.read += len(page)
                yield page

    def _changed(self) -> Iterator[list[dict[str, Any]]]:
        cursor: Any = None
        while self.max_sales is None or self.read < self.max_sales:
            left = None if self.max_sales is None else self.max_sales - self.read
            size = self.page_size if left is None else min(self.page_size, left)
            batch = read_changed_sales(
                self.origin, self.state, self.watermark_name, self.overlap_minutes, size, cursor
            )
            # A source may page in its own sizes (Salesforce's batches): at most what is left.
            records = batch.records if left is None else batch.records[:left]
            if not records:
                return
            mark = batch.high_watermark if records is batch.records else high_watermark(records)
            self.read += len(records)
            self.high = max(filter(None, (self.high, mark)), default=None)
            yield records
            if batch.cursor is None or len(records) < len(batch.records):
                return
            cursor = batch.cursor
