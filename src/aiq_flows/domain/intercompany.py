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
from aiq_flows.domain.money import has_at_most_minor_units
from aiq_flows.domain.pricing import CostLine
from aiq_flows.domain.references import checked


class ChargeLine(BaseModel):
    model_config = ConfigDict(frozen=True)
    line_no: WholeNumber
    description: Text500
    amount: Decimal = Field(gt=0)


class Charge(BaseModel):
    model_config = ConfigDict(frozen=True)
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
        checked(self.purchase_reference)
        return self

    @property
    def sales_reference(self) -> str:
        return f"IC-{self.charge_id}-S"

    @property
    def purchase_reference(self) -> str:
        return f"IC-{self.charge_id}-P"

    @property
    def version(self) -> str:
        return self.updated_at.isoformat()

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
        assert local.account_code is not None and remote.account_code is not None
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
