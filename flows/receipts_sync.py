"""Receipts sync: the cash side of AIQ's routine ("receipts, allocations, and payments"). Every
payment in the source becomes one receipt in AIQ (``R-<payment id>``) and is allocated to the
invoices it pays (the ones it names, or the customer's oldest first), exactly once; a partial
payment leaves the rest outstanding, an overpayment stays on account, a payment for an invoice
not in AIQ yet waits for a later run, and a refund or chargeback undoes its payment's allocations.
Each payment's outcome goes back to the source, and each paid sale's invoice status (what is
left, when it was paid, days overdue) to its columns; the report's counts add up or the run fails.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from aiq_flows.secrets import install_redaction
from blocks.aiq import AiqConnection
from blocks.store import StateStore
from tasks.receipts import (
    publish_receipts_report,
    read_payment_folder,
    read_payments,
    settle_payment_folder,
    settle_payments,
    write_back_invoice_status,
    write_back_payments,
)
from tasks.typed_prefect import load_block, load_origin
from tasks.writers import writing_to


@flow(name="receipts-sync")
def receipts_sync(
    aiq_connection: str = "demo-uk",
    state_store: str = "demo-store",
    payments_source: str = "demo-crm",
    payments_folder: str | None = None,
    bank_account: str = "1200",
    run_date: date | None = None,
) -> dict[str, Any]:
    """Payments from `payments_source` (a SQL source whose mapping has a ``payments`` section), or,
    when `payments_folder` is given, from the exports dropped in its ``incoming/`` folder (each
    archived with its results); the sales' references use the source's prefix."""
    install_redaction()
    aiq = load_block(AiqConnection, aiq_connection)
    state = load_block(StateStore, state_store)
    origin = load_origin(payments_source)
    source = origin.open()
    try:
        prefix = source.mapping.reference_prefix
    finally:
        source.dispose()
    dropped = read_payment_folder(payments_folder) if payments_folder else None
    records = dropped.records if dropped is not None else read_payments(origin)
    run_id = str(flow_run.id or uuid.uuid4())
    with writing_to(state, aiq.company_id):  # one writer per entity
        results = settle_payments(aiq, state, records, prefix, bank_account, run_date or date.today(), run_id)
    if payments_folder and dropped is not None:
        settle_payment_folder(payments_folder, dropped, results)
    else:
        write_back_payments(origin, results)
        write_back_invoice_status(aiq, origin, results, prefix, run_date or date.today())
    summary = publish_receipts_report(results, len(records))
    get_run_logger().info("Receipts sync finished: %s", summary)
    return summary


if __name__ == "__main__":
    receipts_sync()
