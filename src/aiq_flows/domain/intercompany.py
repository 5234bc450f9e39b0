"""Intercompany charges (recharges, management fees, goods between group companies): validated,
routed over a valid intercompany connection, and checked for parity once both legs are posted.

AIQ cannot create intercompany transactions itself: the seller raises a sales invoice to the
customer account that stands for the buyer (``IC-<id>-S``), the buyer a purchase invoice from the
supplier account that stands for the seller (``IC-<id>-P``), same date and document currency.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aiq_flows.domain.fields import (
    Code,
    Currency,
    Day,
    Moment,
    OptionalCode,
    Rejection,
    Text50,
    Text500,
    WholeNumber,
    rejection_from,
)
from aiq_flows.domain.money import currency_exponent, has_at_most_minor_units
from aiq_flows.domain.pair_sources import PairSource
from aiq_flows.domain.pricing import CostLine, Markup, Quote, TaxRate, VatMode, price
from aiq_flows.domain.references import PairKind


class ChargeLine(BaseModel):
    model_config = ConfigDict(frozen=True)
    line_no: WholeNumber
    description: Text500
    amount: Decimal = Field(gt=0)


class Charge(PairSource):
    kind = PairKind.INTERCOMPANY
    charge_id: int
    reference: Text50
    seller: Code  # the entity that charges (from)
    buyer: Code  # the entity charged (to)
    charge_date: Day
    currency: Currency
    description: Text500
    lines: list[ChargeLine] = Field(min_length=1)
    seller_bi_code: OptionalCode = None
    buyer_bi_code: OptionalCode = None
    sales_tax_code: OptionalCode = None  # default: the seller's customer account's tax code
    purchase_tax_code: OptionalCode = None  # default: the buyer's supplier account's tax code
    cancelled: bool = False
    updated_at: Moment

    @model_validator(mode="after")
    def _two_entities(self) -> Charge:
        if self.seller == self.buyer:
            raise ValueError(f"seller and buyer are the same entity ({self.seller})")
        return self

    @property
    def source_id(self) -> int:
        return self.charge_id

    def costs(self) -> list[CostLine]:
        return [CostLine(line.description, line.amount) for line in self.lines]


def validate_charge(raw: Mapping[str, Any]) -> Charge | Rejection:
    try:
        charge = Charge.model_validate(raw)
    except ValidationError as error:
        return rejection_from(error, raw, "charge_id", "charge")
    for line in charge.lines:
        if not has_at_most_minor_units(line.amount, charge.currency):
            field = f"lines[{line.line_no}].amount"
            rule = f"{line.amount} has more decimals than {charge.currency} allows"
            return Rejection(charge.charge_id, charge.reference, field, rule, "charge")
    return charge


@dataclass(frozen=True)
class Side:
    """One side of an intercompany connection, as ``GetInterCompanyConnectionList`` shows it."""

    entity: str
    base_currency: str | None
    account_id: int
    account_code: str | None
    account_currency: str | None


@dataclass(frozen=True)
class Connection:
    local: Side
    remote: Side


@dataclass(frozen=True)
class Route:
    """Where each leg goes: the seller's customer standing for the buyer, the buyer's supplier
    standing for the seller."""

    customer_code: str
    supplier_code: str
    seller_base_currency: str | None
    buyer_base_currency: str | None


def route(
    charge: Charge,
    seller_view: Sequence[Connection],
    buyer_view: Sequence[Connection],
    seller_customers: Mapping[str, int],
    buyer_suppliers: Mapping[str, int],
) -> Route | Rejection:
    """The connection from seller to buyer, verified from both sides: in the seller's list a
    connection to the buyer whose local account is a customer and whose remote account is a
    supplier in the buyer; in the buyer's list its mirror. Account codes map to account IDs."""
    for connection in seller_view:
        local, remote = connection.local, connection.remote
        if remote.entity != charge.buyer:
            continue
        if seller_customers.get(local.account_code or "") != local.account_id:
            continue  # the seller's side is a supplier: the connection of the opposite direction
        if buyer_suppliers.get(remote.account_code or "") != remote.account_id:
            continue
        mirrored = any(
            m.remote.entity == charge.seller
            and m.local.account_id == remote.account_id
            and m.remote.account_id == local.account_id
            for m in buyer_view
        )
        if not mirrored:
            continue
        for side in (local, remote):
            if (side.account_currency or charge.currency) != charge.currency:
                return Rejection(
                    charge.charge_id,
                    charge.reference,
                    "currency",
                    f"the charge is in {charge.currency}, but account {side.account_code} in {side.entity} "
                    f"trades in {side.account_currency}",
                    "charge",
                )
        if local.account_code is None or remote.account_code is None:
            continue  # an account without a code cannot be invoiced
        return Route(local.account_code, remote.account_code, local.base_currency, remote.base_currency)
    return Rejection(
        charge.charge_id,
        charge.reference,
        "buyer",
        f"no valid intercompany connection from {charge.seller} to {charge.buyer} (a customer in "
        f"{charge.seller} and a supplier in {charge.buyer}, seen from both sides)",
        "charge",
    )


