"""Incoming CRM sales, validated before anything is sent to AccountsIQ.

`validate_sale` turns one raw record into a `Sale`, or into a `Rejection` that names the record,
the field and the rule, so the record can be quarantined while the rest of the run goes on.
Shape rules live on the pydantic models; rules that need AccountsIQ's reference data (tax codes,
GL accounts) live in `_check_against_reference`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from aiq_flows.domain.customer_codes import aiq_customer_code
from aiq_flows.domain.fields import (
    MAX_AMOUNT,
    Code,
    Currency,
    Day,
    Flag,
    Moment,
    OptionalAmount,
    OptionalCode,
    OptionalDay,
    OptionalMoment,
    OptionalPositiveAmount,
    OptionalText50,
    OptionalWholeNumber,
    Rejection,
    SourceId,
    Text50,
    Text500,
    WholeNumber,
    parsed_field,
    record_id,
    rejection_from,
    text_parser,
)
from aiq_flows.domain.money import has_at_most_minor_units, minor_unit, round_money
from aiq_flows.domain.references import MAX_EXTERNAL_REFERENCE, SALE_PREFIX, sale_reference
from aiq_flows.domain.spreading import add_months, service_end
from aiq_flows.domain.values import ValueRefused, shown, text_value

InvoiceKind = Literal["batch", "item"]
# The longest service period the sync defers; longer is a typo (100,000 months) or not a sale.
MAX_SERVICE_MONTHS = 120


def _kind(value: Any) -> Any:
    text = text_value(value) if not isinstance(value, bytes) else value
    return text.lower() if isinstance(text, str) else text


class SaleLine(BaseModel):
    """A line's net is given, or is its quantity times its unit price; its tax is given, or, when
    its source keeps no tax amounts at all, is the tax code's rate of the net (`_with_tax`), as
    AIQ computes it."""

    model_config = ConfigDict(frozen=True)
    line_no: WholeNumber
    description: Text500
    gl_account_code: Code
    tax_code: Code
    net_amount: OptionalAmount = None
    tax_amount: OptionalAmount = None
    quantity: OptionalPositiveAmount = None
    unit_price: OptionalAmount = None
    item_code: OptionalCode = None  # an AIQ stock item, for item invoices
    department_id: OptionalCode = None

    def model_post_init(self, _context: Any) -> None:
        if self.net_amount is None and self.quantity is not None and self.unit_price is not None:
            object.__setattr__(self, "net_amount", self.quantity * self.unit_price)

    @property
    def net(self) -> Decimal:
        return self.net_amount if self.net_amount is not None else Decimal(0)

    @property
    def tax(self) -> Decimal:
        return self.tax_amount if self.tax_amount is not None else Decimal(0)

    @property
    def gross_amount(self) -> Decimal:
        return self.net + self.tax


def _customer_key(value: Any) -> str | None:
    key = text_parser(200, to_aiq=False)(value)
    if key is not None:
        try:
            aiq_customer_code(key)
        except ValueError as error:
            raise ValueRefused(str(error)) from None
    return key


class CustomerDetails(BaseModel):
    model_config = ConfigDict(frozen=True)
    key: Annotated[str, parsed_field(_customer_key, required=True)]
    name: Text50
    # An AIQ code the source gives explicitly; otherwise one is derived from the key.
    code: OptionalCode = None
    email: OptionalText50 = None
    phone: OptionalText50 = None
    address1: OptionalText50 = None
    city: OptionalText50 = None
    postcode: OptionalText50 = None
    country: OptionalText50 = None

    @property
    def aiq_code(self) -> str:
        return self.code or aiq_customer_code(self.key)

    @property
    def derived_code(self) -> bool:
        """Whether the AIQ code comes from the key (and so may collide with another key's)."""
        return self.code is None


class Sale(BaseModel):
    model_config = ConfigDict(frozen=True)
    sale_id: SourceId
    reference: Text50
    sale_date: Day
    currency: Currency
    description: Text500
    updated_at: Moment
    customer: CustomerDetails
    lines: list[SaleLine] = Field(min_length=1)
    # Deferred revenue: a service period makes the sale's revenue recognised month by month. The
    # source gives its start and its end, or its start and a number of whole months.
    service_start: OptionalDay = None
    service_end: OptionalDay = None
    service_months: OptionalWholeNumber = None
    credited_at: OptionalMoment = None
    credited: Flag = False
    # The source's prefix of its sales' external references (``S-`` unless its mapping says).
    reference_prefix: str = SALE_PREFIX
    # batch (fast, VAT as the CRM computed it) or item (order number, delivery date, line notes;
    # AIQ computes the VAT); None: the deployment's choice.
    invoice_kind: Annotated[InvoiceKind | None, BeforeValidator(_kind)] = None

    def model_post_init(self, _context: Any) -> None:
        # The end of a service given in months, and "credited" from its date; the rules about a
        # service period are checked by `service_period_problem`, naming the field.
        start, months = self.service_start, self.service_months
        if (
            self.service_end is None
            and start is not None
            and months is not None
            and 1 <= months <= MAX_SERVICE_MONTHS
        ):
            object.__setattr__(self, "service_end", service_end(start, months))
        if self.credited_at is not None and not self.credited:
            object.__setattr__(self, "credited", True)

    @property
    def is_deferred(self) -> bool:
        return self.service_start is not None

    @property
    def external_reference(self) -> str:
        return sale_reference(self.sale_id, self.reference_prefix)

    @property
    def customer_code(self) -> str:
        return self.customer.aiq_code

    @property
    def net_total(self) -> Decimal:
        return sum((line.net for line in self.lines), Decimal(0))

    @property
    def tax_total(self) -> Decimal:
        return sum((line.tax for line in self.lines), Decimal(0))

    @property
    def gross_total(self) -> Decimal:
        return self.net_total + self.tax_total


@dataclass(frozen=True)
class ReferenceData:
    """What AccountsIQ knows that a sale must agree with, read once per run."""

    tax_rates: Mapping[str, Decimal]
    gl_codes: frozenset[str]
    # The first and last day of the periods defined in AIQ, when known: the horizon within
    # which a deferred sale's monthly releases can be posted.
    periods: tuple[date, date] | None = None
    # False: AIQ was not asked (`aiq-flows mapping check` without a connection): a sale's GL
    # accounts and tax codes are taken as they are, its tax amounts as the source gives them.
    known: bool = True

    @classmethod
    def unknown(cls) -> ReferenceData:
        return cls({}, frozenset(), None, known=False)


def service_period_problem(sale: Sale) -> tuple[str, str] | None:
    """A service period is a start and an end (or a start and a number of whole months), in
    order, at most MAX_SERVICE_MONTHS long; half of one is refused, never guessed."""
    start, end, months = sale.service_start, sale.service_end, sale.service_months
    if months is not None and not 1 <= months <= MAX_SERVICE_MONTHS:
        return "service_months", f"{months} is not a number of months from 1 to {MAX_SERVICE_MONTHS}"
    if start is None:
        given = "service_months" if months is not None else "service_end" if end is not None else None
        if given:
            return "service_start", f"is missing: {given} is given, and a service period needs its start"
        return None
    if end is None:
        return "service_end", "is missing: a service_start needs a service_end or service_months"
    if months is not None and end != service_end(start, months):
        return (
            "service_end",
            f"{end} disagrees with service_months ({months} months from {start} end on "
            f"{service_end(start, months)})",
        )
    if end < start:
        return "service_end", f"the service ends ({end}) before it starts ({start})"
    if end > add_months(start, MAX_SERVICE_MONTHS):
        return "service_end", f"{end} is more than {MAX_SERVICE_MONTHS} months after the start ({start})"
    return None


Problem = tuple[str, str]  # (field, rule)


def _line_problem(line: SaleLine, where: str, currency: str, reference: ReferenceData) -> Problem | None:
    if line.net_amount is None:
        return f"{where}.net_amount", "is missing (give it, or a quantity and a unit price)"
    if line.tax_amount is None and "tax_amount" in line.model_fields_set:
        # A source that keeps tax amounts and left this one empty: a slip, not "compute it".
        return (
            f"{where}.tax_amount",
            "is missing (a source without tax amounts leaves them out of its mapping)",
        )
    if line.quantity is not None and line.unit_price is not None:
        product = line.quantity * line.unit_price
        if product != line.net_amount:
            return (
                f"{where}.net_amount",
                f"{line.net_amount} is not quantity x unit_price "
                f"({line.quantity} x {line.unit_price} = {product})",
            )
    if line.net_amount >= MAX_AMOUNT:
        return f"{where}.net_amount", f"{line.net_amount} is not below {MAX_AMOUNT:,}"
    for amount_field in ("net_amount", "tax_amount"):
        amount: Decimal | None = getattr(line, amount_field)
        if amount is not None and not has_at_most_minor_units(amount, currency):
            return (f"{where}.{amount_field}", f"{amount} has more decimals than {currency} allows")
    if not reference.known:
        return None
    if line.gl_account_code not in reference.gl_codes:
        return f"{where}.gl_account_code", f"'{line.gl_account_code}' is not a GL account in AccountsIQ"
    rate = reference.tax_rates.get(line.tax_code)
    if rate is None:
        return f"{where}.tax_code", f"'{line.tax_code}' is not an AccountsIQ tax code"
    expected = round_money(line.net_amount * rate, currency)
    if line.tax_amount is not None and abs(expected - line.tax_amount) > minor_unit(currency):
        return (
            f"{where}.tax_amount",
            f"{line.tax_amount} is not {line.tax_code} at {rate:%} of {line.net_amount} "
            f"(expected {expected}, within one minor unit)",
        )
    return None


def tax_of(line: SaleLine, reference: ReferenceData, currency: str) -> Decimal:
    return round_money(line.net * reference.tax_rates[line.tax_code], currency)


def _with_tax(sale: Sale, reference: ReferenceData) -> Sale:
    """Each line without a tax amount gets its tax code's rate of its net, half-up to the minor
    unit, as AIQ computes it: a CRM that keeps no VAT (most do not) is invoiced exactly so."""
    if all(line.tax_amount is not None for line in sale.lines):
        return sale
    lines = [
        line
        if line.tax_amount is not None
        else line.model_copy(update={"tax_amount": tax_of(line, reference, sale.currency)})
        for line in sale.lines
    ]
    return sale.model_copy(update={"lines": lines})


def _check_against_reference(sale: Sale, reference: ReferenceData) -> Problem | None:
    problem = service_period_problem(sale)
    if problem:
        return problem
    for index, line in enumerate(sale.lines, start=1):
        problem = _line_problem(line, f"lines[{index}]", sale.currency, reference)
        if problem:
            return problem
    if sale.gross_total <= 0:
        return "lines", "the sale's total must be greater than zero"
    if sale.gross_total >= MAX_AMOUNT:
        return "lines", f"the sale's total {sale.gross_total} is not below {MAX_AMOUNT:,}"
    if reference.periods and sale.service_start and sale.service_start < reference.periods[0]:
        return (
            "service_start",
            f"{sale.service_start} is before AccountsIQ's first period (from {reference.periods[0]}): "
            "its releases could never be posted",
        )
    return None


def _missing_customer(raw: Mapping[str, Any]) -> Rejection | None:
    if raw.get("customer") is not None:
        return None
    named = raw.get("customer_ref")
    rule = (
        f"customer {shown(named)} does not exist in the CRM"
        if text_value(named) is not None
        else "is missing: the sale names no customer"
    )
    return Rejection(record_id(raw, "sale_id"), raw.get("reference"), "customer", rule)


def validate_sale(raw: Mapping[str, Any], reference: ReferenceData) -> Sale | Rejection:
    """A raw record (any values a source holds) as a `Sale`, or the reason it cannot be one."""
    missing = _missing_customer(raw)
    if missing:
        return missing
    try:
        sale = Sale.model_validate(raw)
    except ValidationError as error:
        return rejection_from(error, raw, "sale_id", "sale")
    problem = _check_against_reference(sale, reference)
    if problem:
        return Rejection(sale.sale_id, sale.reference, *problem)
    if len(sale.external_reference) > MAX_EXTERNAL_REFERENCE:
        rule = f"{sale.sale_id!r} makes the external reference {sale.external_reference!r} too long for AIQ"
        return Rejection(sale.sale_id, sale.reference, "sale_id", rule)
    return _with_tax(sale, reference) if reference.known else sale


@dataclass(frozen=True)
class PostingLimits:
    """What a deployment allows without a person: `max_invoice_total` (in the sale's currency)."""

    max_invoice_total: Decimal | None = None


def hold_reason(sale: Sale, reference: ReferenceData, limits: PostingLimits) -> str | None:
    """Why a valid sale waits instead of being posted now, or None. A held sale is pending in the
    CRM and read again by the next run."""
    if limits.max_invoice_total is not None and sale.gross_total > limits.max_invoice_total:
        return (
            f"its total {sale.gross_total} {sale.currency} is above this deployment's max_invoice_total "
            f"({limits.max_invoice_total}): held for approval (run the deployment with approval to post it)"
        )
    if reference.periods and sale.service_end and sale.service_end > reference.periods[1]:
        return (
            f"its service runs to {sale.service_end}, beyond AccountsIQ's last period (ending "
            f"{reference.periods[1]}): open the periods in AccountsIQ and the next run posts it"
        )
    return None
