"""Reconciliation: the CRM compared with AccountsIQ for a date range. Sales without an AIQ
invoice, invoices without a sale, amount or customer mismatches, duplicate external references
and written-back IDs AIQ does not have are reported; so are payments without a receipt, receipts
without a payment and allocations that are not what a payment's status says. The run fails when
any exists."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from prefect import flow, get_run_logger

from aiq_flows.secrets import install_redaction
from blocks.aiq import AiqConnection
from blocks.store import StateStore
from tasks.events import RECONCILIATION_DIFFERENCES, announce
from tasks.reconciliation import ReconciliationDifferences, compare, compare_payments, publish_reconciliation
from tasks.sales import check_source
from tasks.typed_prefect import load_block, load_origin


@flow(name="reconciliation")
def reconciliation(
    aiq_connection: str = "demo-uk",
    crm_database: str = "demo-crm",
    state_store: str = "demo-store",
    from_date: date | None = None,
    to_date: date | None = None,
    days: int = 45,
) -> dict[str, Any]:
    """Without dates: the last `days` days up to today."""
    install_redaction()
    aiq = load_block(AiqConnection, aiq_connection)
    crm = load_origin(crm_database)
    end = to_date or date.today()
    start = from_date or end - timedelta(days=days)
    check_source(crm)
    findings = compare(aiq, load_block(StateStore, state_store), crm, start, end)
    findings += compare_payments(aiq, crm, start, end)
    counts = publish_reconciliation(findings, start, end, aiq.company_id)
    get_run_logger().info("Reconciliation: %s", counts or "no differences")
    if findings:
        announce(
            RECONCILIATION_DIFFERENCES,
            aiq.company_id,
            counts,
            range=f"{start} to {end}",
            kinds=", ".join(f"{kind.replace('_', ' ')}: {n}" for kind, n in counts.items()),
        )
        raise ReconciliationDifferences(f"{len(findings)} differences: see the reconciliation artifacts")
    return {"from": str(start), "to": str(end), "differences": 0}


if __name__ == "__main__":
    reconciliation()