@dataclass(frozen=True)
class Account:
    """A customer or supplier account as routing needs it."""

    account_id: int
    default_tax_code: str | None


@dataclass(frozen=True)
class EntityFacts:
    """What one entity's AIQ says, read once per run."""

    connections: Sequence[Connection]
    customers: Mapping[str, Account]
    suppliers: Mapping[str, Account]
    tax_rates: Mapping[str, Decimal]
    active_bi_codes: frozenset[str]


@dataclass(frozen=True)
class RoutedCharge:
    charge: Charge
    route: Route
    quote: Quote  # purchase lines in the buyer, sales lines in the seller, both at the charge's net


def plan_charge(charge: Charge, facts: Mapping[str, EntityFacts]) -> RoutedCharge | Rejection:
    """A charge's two legs, or why it cannot have them. Both entities must be in the deployment,
    connected both ways (`route`), with the BI codes the charge names active on each side. Each
    leg carries the charge's lines at cost, its VAT from that entity's tax code (the charge's,
    else the account's default), rounded to the currency's minor unit (JPY 0, BHD 3)."""

    def refuse(field_name: str, rule: str) -> Rejection:
        return Rejection(charge.charge_id, charge.reference, field_name, rule, "charge")

    for role, entity in (("seller", charge.seller), ("buyer", charge.buyer)):
        if entity not in facts:
            return refuse(role, f"no AIQ connection block for entity {entity} in this deployment")
    seller, buyer = facts[charge.seller], facts[charge.buyer]
    routed = route(
        charge,
        seller.connections,
        buyer.connections,
        {code: account.account_id for code, account in seller.customers.items()},
        {code: account.account_id for code, account in buyer.suppliers.items()},
    )
    if isinstance(routed, Rejection):
        return routed
    for field_name, code, side, entity in (
        ("seller_bi_code", charge.seller_bi_code, seller, charge.seller),
        ("buyer_bi_code", charge.buyer_bi_code, buyer, charge.buyer),
    ):
        if code is not None and code not in side.active_bi_codes:
            return refuse(field_name, f"BI code '{code}' is not an active BI code in {entity}")
    taxes: dict[str, TaxRate] = {}
    customer, supplier = seller.customers[routed.customer_code], buyer.suppliers[routed.supplier_code]
    for field_name, given, account, side, entity in (
        ("sales_tax_code", charge.sales_tax_code, customer, seller, charge.seller),
        ("purchase_tax_code", charge.purchase_tax_code, supplier, buyer, charge.buyer),
    ):
        code = given or account.default_tax_code
        if code is None or code not in side.tax_rates:
            return refuse(field_name, f"'{code}' is not a tax code in {entity}")
        taxes[field_name] = TaxRate(code, side.tax_rates[code])
    sales_tax, purchase_tax = taxes["sales_tax_code"], taxes["purchase_tax_code"]
    quote = price(
        charge.costs(),
        Markup(fee=Decimal(0)),
        VatMode.PRINCIPAL,
        purchase_tax,
        sales_tax,
        sales_tax,
        exponent=currency_exponent(charge.currency),
    )
    return RoutedCharge(charge, routed, quote)


@dataclass(frozen=True)
class Parity:
    """Both posted legs compared: net in the document currency, and each in its entity's base."""

    currency: str
    sales_net: Decimal
    purchase_net: Decimal
    tolerance: Decimal
    sales_base_net: Decimal
    seller_base_currency: str | None
    purchase_base_net: Decimal
    buyer_base_currency: str | None

    @property
    def difference(self) -> Decimal:
        return self.sales_net - self.purchase_net

    @property
    def holds(self) -> bool:
        return abs(self.difference) <= self.tolerance

    @property
    def base_difference(self) -> Decimal | None:
        """Seller's base net minus buyer's, when both entities share a base currency."""
        if self.seller_base_currency != self.buyer_base_currency:
            return None
        return self.sales_base_net - self.purchase_base_net

    def describe(self) -> str:
        base = (
            f"base {self.sales_base_net} {self.seller_base_currency} / "
            f"{self.purchase_base_net} {self.buyer_base_currency}"
        )
        verdict = "parity" if self.holds else f"MISMATCH of {self.difference} {self.currency}"
        return f"net {self.sales_net} / {self.purchase_net} {self.currency} ({base}): {verdict}"
