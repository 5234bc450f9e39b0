"""Reading AccountsIQ by external reference: the "read" of read-before-write."""

from __future__ import annotations

from datetime import datetime, timedelta

from prefect import get_run_logger

from aiq_flows.gateway.client import AiqGateway

# AIQ needs a date range for a reference lookup; a wide one still finds a document whose date
# moved (a sale date edited in the CRM, a journal moved to the first open period).
LOOKUP_WINDOW = timedelta(days=400)


def find_transaction(gateway: AiqGateway, reference: str, around: datetime, types: list[str]) -> int | None:
    """The AIQ transaction under an external reference (the first, if AIQ holds duplicates)."""
    found = gateway.transactions_by_external_reference(
        reference, around - LOOKUP_WINDOW, around + LOOKUP_WINDOW, types=types
    )
    if len(found) > 1:
        get_run_logger().error(
            "AIQ holds %d transactions with reference %s (ids %s): keeping the first; reverse the others",
            len(found),
            reference,
            [t.TransactionID for t in found],
        )
    return min((t.TransactionID for t in found), default=None)
