"""Back-to-back pricing: what the agency pays the contractor (purchase leg) and what it bills the
client (sales leg), line by line, penny-exact.

- Percent markup: each sales line is its cost line x (1 + markup), rounded half-up to the
  currency's minor unit *per line*; a document's total is the sum of its lines (never a
  separately rounded total).
- Fixed fee: the cost lines are recharged at cost and one fee line is added.
- VAT per leg from that leg's tax code, per line, half-up. Two modes, after HMRC's guidance on
  the supply of staff (VAT Notice 700/34): ``principal`` - the agency supplies the worker, VAT
  on the whole charge; ``agent`` - the agency only introduces the worker, the cost is recharged
  as a disbursement under its own (normally zero or exempt) tax code and VAT is due on the fee
  alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum


class VatMode(StrEnum):
    PRINCIPAL = "principal"
    AGENT = "agent"


class LineKind(StrEnum):
    COST = "cost"  # purchase leg: what the contractor charges
    CHARGE = "charge"  # sales leg, principal with percent markup: cost x (1 + markup)
    RECHARGE = "recharge"  # sales leg: the cost passed on at cost
    FEE = "fee"  # sales leg: the agency's fee (the markup, or the fixed fee)


@dataclass(frozen=True)
class TaxRate:
    code: str
    rate: Decimal  # a fraction: 0.20 for 20%


@dataclass(frozen=True)
class CostLine:
    description: str
    amount: Decimal  # at the currency's minor unit


@dataclass(frozen=True)
class Markup:
    """Exactly one of ``percent`` (15 for 15%) and ``fee`` (a fixed amount)."""

    percent: Decimal | None = None
    fee: Decimal | None = None

    def __post_init__(self) -> None:
        if (self.percent is None) == (self.fee is None):
            raise ValueError("a markup is either a percent or a fixed fee, not both or neither")


@dataclass(frozen=True)
class PricedLine:
    kind: LineKind
    description: str
    net: Decimal
    tax_code: str
    vat: Decimal

    @property
    def gross(self) -> Decimal:
        return self.net + self.vat


@dataclass(frozen=True)
class Quote:
    purchase: tuple[PricedLine, ...]
    sales: tuple[PricedLine, ...]

    @property
    def cost(self) -> Decimal:
        return sum((line.net for line in self.purchase), Decimal(0))

    @property
    def charge(self) -> Decimal:
        return sum((line.net for line in self.sales), Decimal(0))

    @property
    def margin(self) -> Decimal:
        return self.charge - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        """Margin as a percentage of the charge, to two decimals (None for a zero charge)."""
        if not self.charge:
            return None
        return (self.margin * 100 / self.charge).quantize(Decimal("0.01"), ROUND_HALF_UP)

    @property
    def purchase_vat(self) -> Decimal:
        return sum((line.vat for line in self.purchase), Decimal(0))

    @property
    def sales_vat(self) -> Decimal:
        return sum((line.vat for line in self.sales), Decimal(0))


def rounded(amount: Decimal, exponent: int = 2) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP)


def _line(kind: LineKind, description: str, net: Decimal, tax: TaxRate, exponent: int) -> PricedLine:
    return PricedLine(kind, description, net, tax.code, rounded(net * tax.rate, exponent))


def price(
    costs: list[CostLine],
    markup: Markup,
    mode: VatMode,
    purchase_tax: TaxRate,
    sales_tax: TaxRate,
    recharge_tax: TaxRate,
    *,
    exponent: int,
) -> Quote:
    """Both legs of a back-to-back job; every amount rounded to `exponent` decimals, the minor unit
    of the job's currency (`money.currency_exponent`): never a default, JPY has none, BHD three."""
    purchase = tuple(_line(LineKind.COST, c.description, c.amount, purchase_tax, exponent) for c in costs)
    sales: list[PricedLine] = []
    if markup.percent is not None:
        factor = 1 + markup.percent / 100
        for cost in costs:
            charge = rounded(cost.amount * factor, exponent)
            if mode is VatMode.PRINCIPAL:
                sales.append(_line(LineKind.CHARGE, cost.description, charge, sales_tax, exponent))
                continue
            sales.append(_line(LineKind.RECHARGE, cost.description, cost.amount, recharge_tax, exponent))
            if charge != cost.amount:
                fee = f"Fee {markup.percent.normalize():f}% on {cost.description}"
                sales.append(_line(LineKind.FEE, fee, charge - cost.amount, sales_tax, exponent))
    else:
        fixed_fee = markup.fee or Decimal(0)  # a Markup is a percent or a fee, never neither
        recharge_tax_here = sales_tax if mode is VatMode.PRINCIPAL else recharge_tax
        sales += [
            _line(LineKind.RECHARGE, c.description, c.amount, recharge_tax_here, exponent) for c in costs
        ]
        if fixed_fee:
            sales.append(_line(LineKind.FEE, "Agency fee", rounded(fixed_fee, exponent), sales_tax, exponent))
    return Quote(purchase, tuple(sales))
