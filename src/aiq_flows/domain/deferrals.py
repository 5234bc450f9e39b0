"""Deferred revenue rules: the schedule of a deferred sale, its journals' references and dates,
and what to do when a month's period is closed."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from aiq_flows.domain.references import checked
from aiq_flows.domain.sales import Sale
from aiq_flows.domain.spreading import Allocation, Method, spread


class ClosedPeriodPolicy(StrEnum):
    FAIL = "fail"
    FIRST_OPEN_PERIOD = "first_open_period"


@dataclass(frozen=True)
class ScheduleLine:
    """One month's release of one revenue account of a deferred sale."""

    sale_reference: str  # the invoice's external reference, e.g. S-42
    month: date  # first day of the month
    revenue_gl: str
    department_id: str | None
    amount: Decimal


@dataclass(frozen=True)
class OpenPeriod:
    start: date
    end: date
    general_open: bool


class PeriodClosed(RuntimeError):
    pass


def deferral_schedule(
    sale: Sale,
    *,
    method: Method = Method.EQUAL_MONTHS,
    allocation: Allocation = Allocation.LARGEST_REMAINDER,
) -> list[ScheduleLine]:
    """Spread the net of each (revenue GL, BI code) of a deferred sale over its service period."""
    if sale.service_start is None or sale.service_end is None:
        raise ValueError(f"sale {sale.reference!r} is not deferred")
    groups: dict[tuple[str, str | None], Decimal] = {}
    for line in sale.lines:
        key = (line.gl_account_code, line.department_id)
        groups[key] = groups.get(key, Decimal(0)) + line.net_amount
    schedule = []
    for (gl, department), net in groups.items():
        for part in spread(
            net,
            sale.service_start,
            sale.service_end,
            currency=sale.currency,
            method=method,
            allocation=allocation,
        ):
            if part.amount:  # a month whose share is below one minor unit has nothing to release
                schedule.append(
                    ScheduleLine(sale.external_reference, part.month, gl, department, part.amount)
                )
    return sorted(schedule, key=lambda s: (s.month, s.revenue_gl, s.department_id or ""))


def release_reference(sale_reference: str, month: date) -> str:
    """``DEF-<sale ref>-<yyyymm>``: the journal that releases one month of one sale."""
    return checked(f"DEF-{sale_reference}-{month:%Y%m}")


def credit_reference(sale_reference: str) -> str:
    """``DEF-<sale ref>-CR``: the journal that releases what remained when the sale was credited."""
    return checked(f"DEF-{sale_reference}-CR")


def month_end(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def posting_date(
    wanted: date, periods: Sequence[OpenPeriod], policy: ClosedPeriodPolicy
) -> tuple[date, str | None]:
    """Where a journal wanted on `wanted` is dated, and a note when it moved.

    `fail` refuses a closed (or missing) period; `first_open_period` dates the journal on the
    first day of the first open general-ledger period after it and says so.
    """
    period = next((p for p in periods if p.start <= wanted <= p.end), None)
    if period is not None and period.general_open:
        return wanted, None
    reason = "is closed" if period is not None else "does not exist"
    if policy is ClosedPeriodPolicy.FAIL:
        raise PeriodClosed(f"the general ledger period for {wanted:%Y-%m} {reason}")
    later = sorted((p for p in periods if p.start > wanted and p.general_open), key=lambda p: p.start)
    if not later:
        raise PeriodClosed(f"the general ledger period for {wanted:%Y-%m} {reason} and no later one is open")
    return later[0].start, f"release for {wanted:%Y-%m}, posted in the first open period"
