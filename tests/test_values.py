"""Raw source values parsed one at a time: every value either parses or is refused with a
message naming it; amounts are exact; nothing else ever escapes."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiq_flows.domain.customer_codes import CodeClaim, aiq_customer_code, code_collisions
from aiq_flows.domain.values import (
    ValueRefused,
    date_value,
    datetime_value,
    decimal_value,
    text_value,
    whole_number,
    xml_problem,
)

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.text(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.dates(),
    st.datetimes(timezones=st.none() | st.just(UTC)),
    st.binary(max_size=8),
)


@pytest.mark.parametrize("parse", [text_value, decimal_value, whole_number, date_value, datetime_value])
@given(value=ANY_VALUE)
def test_a_parser_returns_a_value_or_refuses_it_and_nothing_else(parse: Any, value: Any) -> None:
    try:
        parse(value)
    except ValueRefused as refused:
        assert str(refused)  # says what the value is and why it cannot be read


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**15), max_value=10**15, places=6))
def test_amounts_written_as_text_are_read_exactly(amount: Decimal) -> None:
    assert decimal_value(str(amount)) == amount
    assert decimal_value(f"  {amount}  ") == amount


@given(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-(10**12), max_value=10**12).filter(
        lambda number: number == 0 or abs(number) > 1e-20  # below that: out of any sensible range
    )
)
def test_a_float_is_read_as_the_decimal_it_prints_as(number: float) -> None:
    assert decimal_value(number) == Decimal(repr(number))


@pytest.mark.parametrize(
    ("raw", "amount"),
    [
        ("12.00", Decimal("12.00")),
        (" -5 ", Decimal(-5)),
        (".5", Decimal("0.5")),
        (99.99999, Decimal("99.99999")),
    ],
)
def test_plain_numbers_are_amounts(raw: Any, amount: Decimal) -> None:
    assert decimal_value(raw) == amount


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("£12.00", "no currency sign"),
        ("1,234.56", "no thousands separator"),
        ("NaN", "is not a finite number"),
        ("-Infinity", "is not a finite number"),
        ("12 GBP", "no currency sign"),
        (math.inf, "not a finite number"),
        (Decimal("Infinity"), "not a finite number"),
        ("1e400", "out of any sensible range"),
        (True, "yes/no value"),
        (b"12", "is not a number"),
    ],
)
def test_what_is_not_a_plain_number_is_refused_saying_why(raw: Any, says: str) -> None:
    with pytest.raises(ValueRefused, match=says):
        decimal_value(raw)


@pytest.mark.parametrize("empty", [None, "", "   ", math.nan])
def test_empty_values_are_none(empty: Any) -> None:
    assert decimal_value(empty) is None
    assert date_value(empty) is None
    assert text_value(empty) is None


@pytest.mark.parametrize(
    ("raw", "day"),
    [
        ("2026-12-31", date(2026, 12, 31)),
        ("31/12/2026", date(2026, 12, 31)),  # day first: the UK and Ireland
        ("01/02/2026", date(2026, 2, 1)),
        ("31.12.2026", date(2026, 12, 31)),
        ("2026/12/31", date(2026, 12, 31)),
        ("2026-11-20 00:00:00", date(2026, 11, 20)),
        ("2026-11-20T23:30:00-05:00", date(2026, 11, 20)),  # the day it names, in its own zone
        ("31/12/2026 17:45", date(2026, 12, 31)),
        (datetime(2026, 11, 20, 23, 59), date(2026, 11, 20)),
    ],
)
def test_dates_in_the_forms_a_crm_column_holds(raw: Any, day: date) -> None:
    assert date_value(raw) == day


def test_month_first_when_the_source_says_so() -> None:
    assert date_value("12/31/2026", day_first=False) == date(2026, 12, 31)
    with pytest.raises(ValueRefused):
        date_value("12/31/2026")


@pytest.mark.parametrize("raw", ["yesterday", "2026-02-30", "31/13/2026", 20261231, "26-11-20"])
def test_what_is_not_a_date_is_refused_naming_the_value(raw: Any) -> None:
    with pytest.raises(ValueRefused, match="is not a date"):
        date_value(raw)


def test_zoned_moments_become_utc() -> None:
    assert datetime_value("2026-11-20T23:30:00-05:00") == datetime(2026, 11, 21, 4, 30)
    assert datetime_value("2026-11-20 06:00:00.000000") == datetime(2026, 11, 20, 6)


@pytest.mark.parametrize(("raw", "number"), [("12", 12), (12.0, 12), ("  7 ", 7), (Decimal("3.000"), 3)])
def test_whole_numbers(raw: Any, number: int) -> None:
    assert whole_number(raw) == number


@pytest.mark.parametrize("raw", ["one", "1.5", 2.25])
def test_what_is_not_a_whole_number_is_refused(raw: Any) -> None:
    with pytest.raises(ValueRefused, match="is not a whole number"):
        whole_number(raw)


@given(st.text())
def test_xml_problem_finds_exactly_what_xml_cannot_carry(value: str) -> None:
    from lxml import etree

    element = etree.Element("x")
    try:
        element.text = value
        carried = True
    except ValueError:
        carried = False
    assert (xml_problem(value) is None) == carried


def test_xml_problem_names_the_character_and_its_position() -> None:
    assert xml_problem("Bell\x07 Foundry") == (
        "character U+0007 (a control character) at position 5 cannot be sent to AccountsIQ: "
        "remove it at the source"
    )
    assert xml_problem("tab\tline\nreturn\r, accents é, emoji 🎉") is None


# --- customer code collisions -------------------------------------------------------------------


def test_two_keys_on_one_code_with_no_owner_are_both_refused_naming_each_other() -> None:
    refused = code_collisions(
        [CodeClaim("ZETA-TRADERS", "Zeta Traders"), CodeClaim("ZETA-TRADERS", "ZETA-TRADERS")], {}
    )
    assert set(refused) == {"Zeta Traders", "ZETA-TRADERS"}
    assert refused["Zeta Traders"] == refused["ZETA-TRADERS"]
    assert refused["Zeta Traders"].startswith(
        "CRM customers 'ZETA-TRADERS' and 'Zeta Traders' map to one AIQ customer code, ZETA-TRADERS:"
    )


def test_the_owner_keeps_its_code_and_a_newcomer_is_refused() -> None:
    claims = [CodeClaim("ZETA-TRADERS", "Zeta Traders"), CodeClaim("ZETA-TRADERS", "ZETA-TRADERS")]
    refused = code_collisions(claims, {"ZETA-TRADERS": "Zeta Traders"})
    assert list(refused) == ["ZETA-TRADERS"]
    assert "belongs to CRM customer 'Zeta Traders'" in refused["ZETA-TRADERS"]
    # Alone in a later run, the newcomer is still refused: the store remembers the owner.
    assert list(code_collisions([claims[1]], {"ZETA-TRADERS": "Zeta Traders"})) == ["ZETA-TRADERS"]


def test_an_explicit_code_is_the_sources_decision() -> None:
    claims = [CodeClaim("ACME", "acme-uk", derived=False), CodeClaim("ACME", "acme-ie", derived=False)]
    assert code_collisions(claims, {}) == {}
    # A derived key landing on an explicitly claimed code is refused, the explicit one is not.
    assert list(code_collisions([*claims, CodeClaim("ACME", "acme")], {})) == ["acme"]


KEYS = ["Zeta Traders", "ZETA-TRADERS", "zeta traders", "acme", "ACME", "beta"]


@given(st.lists(st.sampled_from(KEYS), max_size=8), st.dictionaries(st.sampled_from(KEYS), st.booleans()))
def test_no_two_crm_customers_are_ever_left_on_one_aiq_code(keys: list[str], owning: dict[str, bool]) -> None:
    claims = [CodeClaim(aiq_customer_code(key), key) for key in keys]
    owners = {aiq_customer_code(key): key for key, owns in owning.items() if owns}
    refused = code_collisions(claims, owners)
    allowed: dict[str, set[str]] = {}
    for claim in claims:
        if claim.key not in refused:
            allowed.setdefault(claim.code, set()).add(claim.key)
    for code, on_it in allowed.items():
        assert len(on_it) == 1  # never merged
        assert code not in owners or on_it == {owners[code]}  # and never taken from its owner
