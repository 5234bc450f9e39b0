"""Reading AccountsIQ by external reference: the "read" of read-before-write."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta

from prefect import get_run_logger

from aiq_flows.domain.sales import ReferenceData
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


def references_in_window(gateway: AiqGateway, start: date, end: date, types: list[str]) -> dict[str, int]:
    """Every transaction of these types dated in [start, end]: {external reference: the first
    transaction ID}, duplicates logged."""
    found: dict[str, list[int]] = {}
    for summary in gateway.transactions_between(
        datetime.combine(start, time()), datetime.combine(end, time()), types
    ):
        if summary.ExternalReference:
            found.setdefault(summary.ExternalReference, []).append(summary.TransactionID)
    return _first_of_each(found)


def _first_of_each(found: dict[str, list[int]]) -> dict[str, int]:
    for reference, ids in found.items():
        if len(ids) > 1:
            get_run_logger().error(
                "AIQ holds %d transactions with reference %s (ids %s): keeping the first; reverse the others",
                len(ids),
                reference,
                ids,
            )
    return {reference: min(ids) for reference, ids in found.items()}


def find_by_sweep(gateway: AiqGateway, wanted: Mapping[str, date], types: list[str]) -> dict[str, int]:
    """The AIQ transactions under many external references at once ({reference: its date}): one
    paged sweep of the dates they span, instead of one lookup per reference. A document whose
    date moved outside that span is not seen here; the store is what remembers those."""
    if not wanted:
        return {}
    start = datetime.combine(min(wanted.values()), time())
    end = datetime.combine(max(wanted.values()), time())
    found: dict[str, list[int]] = {}
    for summary in gateway.transactions_between(start, end, types=types):
        reference = summary.ExternalReference
        if reference is not None and reference in wanted:
            found.setdefault(reference, []).append(summary.TransactionID)
    return _first_of_each(found)


def reference_data(gateway: AiqGateway) -> ReferenceData:
    """What a sale must agree with in AIQ: its tax codes and rates, its GL accounts, and the
    first and last day of its periods."""
    tax_rates = {tax.Code: tax.Rate for tax in gateway.get_tax_codes()}
    gl_codes = frozenset(account.code for account in gateway.get_gl_accounts())
    periods = gateway.get_periods()
    starts, ends = [p.StartDate.date() for p in periods], [p.EndDate.date() for p in periods]
    # GetGLAccountList does not say which accounts are control accounts; AIQ itself refuses
    # invoice lines on them, so a line coded to one fails in-band with its ErrorCode.
    return ReferenceData(tax_rates, gl_codes, (min(starts), max(ends)) if periods else None)
