"""Deferred revenue rules: the schedule of a deferred sale, which journals a release run owes,
their lines and dates, and what to do when a month's period is closed."""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from aiq_flows.domain.references import release_credit_reference, release_reference
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
        groups[key] = groups.get(key, Decimal(0)) + line.net
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


class ReleaseRow(Protocol):
    """One stored month of a deferred sale's schedule (the store's ScheduledMonth is one)."""

    @property
    def sale_reference(self) -> str: ...
    @property
    def month(self) -> date: ...
    @property
    def revenue_gl(self) -> str: ...
    @property
    def department_id(self) -> str | None: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def deferred_gl(self) -> str: ...
    @property
    def credit_requested(self) -> bool: ...


R = TypeVar("R", bound=ReleaseRow)


@dataclass(frozen=True)
class DueJournal(Generic[R]):
    """One journal to post: a month of a sale, or, for a credited sale, all it has left."""

    reference: str
    rows: list[R]
    wanted: date  # the date it belongs on (a month's end; the run's date for a credit)
    credit: bool = False

    @property
    def sale(self) -> str:
        return self.rows[0].sale_reference

    @property
    def amount(self) -> Decimal:
        return sum((r.amount for r in self.rows), Decimal(0))

    @property
    def months(self) -> str:
        return ", ".join(sorted({f"{r.month:%Y-%m}" for r in self.rows}))


def due_journals(scheduled: Iterable[R], run_date: date, all_upfront: bool = False) -> list[DueJournal[R]]:
    """The journals a release run owes: for each credited sale one credit journal with every month
    it has left (``DEF-<sale>-CR``), dated on the run; for every other month whose end has passed
    (or every month, `all_upfront`) one journal per sale and month (``DEF-<sale>-<yyyymm>``), dated
    on the month's end, missed months included. Credits first, then by sale and month."""
    credited: dict[str, list[R]] = defaultdict(list)
    monthly: dict[tuple[str, date], list[R]] = defaultdict(list)
    for row in scheduled:
        if row.credit_requested:
            credited[row.sale_reference].append(row)
        elif all_upfront or month_end(row.month) <= run_date:
            monthly[(row.sale_reference, row.month)].append(row)
    due = [
        DueJournal(release_credit_reference(sale), rows, run_date, credit=True)
        for sale, rows in sorted(credited.items())
    ]
    due += [
        DueJournal(release_reference(sale, month), rows, month_end(month))
        for (sale, month), rows in sorted(monthly.items())
    ]
    return due


@dataclass(frozen=True)
class JournalLine:
    gl_account: str
    department_id: str | None
    amount: Decimal  # debit positive, credit negative


def release_lines(rows: Iterable[ReleaseRow]) -> list[JournalLine]:
    """A release journal's lines: per deferred account, revenue account and BI code, debit the
    deferred revenue and credit the revenue with the same amount (the journal balances to zero)."""
    totals: dict[tuple[str, str, str | None], Decimal] = defaultdict(Decimal)
    for row in rows:
        totals[(row.deferred_gl, row.revenue_gl, row.department_id)] += row.amount
    lines: list[JournalLine] = []
    for (deferred_gl, revenue_gl, department), amount in sorted(
        totals.items(), key=lambda item: str(item[0])
    ):
        lines += [JournalLine(deferred_gl, department, amount), JournalLine(revenue_gl, department, -amount)]
    return lines


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
