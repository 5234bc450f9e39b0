"""The spreading engine: exact to the minor unit for every method, allocation and currency;
golden schedules computed by hand; the vectorised engine agrees with the scalar one."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiq_flows.domain.money import currency_exponent
from aiq_flows.domain.spreading import (
    Allocation,
    Method,
    MonthlyPart,
    SpreadError,
    add_months,
    month_weights,
    service_end,
    spread,
    spread_many,
    with_decimal_amounts,
)

CURRENCIES = ["GBP", "JPY", "BHD"]  # 2, 0 and 3 decimals
starts = st.dates(min_value=date(2023, 1, 1), max_value=date(2030, 12, 31))
month_ends = st.sampled_from(
    [
        date(2024, 1, 29),
        date(2024, 1, 30),
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2025, 2, 28),
        date(2025, 8, 31),
        date(2026, 12, 31),
    ]
)


@st.composite
def contracts(draw: st.DrawFn) -> tuple[Decimal, date, date, str]:
    currency = draw(st.sampled_from(CURRENCIES))
    units = draw(st.integers(min_value=-(10**9), max_value=10**9))
    start = draw(st.one_of(starts, month_ends))
    if draw(st.booleans()):
        end = service_end(start, draw(st.integers(min_value=1, max_value=36)))
    else:
        end = start + timedelta(days=draw(st.integers(min_value=0, max_value=1100)))
    return Decimal(units).scaleb(-currency_exponent(currency)), start, end, currency


def exact_shares(total: Decimal, start: date, end: date, currency: str, method: Method) -> list[Fraction]:
    weights = [w for _, w in month_weights(start, end, method)]
    units = int(total.scaleb(currency_exponent(currency)))
    return [Fraction(abs(units) * w, sum(weights)) for w in weights]


def units_of(parts: list, currency: str) -> list[int]:  # type: ignore[type-arg]
    return [int(abs(p.amount).scaleb(currency_exponent(currency))) for p in parts]


@settings(max_examples=300, deadline=None)
@given(contracts(), st.sampled_from(list(Method)), st.sampled_from(list(Allocation)))
def test_parts_sum_exactly_to_the_total_and_share_its_sign(
    contract: tuple, method: Method, allocation: Allocation
) -> None:
    total, start, end, currency = contract
    assert month_weights(start, end, method)  # every service period of a day or more is spread
    parts = spread(total, start, end, currency=currency, method=method, allocation=allocation)
    assert sum(p.amount for p in parts) == total
    assert all(p.amount >= 0 for p in parts) if total >= 0 else all(p.amount <= 0 for p in parts)
    assert [p.month for p in parts] == sorted({p.month for p in parts})
    assert all(p.amount == p.amount.quantize(Decimal(1).scaleb(-currency_exponent(currency))) for p in parts)


@settings(max_examples=300, deadline=None)
@given(contracts(), st.sampled_from(list(Method)))
def test_largest_remainder_parts_are_the_floor_or_ceiling_of_their_exact_share(
    contract: tuple, method: Method
) -> None:
    total, start, end, currency = contract
    parts = units_of(spread(total, start, end, currency=currency, method=method), currency)
    for part, share in zip(parts, exact_shares(total, start, end, currency, method), strict=True):
        assert share - 1 < part < share + 1
    # hence parts of equal weight differ by at most one minor unit
    weights = [w for _, w in month_weights(start, end, method)]
    for weight in set(weights):
        same = [p for p, w in zip(parts, weights, strict=True) if w == weight]
        assert max(same) - min(same) <= 1


@settings(max_examples=300, deadline=None)
@given(contracts(), st.sampled_from(list(Method)))
def test_last_period_rounds_each_month_and_plugs_the_last(contract: tuple, method: Method) -> None:
    total, start, end, currency = contract
    parts = units_of(
        spread(total, start, end, currency=currency, method=method, allocation=Allocation.LAST_PERIOD),
        currency,
    )
    shares = exact_shares(total, start, end, currency, method)[:-1]
    half_up = [int(Decimal(s.numerator) / Decimal(s.denominator) + Decimal("0.5")) for s in shares]
    floors = [s.numerator // s.denominator for s in shares]
    assert parts[:-1] in (half_up, floors)  # floors only where rounding up would sink the plug
    assert parts[-1] >= 0


@settings(max_examples=100, deadline=None)
@given(
    st.lists(contracts(), min_size=1, max_size=25),
    st.sampled_from(list(Method)),
    st.sampled_from(list(Allocation)),
)
def test_the_vectorised_engine_gives_the_scalar_results(
    batch: list, method: Method, allocation: Allocation
) -> None:
    frame = pd.DataFrame(
        [
            {"contract_id": n, "total": t, "start": s, "end": e, "currency": c}
            for n, (t, s, e, c) in enumerate(batch)
        ]
    )
    result = with_decimal_amounts(spread_many(frame, method=method, allocation=allocation))
    for n, (total, start, end, currency) in enumerate(batch):
        rows = result[result["contract_id"] == n]
        expected = spread(total, start, end, currency=currency, method=method, allocation=allocation)
        assert list(zip(rows["month"], rows["amount"], strict=True)) == [
            (p.month, p.amount) for p in expected
        ]


# --- golden schedules, computed by hand ------------------------------------------------------------


def amounts(total: str, start: date, months: int, **options: object) -> list[str]:
    return [str(p.amount) for p in spread(Decimal(total), start, service_end(start, months), **options)]  # type: ignore[arg-type]


def test_golden_equal_months_largest_remainder() -> None:
    assert amounts("1000.00", date(2026, 1, 1), 12) == ["83.34"] * 4 + ["83.33"] * 8


def test_golden_equal_months_last_period_plug() -> None:
    assert amounts("1000.00", date(2026, 1, 1), 12, allocation=Allocation.LAST_PERIOD) == ["83.33"] * 11 + [
        "83.37"
    ]
    assert amounts("200.00", date(2026, 1, 1), 3, allocation=Allocation.LAST_PERIOD) == [
        "66.67",
        "66.67",
        "66.66",
    ]


def test_golden_equal_months_prorates_a_mid_month_start() -> None:
    # 15 Jan: January serves 17 of 31 days (54.84), December's successor 14 of 31 (45.16)
    assert amounts("1200.00", date(2026, 1, 15), 12) == ["54.84"] + ["100.00"] * 11 + ["45.16"]


def test_golden_full_months_counts_a_started_month_whole() -> None:
    parts = spread(
        Decimal("1200.00"), date(2026, 1, 15), service_end(date(2026, 1, 15), 12), method=Method.FULL_MONTHS
    )
    assert [p.amount for p in parts] == [Decimal("100.00")] * 12
    assert (parts[0].month, parts[-1].month) == (date(2026, 1, 1), date(2026, 12, 1))


def test_golden_actual_days_in_a_leap_year() -> None:
    # 12,000.00 over 366 days: 31-day months 1016.39 (+1p for the earliest), Feb 29 days 950.82,
    # 30-day months 983.61; the six spare pence go to the largest remainders
    parts = amounts("12000.00", date(2024, 1, 1), 12, method=Method.ACTUAL_DAYS)
    assert parts == [
        "1016.40",
        "950.82",
        "1016.39",
        "983.61",
        "1016.39",
        "983.61",
        "1016.39",
        "1016.39",
        "983.61",
        "1016.39",
        "983.61",
        "1016.39",
    ]


def test_golden_days_30_360_from_the_31st() -> None:
    # a 31 January start serves nothing in January on 30/360: twelve equal parts from February
    parts = spread(
        Decimal("360.00"), date(2026, 1, 31), service_end(date(2026, 1, 31), 12), method=Method.DAYS_30_360
    )
    assert [p.month for p in parts] == [add_months(date(2026, 2, 1), n) for n in range(12)]
    assert {p.amount for p in parts} == {Decimal("30.00")}


@pytest.mark.parametrize("day", [date(2026, 1, 31), date(2026, 3, 31), date(2024, 12, 31)])
def test_a_one_day_30_360_service_on_the_31st_falls_whole_in_its_month(day: date) -> None:
    # 30/360 counts no day of a 31st; a service of that one day still has a month: its own
    parts = spread(Decimal("99.99"), day, day, method=Method.DAYS_30_360)
    assert parts == [MonthlyPart(day.replace(day=1), Decimal("99.99"))]
    frame = pd.DataFrame(
        [{"contract_id": 1, "total": Decimal("99.99"), "start": day, "end": day, "currency": "GBP"}]
    )
    vectorised = with_decimal_amounts(spread_many(frame, method=Method.DAYS_30_360))
    assert list(zip(vectorised["month"], vectorised["amount"], strict=True)) == [
        (day.replace(day=1), Decimal("99.99"))
    ]


def test_golden_zero_and_three_decimal_currencies() -> None:
    assert amounts("100000", date(2026, 1, 1), 12, currency="JPY") == ["8334"] * 4 + ["8333"] * 8
    assert amounts("1.000", date(2026, 1, 1), 3, currency="BHD") == ["0.334", "0.333", "0.333"]


def test_a_credit_spreads_negatively() -> None:
    assert amounts("-1000.00", date(2026, 1, 1), 12) == ["-83.34"] * 4 + ["-83.33"] * 8


def test_a_tiny_first_month_is_never_zero_when_the_total_allows() -> None:
    parts = spread(
        Decimal("1000.00"), date(2026, 1, 31), service_end(date(2026, 1, 31), 12), method=Method.ACTUAL_DAYS
    )
    assert parts[0].month == date(2026, 1, 1) and parts[0].amount == Decimal("2.74")


@pytest.mark.parametrize(("total", "currency"), [("1.001", "GBP"), ("1.5", "JPY")])
def test_amounts_finer_than_the_currency_are_refused(total: str, currency: str) -> None:
    with pytest.raises(SpreadError, match="more decimals"):
        spread(Decimal(total), date(2026, 1, 1), date(2026, 12, 31), currency=currency)


def test_a_service_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(SpreadError, match="before it starts"):
        spread(Decimal("1.00"), date(2026, 2, 1), date(2026, 1, 1))


def test_month_arithmetic_clamps_to_month_end() -> None:
    # as subscription billing does: a 29 Feb anchor renews on 28 Feb in a common year
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert service_end(date(2024, 2, 29), 12) == date(2025, 2, 27)
