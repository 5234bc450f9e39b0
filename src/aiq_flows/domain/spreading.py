"""Penny-exact spreading of a total over a service period, month by month (deferred revenue).

Weights per month (exact integers, so no rounding happens before allocation):

- ``equal_months``: each calendar month of the service weighs the same when fully served; a
  partly served first or last month weighs its served days over its length (exact to the day of
  each month's own length).
- ``actual_days``: served calendar days in each month (leap years included).
- ``days_30_360``: served days on a 30/360 basis: every full month is 30 days (February too),
  so a whole year is 360 (Odoo's "months" deferral computes this); a service starting on a 31st
  begins, in effect, the next month, and a one-day service on a 31st falls whole in its month.
- ``full_months``: one equal part per service month counted from the start date, booked in the
  calendar month where it starts: a started month counts whole, and the tail of the last service
  month is not a part of its own.

Allocation of the minor units (pence, cents, fils; any currency exponent):

- ``largest_remainder`` (default): every part gets the floor of its exact share, and the units
  left over go to the largest remainders (earlier month first on ties): parts of equal weight
  differ by at most one minor unit (1,000.00 / 12 = 4 x 83.34 + 8 x 83.33).
- ``last_period``: the peers' plug (Odoo, ERPNext): each month rounded half-up, the last month
  takes the difference. Where rounding up would leave the last month negative (a tiny last
  month), the earlier months are truncated instead, so no part is ever negative.

A negative total (a credit) is spread as its absolute value and negated. A month that serves
nothing (30/360 from a 31st) gets no part. Otherwise a part is zero only when its exact share is
below one minor unit (a tiny total, or a one-day first month of a small one); such a month is
simply not posted, and never blocks the months after it.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

import numpy as np
import pandas as pd

from aiq_flows.domain.money import currency_exponent

# Least common multiple of 28, 29, 30 and 31: scales "served days / days in month" to integers.
_MONTH_LCM = 377_580


class Method(StrEnum):
    EQUAL_MONTHS = "equal_months"
    ACTUAL_DAYS = "actual_days"
    DAYS_30_360 = "days_30_360"
    FULL_MONTHS = "full_months"


class Allocation(StrEnum):
    LARGEST_REMAINDER = "largest_remainder"
    LAST_PERIOD = "last_period"


@dataclass(frozen=True)
class MonthlyPart:
    month: date  # the first day of the calendar month the part is recognised in
    amount: Decimal


class SpreadError(ValueError):
    pass


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def service_end(start: date, months: int) -> date:
    """The last day of a service of `months` whole months starting on `start`."""
    if months < 1:
        raise SpreadError(f"a service needs at least one month, not {months}")
    return add_months(start, months) - timedelta(days=1)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _days_30_360(first: date, last: date) -> int:
    # A month ends at day 30; a 31st opening is already past it and serves nothing that month.
    closing = 30 if last == _month_end(last) else min(last.day, 30)
    return max(closing - first.day + 1, 0)


def month_weights(start: date, end: date, method: Method) -> list[tuple[date, int]]:
    """(month, integer weight) for every month that gets a part, in order."""
    if end < start:
        raise SpreadError(f"the service ends ({end}) before it starts ({start})")
    if method is Method.FULL_MONTHS:
        months, weights = 0, []
        while add_months(start, months) <= end:
            weights.append((_month_start(add_months(start, months)), 1))
            months += 1
        return weights
    weights = []
    month = _month_start(start)
    while month <= end:
        first, last = max(start, month), min(end, _month_end(month))
        served = (last - first).days + 1
        if method is Method.ACTUAL_DAYS:
            weight = served
        elif method is Method.DAYS_30_360:
            weight = _days_30_360(first, last)
        else:
            weight = served * (_MONTH_LCM // calendar.monthrange(month.year, month.month)[1])
        if weight:  # a month with nothing served gets no part, rather than a zero one
            weights.append((month, weight))
        month = add_months(month, 1)
    if not weights and method is Method.DAYS_30_360:
        return [(_month_start(start), 1)]  # only 31sts served (one day): that month takes it all
    return weights


def allocate(units: int, weights: Sequence[int], allocation: Allocation) -> list[int]:
    """Split `units` (>= 0) in proportion to integer `weights` (>= 0, not all 0), exactly."""
    total_weight = sum(weights)
    if units < 0 or total_weight <= 0 or min(weights) < 0:
        raise SpreadError("allocate needs non-negative units and weights with a positive sum")
    numerators = [units * w for w in weights]
    if allocation is Allocation.LARGEST_REMAINDER:
        parts = [n // total_weight for n in numerators]
        left = units - sum(parts)
        by_remainder = sorted(range(len(parts)), key=lambda i: (-(numerators[i] % total_weight), i))
        for i in by_remainder[:left]:
            parts[i] += 1
        return parts
    rounded = [(2 * n + total_weight) // (2 * total_weight) for n in numerators[:-1]]
    if sum(rounded) > units:  # rounding up would push the plug below zero
        rounded = [n // total_weight for n in numerators[:-1]]
    return [*rounded, units - sum(rounded)]


def to_minor_units(total: Decimal, currency: str) -> int:
    scaled = total.scaleb(currency_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise SpreadError(f"{total} has more decimals than {currency} allows")
    return int(scaled)


def spread(
    total: Decimal,
    start: date,
    end: date,
    *,
    currency: str = "GBP",
    method: Method = Method.EQUAL_MONTHS,
    allocation: Allocation = Allocation.LARGEST_REMAINDER,
) -> list[MonthlyPart]:
    """Split `total` over the service period [start, end] into exact monthly parts."""
    units = to_minor_units(total, currency)
    months = month_weights(start, end, method)
    if not months:
        raise SpreadError(f"the service {start} to {end} has no days to spread over by {method}")
    parts = allocate(abs(units), [w for _, w in months], allocation)
    sign = -1 if units < 0 else 1
    exponent = currency_exponent(currency)
    return [
        MonthlyPart(month, Decimal(sign * part).scaleb(-exponent))
        for (month, _), part in zip(months, parts, strict=True)
    ]


# --- many contracts at once ------------------------------------------------------------------------


def _weights_frame(contracts: pd.DataFrame, method: Method) -> pd.DataFrame:
    """One row per (contract, month) with the month's integer weight, computed with numpy."""
    start = pd.to_datetime(contracts["start"]).to_numpy().astype("datetime64[D]")
    end = pd.to_datetime(contracts["end"]).to_numpy().astype("datetime64[D]")
    if method is Method.FULL_MONTHS:
        return _full_months_frame(start, end)
    first_month = start.astype("datetime64[M]")
    row, month = _expand(first_month, (end.astype("datetime64[M]") - first_month).astype(np.int64) + 1)
    month_first = month.astype("datetime64[D]")
    month_last = (month + np.timedelta64(1, "M")).astype("datetime64[D]") - np.timedelta64(1, "D")
    first = np.maximum(start[row], month_first)
    last = np.minimum(end[row], month_last)
    served = (last - first).astype(np.int64) + 1
    if method is Method.ACTUAL_DAYS:
        weight = served
    elif method is Method.DAYS_30_360:
        last_day = (last - last.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
        first_day = (first - month_first).astype(np.int64) + 1
        closing = np.where(last == month_last, 30, np.minimum(last_day, 30))
        weight = np.maximum(closing - first_day + 1, 0)
        # A contract 30/360 counts no day of (a one-day service on a 31st) takes its first month.
        counted = np.zeros(len(start), dtype=bool)
        counted[row[weight > 0]] = True
        weight = np.where(~counted[row] & (month == first_month[row]), 1, weight)
    else:
        month_length = (month_last - month_first).astype(np.int64) + 1
        weight = served * (_MONTH_LCM // month_length)
    frame = pd.DataFrame({"row": row, "month": month_first, "weight": weight})
    return frame[frame["weight"] > 0].reset_index(drop=True)


def _expand(first_month: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, month) for `counts[i]` consecutive months from `first_month[i]`, for every row i."""
    row = np.repeat(np.arange(len(counts)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return row, first_month[row] + offset.astype("timedelta64[M]")


def _full_months_frame(start: np.ndarray, end: np.ndarray) -> pd.DataFrame:
    """Service months anchored on the start day: n is the smallest count whose end passes `end`."""
    first_month = start.astype("datetime64[M]")
    span = (end.astype("datetime64[M]") - first_month).astype(np.int64)
    target = first_month + span.astype("timedelta64[M]")
    target_length = (
        (target + np.timedelta64(1, "M")).astype("datetime64[D]") - target.astype("datetime64[D]")
    ).astype(np.int64)
    start_day = (start - first_month.astype("datetime64[D]")).astype(np.int64) + 1
    anniversary = target.astype("datetime64[D]") + (np.minimum(start_day, target_length) - 1).astype(
        "timedelta64[D]"
    )
    counts = span + (anniversary <= end)
    row, month = _expand(first_month, counts)
    return pd.DataFrame(
        {"row": row, "month": month.astype("datetime64[D]"), "weight": np.ones(len(row), np.int64)}
    )


def spread_many(
    contracts: pd.DataFrame,
    *,
    method: Method = Method.EQUAL_MONTHS,
    allocation: Allocation = Allocation.LARGEST_REMAINDER,
) -> pd.DataFrame:
    """`spread` for many contracts at once, vectorised with numpy/pandas; the same results.

    `contracts` has columns ``contract_id``, ``total`` (Decimal) or ``total_minor`` (integer minor
    units), ``start``, ``end`` (dates or datetime64) and ``currency``. Returns one row per
    contract and month, in month order: ``contract_id``, ``month`` (datetime64, first day),
    ``amount_minor`` (int64 minor units) and ``exponent``. Amounts stay integers so that no
    Python object is built per part; `with_decimal_amounts` adds the Decimal ``amount`` when
    rows are about to be posted.
    """
    by_currency = {c: currency_exponent(c) for c in contracts["currency"].unique()}
    exponents = contracts["currency"].map(by_currency).to_numpy(dtype=np.int64)
    if "total_minor" in contracts:  # already integers: no Decimal to convert
        units = contracts["total_minor"].to_numpy(dtype=np.int64)
    else:
        units = np.array(
            [to_minor_units(t, c) for t, c in zip(contracts["total"], contracts["currency"], strict=True)],
            dtype=np.int64,
        )
    frame = _weights_frame(contracts, method)
    weight = frame["weight"].to_numpy(dtype=np.int64)
    row = frame["row"].to_numpy()
    present = np.zeros(len(contracts), dtype=bool)
    present[row] = True
    if not present.all():
        empty = list(contracts["contract_id"].to_numpy()[~present][:10])
        raise SpreadError(f"contracts with no days to spread over by {method}: {empty}")
    group_start = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])  # rows are grouped by contract

    def per_contract(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, group_start)  # exact int64 sums (bincount would use floats)

    total_weight = per_contract(weight)
    magnitude = np.abs(units)
    if magnitude.size and int(magnitude.max()) * int(weight.max(initial=1)) >= 2**62:
        raise SpreadError("amounts too large for the vectorised engine; use spread() per contract")
    numerator = magnitude[row] * weight
    denominator = total_weight[row]
    if allocation is Allocation.LARGEST_REMAINDER:
        part = numerator // denominator
        left = magnitude - per_contract(part)
        remainder = numerator % denominator
        # One stable sort on (contract, largest remainder first); ties keep month order.
        if int(remainder.max(initial=0)) >= 2**32:
            raise SpreadError("weights too fine for the vectorised engine; use spread() per contract")
        order = np.argsort((row.astype(np.int64) << 32) | (2**32 - 1 - remainder), kind="stable")
        rank = np.empty(len(frame), dtype=np.int64)
        rank[order] = np.arange(len(frame)) - group_start[row[order]]
        part = part + (rank < left[row])
    else:
        is_last = np.r_[row[1:] != row[:-1], True]
        rounded = np.where(is_last, 0, (2 * numerator + denominator) // (2 * denominator))
        overshoot = per_contract(rounded) > magnitude
        rounded = np.where(overshoot[row] & ~is_last, numerator // denominator, rounded)
        plug = magnitude - per_contract(rounded)
        part = np.where(is_last, plug[row], rounded)
    return pd.DataFrame(
        {
            "contract_id": contracts["contract_id"].to_numpy()[row],
            "month": frame["month"].to_numpy(),
            "amount_minor": np.where(units[row] < 0, -part, part),
            "exponent": exponents[row],
        }
    )


def with_decimal_amounts(parts: pd.DataFrame) -> pd.DataFrame:
    """`spread_many`'s rows with ``month`` as a date and ``amount`` as a Decimal."""
    amounts = [
        Decimal(int(p)).scaleb(-int(e))
        for p, e in zip(parts["amount_minor"].to_numpy(), parts["exponent"].to_numpy(), strict=True)
    ]
    return parts.assign(month=pd.to_datetime(parts["month"]).dt.date, amount=amounts)
