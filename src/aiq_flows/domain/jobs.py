"""Back-to-back jobs (a placement, a timesheet period, a pass-through cost), validated before
anything is sent to AccountsIQ, and priced into their two legs.

A job is paid to a supplier (the contractor: purchase leg ``B2B-<job>-P``) and billed to a
customer (sales leg ``B2B-<job>-S``) with a markup, both legs tagged with one BI code.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from aiq_flows.domain.money import currency_exponent, has_at_most_minor_units, round_money
from aiq_flows.domain.pair_sources import PairSource
from aiq_flows.domain.pricing import CostLine, Markup, Quote, TaxRate, VatMode, price
from aiq_flows.domain.references import PairKind

ANALYSIS_DIMENSIONS = 6


class JobLine(BaseModel):
    """Hours x rate (a timesheet), or an amount (a pass-through cost)."""

    model_config = ConfigDict(frozen=True)
    line_no: WholeNumber
    description: Text500
    hours: Decimal | None = Field(default=None, gt=0)
    rate: Decimal | None = Field(default=None, gt=0)
    amount: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _hours_and_rate_or_an_amount(self) -> JobLine:
        timesheet = self.hours is not None and self.rate is not None
        if timesheet == (self.amount is not None) or (self.hours is None) != (self.rate is None):
            raise ValueError("give hours and rate, or an amount; not both, not neither")
        return self

    def cost(self, currency: str) -> Decimal:
        if self.hours is not None and self.rate is not None:
            return round_money(self.hours * self.rate, currency)
        return self.amount or Decimal(0)  # the validator makes it one or the other

    def label(self) -> str:
        if self.hours is None:
            return self.description
        return f"{self.description}: {self.hours.normalize():f} h x {self.rate}"


class Job(PairSource):
    kind = PairKind.BACK_TO_BACK
    job_id: int
    reference: Text50
    supplier_code: Code
    customer_code: Code
    job_date: Day
    currency: Currency
    lines: list[JobLine] = Field(min_length=1)
    markup_percent: Decimal | None = Field(default=None, ge=0, le=1000)
    fixed_fee: Decimal | None = Field(default=None, ge=0)
    vat_mode: VatMode = VatMode.PRINCIPAL
    bi_code: OptionalCode = None
    analysis_codes: tuple[Code | None, ...] = (None,) * ANALYSIS_DIMENSIONS
    closing: bool = False
    cancelled: bool = False
    updated_at: Moment

    @model_validator(mode="after")
    def _rules(self) -> Job:
        if (self.markup_percent is None) == (self.fixed_fee is None):
            raise ValueError("give a markup_percent or a fixed_fee (one of them)")
        if self.bi_code is None and not any(self.analysis_codes):
            raise ValueError("give a bi_code, or the analysis elements that identify one")
        if len(self.analysis_codes) != ANALYSIS_DIMENSIONS:
            raise ValueError(f"analysis_codes has {ANALYSIS_DIMENSIONS} places (one per dimension)")
        return self

    @property
    def source_id(self) -> int:
        return self.job_id

    @property
    def markup(self) -> Markup:
        return Markup(percent=self.markup_percent, fee=self.fixed_fee)

    def costs(self) -> list[CostLine]:
        return [CostLine(line.label(), line.cost(self.currency)) for line in self.lines]

    def quote(self, purchase_tax: TaxRate, sales_tax: TaxRate, recharge_tax: TaxRate) -> Quote:
        return price(
            self.costs(),
            self.markup,
            self.vat_mode,
            purchase_tax,
            sales_tax,
            recharge_tax,
            exponent=currency_exponent(self.currency),
        )


def validate_job(raw: Mapping[str, Any]) -> Job | Rejection:
    try:
        job = Job.model_validate(raw)
    except ValidationError as error:
        return rejection_from(error, raw, "job_id", "job")
    for line in job.lines:
        if line.amount is not None and not has_at_most_minor_units(line.amount, job.currency):
            return Rejection(
                job.job_id,
                job.reference,
                f"lines[{line.line_no}].amount",
                f"{line.amount} has more decimals than {job.currency} allows",
                "job",
            )
    if job.fixed_fee is not None and not has_at_most_minor_units(job.fixed_fee, job.currency):
        return Rejection(
            job.job_id,
            job.reference,
            "fixed_fee",
            f"{job.fixed_fee} has more decimals than {job.currency}",
            "job",
        )
    return job


@dataclass(frozen=True)
class Counterparty:
    """An active AIQ supplier or customer, as a job's leg needs it."""

    currency: str | None
    default_tax_code: str | None


@dataclass(frozen=True)
class PricedJob:
    job: Job
    quote: Quote
    supplier_tax: str
    customer_tax: str


def price_job(
    job: Job,
    suppliers: Mapping[str, Counterparty],
    customers: Mapping[str, Counterparty],
    tax_rates: Mapping[str, Decimal],
    recharge_tax_code: str,
) -> PricedJob | Rejection:
    """A job's two legs priced with each account's own tax code, or why they cannot be.

    The supplier and the customer must be active AIQ accounts trading in the job's currency;
    each leg's VAT comes from its account's default tax code, which must be one AIQ has (never
    a guessed 0%). Under the agent VAT mode the cost is recharged as a disbursement under
    `recharge_tax_code`, which must carry no VAT: a rate above zero would tax the disbursement."""

    def refuse(field_name: str, rule: str) -> Rejection:
        return Rejection(job.job_id, job.reference, field_name, rule, "job")

    taxes: dict[str, TaxRate] = {}
    for field_name, code, accounts, kind in (
        ("supplier_code", job.supplier_code, suppliers, "supplier"),
        ("customer_code", job.customer_code, customers, "customer"),
    ):
        account = accounts.get(code)
        if account is None:
            return refuse(field_name, f"'{code}' is not an active AIQ {kind}")
        if (account.currency or job.currency) != job.currency:
            return refuse(
                "currency", f"the job is in {job.currency} but {kind} {code} trades in {account.currency}"
            )
        rate = tax_rates.get(account.default_tax_code or "")
        if rate is None:
            return refuse(
                field_name,
                f"{kind} {code}'s tax code {account.default_tax_code!r} is not a tax code in AIQ: "
                "set the account's default tax code in AIQ",
            )
        taxes[kind] = TaxRate(account.default_tax_code or "", rate)
    recharge_rate = tax_rates.get(recharge_tax_code)
    if recharge_rate is None:
        return refuse("vat_mode", f"recharge tax code {recharge_tax_code!r} is not a tax code in AIQ")
    if job.vat_mode is VatMode.AGENT and recharge_rate != 0:
        return refuse(
            "vat_mode",
            f"agent mode recharges the cost as a disbursement under {recharge_tax_code}, whose rate is "
            f"{recharge_rate:%}: a disbursement carries no VAT (use a zero-rated or exempt code)",
        )
    quote = job.quote(taxes["supplier"], taxes["customer"], TaxRate(recharge_tax_code, recharge_rate))
    return PricedJob(job, quote, taxes["supplier"].code, taxes["customer"].code)
