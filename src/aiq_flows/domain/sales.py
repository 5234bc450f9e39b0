"""Incoming CRM sales, validated before anything is sent to AccountsIQ.

`validate_sale` turns one raw record into a `Sale`, or into a `Rejection` that names the record,
the field and the rule, so the record can be quarantined while the rest of the run goes on.
Shape rules live on the pydantic models; rules that need AccountsIQ's reference data (tax codes,
GL accounts) live in `_check_against_reference`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from aiq_flows.domain.customer_codes import aiq_customer_code
from aiq_flows.domain.money import has_at_most_minor_units, minor_unit, round_money
from aiq_flows.domain.references import sale_reference

# Upper-case before the pattern: pydantic checks a pattern before its own to_upper.
Currency = Annotated[
    str,
    BeforeValidator(lambda v: v.strip().upper() if isinstance(v, str) else v),
    StringConstraints(pattern=r"^[A-Z]{3}$"),
]
InvoiceKind = Literal["batch", "item"]
Code = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=1, max_length=50)]
Text500 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Text50 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)]


class SaleLine(BaseModel):
    model_config = ConfigDict(frozen=True)
    line_no: int
    description: Text500
    gl_account_code: Code
    tax_code: Code
    net_amount: Decimal = Field(ge=0)
    tax_amount: Decimal = Field(ge=0)
    department_id: Code | None = None

    @property
    def gross_amount(self) -> Decimal:
        return self.net_amount + self.tax_amount


class CustomerDetails(BaseModel):
    model_config = ConfigDict(frozen=True)
    key: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
    email: Text50 | None = None
    phone: Text50 | None = None
    address1: Text50 | None = None
    city: Text50 | None = None
    postcode: Text50 | None = None
    country: Text50 | None = None

    @property
    def aiq_code(self) -> str:
        return aiq_customer_code(self.key)

    @field_validator("key")
    @classmethod
    def _key_maps_to_a_code(cls, key: str) -> str:
        aiq_customer_code(key)  # raises ValueError with a clear message
        return key


class Sale(BaseModel):
    model_config = ConfigDict(frozen=True)
    sale_id: int
    reference: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
    sale_date: date
    currency: Currency
    description: Text500
    updated_at: datetime
    customer: CustomerDetails
    lines: list[SaleLine] = Field(min_length=1)
    # Deferred revenue: a service period makes the sale's revenue recognised month by month.
    service_start: date | None = None
    service_end: date | None = None
    credited: bool = False
    # batch (fast, VAT as the CRM computed it) or item (order number, delivery date, line notes;
    # AIQ computes the VAT); None: the deployment's choice.
    invoice_kind: InvoiceKind | None = None

    @model_validator(mode="after")
    def _service_period_is_whole(self) -> Sale:
        if (self.service_start is None) != (self.service_end is None):
            raise ValueError("service_start and service_end go together: give both or neither")
        if self.service_start and self.service_end and self.service_end < self.service_start:
            raise ValueError(f"the service ends ({self.service_end}) before it starts ({self.service_start})")
        return self

    @property
    def is_deferred(self) -> bool:
        return self.service_start is not None

    @property
    def external_reference(self) -> str:
        return sale_reference(self.sale_id)

    @property
    def customer_code(self) -> str:
        return self.customer.aiq_code

    @property
    def net_total(self) -> Decimal:
        return sum((line.net_amount for line in self.lines), Decimal(0))

    @property
    def tax_total(self) -> Decimal:
        return sum((line.tax_amount for line in self.lines), Decimal(0))

    @property
    def gross_total(self) -> Decimal:
        return self.net_total + self.tax_total


@dataclass(frozen=True)
class ReferenceData:
    """What AccountsIQ knows that a sale must agree with, read once per run."""

    tax_rates: Mapping[str, Decimal]
    gl_codes: frozenset[str]


@dataclass(frozen=True)
class Rejection:
    sale_id: Any  # the record's id (a sale's, a job's)
    reference: str | None
    field: str
    rule: str
    noun: str = "sale"

    @property
    def message(self) -> str:
        noun = self.noun
        who = (
            f"{noun} {self.reference!r} (id {self.sale_id})"
            if self.reference
            else f"{noun} id {self.sale_id}"
        )
        return f"{who}: {self.field}: {self.rule}"


def rejection_from(error: ValidationError, raw: Mapping[str, Any], id_field: str, noun: str) -> Rejection:
    """The first problem of a record pydantic refused (the others appended), as a Rejection."""
    first = error.errors()[0]
    rule = "; ".join(f"{_field_path(e['loc'], raw)}: {e['msg']}" for e in error.errors()[1:])
    message = first["msg"] + (f" (also {rule})" if rule else "")
    return Rejection(raw.get(id_field), raw.get("reference"), _field_path(first["loc"], raw), message, noun)


def _field_path(loc: tuple[int | str, ...], raw: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item + 1}]"  # people count lines from 1
        else:
            parts.append(item)
    return ".".join(parts) or "record"


def _check_against_reference(sale: Sale, reference: ReferenceData) -> tuple[str, str] | None:
    for index, line in enumerate(sale.lines, start=1):
        where = f"lines[{index}]"
        for amount_field in ("net_amount", "tax_amount"):
            amount: Decimal = getattr(line, amount_field)
            if not has_at_most_minor_units(amount, sale.currency):
                return (f"{where}.{amount_field}", f"{amount} has more decimals than {sale.currency} allows")
        if line.gl_account_code not in reference.gl_codes:
            return (
                f"{where}.gl_account_code",
                f"'{line.gl_account_code}' is not a GL account in AccountsIQ",
            )
        rate = reference.tax_rates.get(line.tax_code)
        if rate is None:
            return f"{where}.tax_code", f"'{line.tax_code}' is not an AccountsIQ tax code"
        expected = round_money(line.net_amount * rate, sale.currency)
        if abs(expected - line.tax_amount) > minor_unit(sale.currency):
            return (
                f"{where}.tax_amount",
                f"{line.tax_amount} is not {line.tax_code} at {rate:%} of {line.net_amount} "
                f"(expected {expected}, within one minor unit)",
            )
    if sale.gross_total <= 0:
        return "lines", "the sale's total must be greater than zero"
    return None


def validate_sale(raw: Mapping[str, Any], reference: ReferenceData) -> Sale | Rejection:
    try:
        sale = Sale.model_validate(raw)
    except ValidationError as error:
        return rejection_from(error, raw, "sale_id", "sale")
    problem = _check_against_reference(sale, reference)
    if problem:
        return Rejection(sale.sale_id, sale.reference, *problem)
    return sale
