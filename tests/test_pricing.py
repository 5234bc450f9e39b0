"""Back-to-back pricing: hand-computed goldens for both VAT modes, and properties of the rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiq_flows.domain.fields import Rejection
from aiq_flows.domain.intercompany import (
    Account,
    Charge,
    Connection,
    EntityFacts,
    RoutedCharge,
    Side,
    plan_charge,
    validate_charge,
)
from aiq_flows.domain.jobs import Counterparty, Job, PricedJob, price_job, validate_job
from aiq_flows.domain.pricing import CostLine, LineKind, Markup, TaxRate, VatMode, price

D = Decimal
T1 = TaxRate("T1", D("0.20"))
EX = TaxRate("EX", D("0"))
T5 = TaxRate("T5", D("0.05"))


def costs(*amounts: str) -> list[CostLine]:
    return [CostLine(f"line {n}", D(a)) for n, a in enumerate(amounts, start=1)]


def test_principal_percent_markup_golden() -> None:
    # 37.5 h x 22.50 = 843.75 and 12 h x 18.33 = 219.96, marked up 15%:
    # 843.75 x 1.15 = 970.3125 -> 970.31; 219.96 x 1.15 = 252.954 -> 252.95
    quote = price(costs("843.75", "219.96"), Markup(percent=D(15)), VatMode.PRINCIPAL, T1, T1, EX, exponent=2)
    assert [(line.kind, line.net, line.vat) for line in quote.sales] == [
        (LineKind.CHARGE, D("970.31"), D("194.06")),  # 194.062
        (LineKind.CHARGE, D("252.95"), D("50.59")),  # 50.590
    ]
    assert [(line.net, line.vat) for line in quote.purchase] == [
        (D("843.75"), D("168.75")),
        (D("219.96"), D("43.99")),
    ]
    assert (quote.cost, quote.charge, quote.margin) == (D("1063.71"), D("1223.26"), D("159.55"))
    assert quote.margin_percent == D("13.04")  # 159.55 / 1223.26 = 13.043%
    assert (quote.purchase_vat, quote.sales_vat) == (D("212.74"), D("244.65"))


def test_agent_percent_markup_charges_vat_on_the_fee_only() -> None:
    quote = price(costs("843.75"), Markup(percent=D(15)), VatMode.AGENT, T1, T1, EX, exponent=2)
    assert [(line.kind, line.tax_code, line.net, line.vat) for line in quote.sales] == [
        (LineKind.RECHARGE, "EX", D("843.75"), D("0.00")),
        (LineKind.FEE, "T1", D("126.56"), D("25.31")),  # 970.31 - 843.75; 25.312
    ]
    assert quote.charge == D("970.31") and quote.sales_vat == D("25.31")


@pytest.mark.parametrize(
    ("cost", "percent", "charge"),
    [
        ("9.30", "25", "11.63"),  # 11.625: half-up gives 11.63 (half-even would give 11.62)
        ("10.10", "15", "11.62"),  # 11.615
        ("99.99", "12.5", "112.49"),  # 112.48875
        ("100.00", "0", "100.00"),
        ("0.01", "50", "0.02"),  # 0.015
        ("1234.56", "33.333", "1646.08"),  # 1234.56 x 1.33333 = 1646.0758848
    ],
)
def test_percent_markup_rounds_half_up_per_line(cost: str, percent: str, charge: str) -> None:
    quote = price(costs(cost), Markup(percent=D(percent)), VatMode.PRINCIPAL, T1, T1, EX, exponent=2)
    assert quote.charge == D(charge)


def test_half_a_penny_of_vat_rounds_up() -> None:
    # 0.05 x 5% = 0.0025 -> 0.00; 0.10 x 5% = 0.005 -> 0.01
    quote = price(costs("0.05", "0.10"), Markup(fee=D(0)), VatMode.PRINCIPAL, T5, T5, EX, exponent=2)
    assert [line.vat for line in quote.purchase] == [D("0.00"), D("0.01")]


def test_fixed_fee_principal_and_agent() -> None:
    principal = price(
        costs("500.00", "250.00"), Markup(fee=D("120")), VatMode.PRINCIPAL, T1, T1, EX, exponent=2
    )
    assert [(line.kind, line.net, line.vat) for line in principal.sales] == [
        (LineKind.RECHARGE, D("500.00"), D("100.00")),
        (LineKind.RECHARGE, D("250.00"), D("50.00")),
        (LineKind.FEE, D("120.00"), D("24.00")),
    ]
    assert (principal.charge, principal.margin, principal.margin_percent) == (
        D("870.00"),
        D("120.00"),
        D("13.79"),
    )
    agent = price(costs("500.00", "250.00"), Markup(fee=D("120")), VatMode.AGENT, T1, T1, EX, exponent=2)
    assert [(line.tax_code, line.vat) for line in agent.sales] == [
        ("EX", D("0")),
        ("EX", D("0")),
        ("T1", D("24.00")),
    ]
    assert agent.charge == principal.charge and agent.sales_vat == D("24.00")


def test_zero_decimal_currency() -> None:
    quote = price(costs("1001"), Markup(percent=D("7.5")), VatMode.PRINCIPAL, T1, T1, EX, exponent=0)
    assert quote.charge == D("1076")  # 1076.075
    assert quote.sales[0].vat == D("215")  # 215.2


def test_a_markup_is_a_percent_or_a_fee() -> None:
    with pytest.raises(ValueError, match="either a percent or a fixed fee"):
        Markup(percent=D(1), fee=D(1))
    with pytest.raises(ValueError, match="either a percent or a fixed fee"):
        Markup()


# --- properties ---------------------------------------------------------------------------------------

amounts = st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2)
percents = st.decimals(min_value=D("0"), max_value=D("300"), places=3)
rates = st.sampled_from([EX, T5, T1, TaxRate("R13", D("0.135")), TaxRate("S23", D("0.23"))])


@given(st.lists(amounts, min_size=1, max_size=8), percents, rates, rates)
def test_both_modes_charge_the_same_and_differ_only_in_vat(
    lines: list[Decimal], percent: Decimal, purchase: TaxRate, sales: TaxRate
) -> None:
    cost_lines = [CostLine(f"l{n}", a) for n, a in enumerate(lines)]
    principal = price(cost_lines, Markup(percent=percent), VatMode.PRINCIPAL, purchase, sales, EX, exponent=2)
    agent = price(cost_lines, Markup(percent=percent), VatMode.AGENT, purchase, sales, EX, exponent=2)
    assert principal.charge == agent.charge
    assert principal.cost == agent.cost == sum(lines)
    assert principal.margin == principal.charge - principal.cost
    # each charge is the exact price rounded half-up: within half a penny of it
    for cost, line in zip(lines, principal.sales, strict=True):
        assert abs(line.net - cost * (1 + percent / 100)) <= D("0.005")
    # agent VAT is on the fee alone, so never more than principal VAT (the recharge is zero-rated)
    assert agent.sales_vat <= principal.sales_vat
    fees = sum((line.net for line in agent.sales if line.kind is LineKind.FEE), D(0))
    assert fees == agent.margin


@given(st.lists(amounts, min_size=1, max_size=8), amounts, rates, st.sampled_from(list(VatMode)))
def test_fixed_fee_margin_is_the_fee_exactly(
    lines: list[Decimal], fee: Decimal, sales: TaxRate, mode: VatMode
) -> None:
    quote = price([CostLine("x", a) for a in lines], Markup(fee=fee), mode, T1, sales, EX, exponent=2)
    assert quote.margin == fee
    rate_of = {EX.code: EX.rate, sales.code: sales.rate}
    for line in quote.purchase:
        assert line.vat == (line.net * T1.rate).quantize(D("0.01"), "ROUND_HALF_UP")
    for line in quote.sales:
        assert line.net == line.net.quantize(D("0.01"))
        assert abs(line.vat - line.net * rate_of[line.tax_code]) <= D("0.005")


# --- intercompany charges: both legs at cost, VAT to the currency's minor unit --------------------


def _ic_charge(currency: str, amount: str) -> Charge:
    charge = validate_charge(
        {
            "charge_id": 1,
            "reference": "MF-1",
            "seller": "A1",
            "buyer": "B1",
            "charge_date": "2026-11-20",
            "currency": currency,
            "description": "Management fee",
            "lines": [{"line_no": 1, "description": "Management fee", "amount": amount}],
            "updated_at": "2026-11-20 06:00:00",
        }
    )
    assert isinstance(charge, Charge)
    return charge


def _ic_facts(currency: str, rate: str) -> dict[str, EntityFacts]:
    seller = Side("A1", currency, 1, "B1-CUST", currency)
    buyer = Side("B1", currency, 2, "A1-SUPP", currency)
    tax = {"V": D(rate)}
    return {
        "A1": EntityFacts([Connection(seller, buyer)], {"B1-CUST": Account(1, "V")}, {}, tax, frozenset()),
        "B1": EntityFacts([Connection(buyer, seller)], {}, {"A1-SUPP": Account(2, "V")}, tax, frozenset()),
    }


@pytest.mark.parametrize(
    ("currency", "amount", "rate", "vat"),
    [
        ("JPY", "1005", "0.10", D("101")),  # no minor unit: 100.5 yen is 101 yen (was 100.50)
        ("BHD", "10.005", "0.10", D("1.001")),  # three decimals: 1.0005 is 1.001 (was 1.00)
        ("GBP", "10.05", "0.20", D("2.01")),
    ],
)
def test_intercompany_vat_is_rounded_to_the_currency_of_the_charge(
    currency: str, amount: str, rate: str, vat: Decimal
) -> None:
    routed = plan_charge(_ic_charge(currency, amount), _ic_facts(currency, rate))

    assert isinstance(routed, RoutedCharge)
    assert routed.quote.sales_vat == routed.quote.purchase_vat == vat
    assert routed.quote.charge == routed.quote.cost == D(amount)


# --- back-to-back jobs priced against AIQ's accounts and tax codes --------------------------------


def _job(**changes: Any) -> Job:
    job = validate_job(
        {
            "job_id": 7,
            "reference": "PL-7",
            "supplier_code": "TEMPS01",
            "customer_code": "ACME01",
            "job_date": "2026-11-20",
            "currency": "GBP",
            "markup_percent": "20",
            "bi_code": "JOB-1",
            "updated_at": "2026-11-20 09:00:00",
            "lines": [{"line_no": 1, "description": "Timesheet", "hours": "10", "rate": "20.00"}],
            **changes,
        }
    )
    assert isinstance(job, Job), job
    return job


ACCOUNTS = {"TEMPS01": Counterparty("GBP", "T1")}
CLIENTS = {"ACME01": Counterparty("GBP", "T1")}
RATES = {"T1": D("0.20"), "EX": D(0)}


def test_a_job_is_priced_with_each_accounts_own_tax_code() -> None:
    priced = price_job(_job(), ACCOUNTS, CLIENTS, RATES, "EX")
    assert isinstance(priced, PricedJob)
    assert (priced.quote.cost, priced.quote.charge, priced.quote.sales_vat) == (
        D("200.00"),
        D("240.00"),
        D("48.00"),
    )


@pytest.mark.parametrize(
    ("suppliers", "recharge", "changes", "field", "rule"),
    [
        (
            {"TEMPS01": Counterparty("GBP", "Z9")},
            "EX",
            {},
            "supplier_code",
            "tax code 'Z9' is not a tax code",
        ),
        ({"TEMPS01": Counterparty("GBP", None)}, "EX", {}, "supplier_code", "tax code None is not"),
        (ACCOUNTS, "T1", {"vat_mode": "agent"}, "vat_mode", "under T1, whose rate is 20"),
        ({}, "EX", {}, "supplier_code", "'TEMPS01' is not an active AIQ supplier"),
        ({"TEMPS01": Counterparty("EUR", "T1")}, "EX", {}, "currency", "trades in EUR"),
    ],
)
def test_a_job_aiq_cannot_price_is_refused_never_priced_at_zero(
    suppliers: dict[str, Counterparty],
    recharge: str,
    changes: dict[str, Any],
    field: str,
    rule: str,
) -> None:
    refused = price_job(_job(**changes), suppliers, CLIENTS, RATES, recharge)
    assert isinstance(refused, Rejection)
    assert refused.field == field and rule in refused.rule


def test_principal_mode_may_recharge_under_any_code() -> None:
    assert isinstance(price_job(_job(), ACCOUNTS, CLIENTS, RATES, "T1"), PricedJob)
