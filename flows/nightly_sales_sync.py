"""Nightly sales sync: CRM sales into AccountsIQ as batch invoices, exactly once.

Reads like AIQ's "Sales Invoicing Integrations" guide: customers first, then a duplicate check by
external reference, then the batch invoice, then the transaction ID back to the CRM. Safe to run
again at any time (a UI retry, a duplicate schedule, two runs at once): the store and the lookup
by external reference make every invoice exist once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, TypeVar

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from aiq_flows.domain.spreading import Allocation, Method
from aiq_flows.secrets import install_redaction
from blocks.aiq import AiqConnection
from blocks.crm import CrmDatabase
from blocks.store import StateStore
from tasks.crm_writeback import advance_watermark, write_back_outcomes
from tasks.customers import ensure_customers
from tasks.invoices import DeferralSettings, post_batch_invoices, publish_deferral_schedules
from tasks.reporting import publish_sync_report
from tasks.sales import load_reference_data, read_changed_sales, validate_sales

T = TypeVar("T")


def chunked(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@flow(name="nightly-sales-sync")
def nightly_sales_sync(
    aiq_connection: str = "demo-uk",
    crm_database: str = "demo-crm",
    state_store: str = "demo-store",
    chunk_size: int = 200,
    bulk: bool = True,
    overlap_minutes: int = 60,
    max_sales: int | None = None,
    deferred_revenue_gl: str = "2400",
    deferral_method: Method = Method.EQUAL_MONTHS,
    deferral_allocation: Allocation = Allocation.LARGEST_REMAINDER,
) -> dict[str, Any]:
    """Parameters name Blocks, never secrets: the keys live in the AIQ Connection block.
    `bulk` posts each chunk of `chunk_size` invoices in one call after one sweep of AIQ for the
    chunk's dates; without it, one lookup and one call per invoice.
    Sales with a service period are invoiced to `deferred_revenue_gl` and released monthly by
    the deferred-revenue-release flow."""
    install_redaction()
    aiq = AiqConnection.load(aiq_connection)
    crm = CrmDatabase.load(crm_database)
    state = StateStore.load(state_store)
    run_id = str(flow_run.id or uuid.uuid4())
    watermark_name = f"nightly-sales-sync:{crm_database}:{aiq.company_id}"

    batch = read_changed_sales(crm, state, watermark_name, overlap_minutes, max_sales)
    reference = load_reference_data(aiq)
    if deferred_revenue_gl not in reference.gl_codes:
        raise ValueError(
            f"deferred_revenue_gl {deferred_revenue_gl!r} is not a GL account in {aiq.company_id}"
        )
    deferrals = DeferralSettings(
        deferred_revenue_gl, Method(deferral_method), Allocation(deferral_allocation)
    )
    checked = validate_sales(batch.records, reference)
    customers = ensure_customers(aiq, checked.sales)
    ready, refused = customers.split(checked.sales)

    outcomes = [*checked.quarantined, *refused]
    for number, chunk in enumerate(chunked(ready, chunk_size), start=1):
        outcomes += post_batch_invoices(
            aiq, state, chunk, customers.accounts, reference, run_id, number, deferrals, bulk
        )

    write_back_outcomes(crm, state, aiq.company_id, outcomes)
    advance_watermark(state, watermark_name, batch.high_watermark)
    summary = publish_sync_report(
        outcomes, len(batch.records), f"Nightly sales sync into {aiq.company_id}", "nightly-sales-sync"
    )
    publish_deferral_schedules(ready, outcomes, deferrals)
    get_run_logger().info("Nightly sales sync finished: %s", summary)
    return summary


if __name__ == "__main__":
    nightly_sales_sync()
