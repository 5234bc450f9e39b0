"""Pure rules: money, customer codes, references, validation of incoming sales, outcome counts."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiq_flows.domain.codes import ErrorCode
from aiq_flows.domain.customer_codes import MAX_CODE, aiq_customer_code
from aiq_flows.domain.customer_details import changed_details, details_to_send
from aiq_flows.domain.money import currency_exponent, has_at_most_minor_units, round_money
from aiq_flows.domain.outcomes import (
    CountsDoNotAddUp,
    CrmStatus,
    Outcome,
    OutcomeTally,
    SaleOutcome,
    needs_attention,
    summarize,
)
from aiq_flows.domain.references import ReferenceTooLong, sale_reference
from aiq_flows.domain.sales import CustomerDetails, ReferenceData, Rejection, Sale, validate_sale
from aiq_flows.domain.watermark import Watermark

AIQ_CODE = re.compile(r"^[A-Z0-9_.\-/&]{1,50}$")
REFERENCE = ReferenceData(
    tax_rates={"T1": Decimal("0.20"), "T0": Decimal("0")}, gl_codes=frozenset({"4000", "4010"})
)


def raw_sale(**changes: Any) -> dict[str, Any]:
    sale: dict[str, Any] = {
        "sale_id": 7,
        "reference": "SO-7",
        "sale_date": date(2026, 11, 2),
        "currency": "gbp",
        "description": "Order SO-7",
        "updated_at": datetime(2026, 11, 2, 9),
        "customer": {"key": "acme01", "name": "Acme", "email": "a@acme.example"},
        "lines": [
            {
                "line_no": 1,
                "description": "Widget",
                "gl_account_code": "4000",
                "tax_code": "t1",
                "net_amount": Decimal("100.00"),
                "tax_amount": Decimal("20.00"),
            }
        ],
    }
    sale.update(changes)
    return sale


START = date(2026, 11, 1)


def with_line(**changes: Any) -> dict[str, Any]:
    sale = raw_sale()
    sale["lines"] = [{**sale["lines"][0], **changes}]
    return sale


# --- money --------------------------------------------------------------------------------------


@given(
    st.decimals(min_value=-(10**9), max_value=10**9, places=6, allow_nan=False),
    st.sampled_from(["GBP", "JPY", "BHD"]),
)
def test_round_money_is_half_up_to_the_minor_unit(amount: Decimal, currency: str) -> None:
    rounded = round_money(amount, currency)
    step = Decimal(1).scaleb(-currency_exponent(currency))
    assert abs(rounded - amount) <= step / 2
    assert has_at_most_minor_units(rounded, currency)
    if abs(rounded - amount) == step / 2:  # a tie goes away from zero
        assert abs(rounded) > abs(amount)


def test_round_money_golden() -> None:
    assert round_money(Decimal("2.675"), "GBP") == Decimal("2.68")
    assert round_money(Decimal("-2.675"), "GBP") == Decimal("-2.68")
    assert round_money(Decimal("1234.5"), "JPY") == Decimal("1235")
    assert round_money(Decimal("1.0005"), "BHD") == Decimal("1.001")


# --- customer codes -----------------------------------------------------------------------------


@given(st.text(min_size=1, max_size=120).filter(lambda s: re.search(r"[A-Za-z0-9]", s)))
def test_customer_codes_always_obey_aiq_rules_and_are_stable(key: str) -> None:
    code = aiq_customer_code(key)
    assert AIQ_CODE.match(code), code
    assert aiq_customer_code(key) == code


@given(st.from_regex(AIQ_CODE, fullmatch=True).filter(lambda s: s.strip("-") == s))
def test_valid_codes_map_to_themselves(code: str) -> None:
    assert aiq_customer_code(code) == code


def test_long_keys_keep_a_prefix_and_do_not_collide() -> None:
    first = aiq_customer_code("harbour-view-hotels-group-international-holdings-2026-north")
    second = aiq_customer_code("harbour-view-hotels-group-international-holdings-2026-south")
    assert first != second and len(first) == len(second) == MAX_CODE
    assert first.startswith("HARBOUR-VIEW-HOTELS-GROUP")


def test_keys_without_usable_characters_are_refused() -> None:
    with pytest.raises(ValueError, match="no character usable"):
        aiq_customer_code("   ###  ")


def test_golden_codes() -> None:
    assert aiq_customer_code("delta logistics") == "DELTA-LOGISTICS"
    assert aiq_customer_code(" fern&co ") == "FERN&CO"


# --- references ---------------------------------------------------------------------------------


def test_sale_reference_is_deterministic_and_bounded() -> None:
    assert sale_reference(42) == sale_reference("42") == "S-42"
    with pytest.raises(ReferenceTooLong):
        sale_reference("9" * 49)


# --- validation ---------------------------------------------------------------------------------


def test_a_good_sale_is_normalised() -> None:
    sale = validate_sale(raw_sale(), REFERENCE)
    assert isinstance(sale, Sale)
    assert (sale.currency, sale.lines[0].tax_code, sale.customer_code) == ("GBP", "T1", "ACME01")
    assert (sale.net_total, sale.tax_total, sale.gross_total) == (Decimal(100), Decimal(20), Decimal(120))
    assert sale.external_reference == "S-7"


@pytest.mark.parametrize(
    ("raw", "field", "rule"),
    [
        (raw_sale(lines=[]), "lines", "is empty (at least one is needed)"),
        (raw_sale(customer=None), "customer", "is missing: the sale names no customer"),
        (raw_sale(customer=None, customer_ref=991), "customer", "customer 991 does not exist in the CRM"),
        (raw_sale(customer={"key": "x", "name": ""}), "customer.name", "is missing"),
        (raw_sale(customer={"key": "###", "name": "X"}), "customer.key", "no character usable"),
        (raw_sale(currency="EURO"), "currency", "'EURO' is not a three-letter currency code"),
        (raw_sale(sale_date=None), "sale_date", "is missing"),
        (raw_sale(sale_date="yesterday"), "sale_date", "'yesterday' is not a date"),
        (
            raw_sale(description="d" * 501),
            "description",
            "is 501 characters long; AccountsIQ takes at most 500",
        ),
        (
            raw_sale(description="Order\x07 7"),
            "description",
            "character U+0007 (a control character) at position 6",
        ),
        (with_line(net_amount=Decimal("-1")), "lines[1].net_amount", "-1 is negative"),
        (with_line(net_amount=None), "lines[1].net_amount", "is missing"),
        (with_line(net_amount="£12.00"), "lines[1].net_amount", "'£12.00' is not a number"),
        (with_line(net_amount="1,234.56"), "lines[1].net_amount", "no thousands separator"),
        (with_line(net_amount=float("inf")), "lines[1].net_amount", "not a finite number"),
        (with_line(net_amount="999999999999999.99"), "lines[1].net_amount", "is not below 1,000,000,000,000"),
        (with_line(description=" "), "lines[1].description", "is missing"),
        (with_line(description="Wid\x0bget"), "lines[1].description", "U+000B"),
        (with_line(gl_account_code="9999"), "lines[1].gl_account_code", "not a GL account"),
        (with_line(tax_code="ZZ"), "lines[1].tax_code", "not an AccountsIQ tax code"),
        (with_line(tax_code="T 1"), "lines[1].tax_code", "is not an AccountsIQ code"),
        (with_line(tax_amount=Decimal("25.00")), "lines[1].tax_amount", "expected 20.00"),
        (
            with_line(net_amount=Decimal("100.001"), tax_amount=Decimal("20.00")),
            "lines[1].net_amount",
            "100.001 has more decimals than GBP allows",
        ),
        (
            with_line(net_amount=99.99999, tax_amount=Decimal("20.00")),
            "lines[1].net_amount",
            "99.99999 has more decimals than GBP allows",
        ),
        (
            with_line(net_amount="0.12345", tax_amount=Decimal("0.02")),
            "lines[1].net_amount",
            "0.12345 has more decimals than GBP allows",
        ),
        (with_line(net_amount=Decimal("0"), tax_amount=Decimal("0")), "lines", "greater than zero"),
        (raw_sale(service_months=12), "service_start", "is missing: service_months is given"),
        (raw_sale(service_start=START), "service_end", "is missing"),
        (
            raw_sale(service_start=date(2026, 11, 1), service_months=-1),
            "service_months",
            "-1 is not a number",
        ),
        (
            raw_sale(service_start=date(2026, 11, 1), service_months=100_000),
            "service_months",
            "from 1 to 120",
        ),
        (
            raw_sale(service_start=date(2026, 11, 1), service_end=date(2026, 10, 1)),
            "service_end",
            "the service ends (2026-10-01) before it starts (2026-11-01)",
        ),
        (raw_sale(invoice_kind="proforma"), "invoice_kind", "'proforma' is not one of 'batch' or 'item'"),
        (raw_sale(updated_at="whenever"), "updated_at", "'whenever' is not a date or time"),
        (raw_sale(sale_date="2026-13-01"), "sale_date", "'2026-13-01' is not a date"),
        (raw_sale(sale_date=date(1066, 10, 14)), "sale_date", "not a plausible date"),
    ],
)
def test_bad_sales_are_rejected_naming_record_field_and_rule(
    raw: dict[str, Any], field: str, rule: str
) -> None:
    result = validate_sale(raw, REFERENCE)
    assert isinstance(result, Rejection)
    assert result.field == field
    assert rule in result.rule
    assert result.message.startswith("sale 'SO-7' (id 7): ")


def test_vat_within_one_minor_unit_is_accepted() -> None:
    assert isinstance(validate_sale(with_line(tax_amount=Decimal("20.01")), REFERENCE), Sale)


def test_only_the_details_the_crm_holds_go_to_aiq() -> None:
    details = CustomerDetails(key="acme01", name="Acme", email=None, phone=None, city="Leeds")
    assert details_to_send(details) == {"Name": "Acme", "City": "Leeds"}  # AIQ keeps the rest
    account = {"Name": "Acme", "City": "York", "Phone": "+44 113 496 0000", "Email": "ap@acme.example"}
    assert changed_details(account, details) == ["City"]


# --- outcomes -----------------------------------------------------------------------------------


def outcome(sale_id: int, kind: Outcome, retryable: bool = False) -> SaleOutcome:
    return SaleOutcome(sale_id=sale_id, reference=f"SO-{sale_id}", outcome=kind, retryable=retryable)


def test_counts_add_up_or_say_not() -> None:
    outcomes = [outcome(1, Outcome.CREATED), outcome(2, Outcome.FAILED), outcome(3, Outcome.QUARANTINED)]
    assert summarize(outcomes, 3).adds_up
    assert not summarize(outcomes, 4).adds_up
    with pytest.raises(CountsDoNotAddUp):
        summarize([*outcomes, outcome(1, Outcome.ALREADY_PRESENT)], 4)


@given(
    kinds=st.lists(st.sampled_from(list(Outcome)), max_size=300),
    changed=st.sets(st.integers(min_value=0, max_value=299)),
    keep=st.integers(min_value=0, max_value=50),
)
def test_a_tally_counts_as_the_whole_list_would_and_keeps_at_most_its_share(
    kinds: list[Outcome], changed: set[int], keep: int
) -> None:
    """Pages settle in any order and size: the tally's counts are the full list's, the sales it
    keeps are the first that need a person (at most `keep`), and a sale settled twice is refused."""
    outcomes = [
        SaleOutcome(
            sale_id=i,
            reference=f"SO-{i}",
            outcome=kind,
            error_code=ErrorCode.CHANGED_AFTER_POSTING
            if i in changed and kind is Outcome.ALREADY_PRESENT
            else None,
        )
        for i, kind in enumerate(kinds)
    ]
    tally = OutcomeTally(keep=keep)
    for start in range(0, len(outcomes), 7):
        tally.add(outcomes[start : start + 7])
    assert tally.summary(len(kinds)) == summarize(outcomes, len(kinds))
    attention = [o for o in outcomes if needs_attention(o)]
    assert tally.needing_attention == len(attention) and tally.attention == attention[:keep]
    if outcomes:
        with pytest.raises(CountsDoNotAddUp):
            tally.add(outcomes[:1])


@pytest.mark.parametrize(
    ("kind", "retryable", "status"),
    [
        (Outcome.CREATED, False, CrmStatus.POSTED),
        (Outcome.ALREADY_PRESENT, False, CrmStatus.POSTED),
        (Outcome.QUARANTINED, False, CrmStatus.QUARANTINED),
        (Outcome.FAILED, False, CrmStatus.FAILED),
        (Outcome.FAILED, True, CrmStatus.PENDING),
        (Outcome.HELD, True, CrmStatus.PENDING),
    ],
)
def test_crm_status_per_outcome(kind: Outcome, retryable: bool, status: CrmStatus) -> None:
    assert outcome(1, kind, retryable).crm_status is status


def test_watermarks_order_by_time_then_record() -> None:
    at = datetime(2026, 11, 1, 12)
    assert Watermark(at, "5") < Watermark(at, "6") < Watermark(datetime(2026, 11, 1, 13), "1")
