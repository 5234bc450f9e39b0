"""Record fields as AccountsIQ takes them, parsed from whatever a source holds.

Each type below is a pydantic field that accepts a raw source value (text, number, date, NULL),
parses it with `aiq_flows.domain.values`, and applies AccountsIQ's rule for that kind of field:
codes upper case and at most 50 characters, names 50, descriptions 500, text that XML can carry,
amounts not negative and within what AIQ stores exactly. A refusal says, in a finance user's
words, what the value is and what the rule is; `rejection_from` adds the record and the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, ValidationError
from pydantic_core import PydanticCustomError

from aiq_flows.domain.values import (
    ValueRefused,
    date_value,
    datetime_value,
    decimal_value,
    shown,
    text_value,
    whole_number,
    xml_problem,
)

T = TypeVar("T")

# AIQ stores money with four decimals in SQL Server and carries tax rates as doubles: below 10^12
# an amount with its minor units stays within the 15 significant digits a double holds exactly,
# and far within every AIQ amount field. Above it a value is a typo (or a test of the system).
MAX_AMOUNT = Decimal(10) ** 12
# Dates a ledger can hold: AIQ's periods are a handful of years around today; these bounds only
# keep arithmetic on a date (a service period's end) from leaving the calendar.
FIRST_YEAR, LAST_YEAR = 1900, 2199
# AccountsIQ's code alphabet (customer, GL, tax, department codes): upper case, no spaces inside.
_AIQ_CODE = re.compile(r"[A-Z0-9_.\-/&]+")

_CENT = Decimal("0.01")
REFUSED = "source_value"  # the pydantic error type of every refusal raised here


def refuse(message: str) -> PydanticCustomError:
    return PydanticCustomError(REFUSED, message)


def parsed_field(parse: Callable[[Any], T | None], *, required: bool) -> BeforeValidator:
    def validate(value: Any) -> T | None:
        try:
            parsed = parse(value)
        except ValueRefused as refused:
            raise refuse(str(refused)) from None
        if parsed is None and required:
            raise refuse("is missing")
        return parsed

    return BeforeValidator(validate)


def text_parser(max_length: int, *, upper: bool = False, to_aiq: bool = True) -> Callable[[Any], str | None]:
    def parse(value: Any) -> str | None:
        text = text_value(value)
        if text is None:
            return None
        if to_aiq and (problem := xml_problem(text)):
            raise ValueRefused(problem)
        if upper:
            text = text.upper()
        if len(text) > max_length:
            raise ValueRefused(
                f"{shown(text)} is {len(text)} characters long; AccountsIQ takes at most {max_length}"
            )
        return text

    return parse


def _code(value: Any) -> str | None:
    code = text_parser(50, upper=True)(value)
    if code is not None and not _AIQ_CODE.fullmatch(code):
        raise ValueRefused(f"{shown(code)} is not an AccountsIQ code (letters, digits and _ . - / & only)")
    return code


def _currency(value: Any) -> str | None:
    code = text_parser(10, upper=True)(value)
    if code is not None and not re.fullmatch(r"[A-Z]{3}", code):
        raise ValueRefused(f"{shown(code)} is not a three-letter currency code (such as GBP)")
    return code


def _in_calendar(parsed: date | None, value: Any) -> None:
    if parsed is not None and not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise ValueRefused(f"{shown(value)} is not a plausible date (years {FIRST_YEAR} to {LAST_YEAR})")


def _day(value: Any) -> date | None:
    parsed = date_value(value)
    _in_calendar(parsed, value)
    return parsed


def _moment(value: Any) -> datetime | None:
    parsed = datetime_value(value)
    _in_calendar(parsed, value)
    return parsed


def _amount(value: Any) -> Decimal | None:
    amount = decimal_value(value)
    if amount is None:
        return None
    if amount < 0:
        raise ValueRefused(f"{shown(value)} is negative (raise a credit note for money going back)")
    if amount >= MAX_AMOUNT:
        raise ValueRefused(f"{shown(value)} is not below {MAX_AMOUNT:,}, the largest amount this sync posts")
    # A NUMERIC(18, 4) column pads 100 to 100.0000: shown as 100.00, the same amount.
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and amount == amount.quantize(_CENT):
        return amount.quantize(_CENT)
    return amount


def _positive(value: Any) -> Decimal | None:
    amount = _amount(value)
    if amount == 0:
        raise ValueRefused(f"{shown(value)} must be greater than zero")
    return amount


def _source_id(value: Any) -> int | str | None:
    """A record's key in its source: a whole number stays one (42), anything else is text, as a
    CRM's string ids are (Salesforce's 0065g00000AbCdEAAV); at most 40 characters, so that its
    external reference (a prefix and the id) fits AIQ's 50."""
    if isinstance(value, int | Decimal | float) and not isinstance(value, bool):
        return whole_number(value)
    key = text_parser(40)(value)
    if key is not None and not key.isdigit():
        return key
    return int(key) if key is not None else None


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool) or value is None:
        return value
    text = text_value(value)
    if text is None:
        return None
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "y", "t"):
        return True
    if lowered in ("0", "false", "no", "n", "f"):
        return False
    raise ValueRefused(f"{shown(value)} is not yes or no")


# Text that goes to AIQ: stripped, XML-safe, within AIQ's length.
Text50 = Annotated[str, parsed_field(text_parser(50), required=True)]
Text500 = Annotated[str, parsed_field(text_parser(500), required=True)]
OptionalText50 = Annotated[str | None, parsed_field(text_parser(50), required=False)]
# A source's own key (not sent to AIQ as such).
SourceKey = Annotated[str, parsed_field(text_parser(200, to_aiq=False), required=True)]
Code = Annotated[str, parsed_field(_code, required=True)]
OptionalCode = Annotated[str | None, parsed_field(_code, required=False)]
Currency = Annotated[str, parsed_field(_currency, required=True)]
Day = Annotated[date, parsed_field(_day, required=True)]
OptionalDay = Annotated[date | None, parsed_field(_day, required=False)]
Moment = Annotated[datetime, parsed_field(_moment, required=True)]
OptionalMoment = Annotated[datetime | None, parsed_field(_moment, required=False)]
Amount = Annotated[Decimal, parsed_field(_amount, required=True)]  # >= 0, below MAX_AMOUNT
PositiveAmount = Annotated[Decimal, parsed_field(_positive, required=True)]
OptionalPositiveAmount = Annotated[Decimal | None, parsed_field(_positive, required=False)]
OptionalAmount = Annotated[Decimal | None, parsed_field(_amount, required=False)]
WholeNumber = Annotated[int, parsed_field(whole_number, required=True)]
SourceId = Annotated[int | str, parsed_field(_source_id, required=True)]
OptionalPositiveDecimal = OptionalPositiveAmount  # a quantity: positive, exact
OptionalWholeNumber = Annotated[int | None, parsed_field(whole_number, required=False)]
Flag = Annotated[bool, parsed_field(_flag, required=False)]


@dataclass(frozen=True)
class Rejection:
    """A record refused before anything was sent: which record, which field, which rule."""

    sale_id: Any  # the record's id (a sale's, a job's, a charge's)
    reference: Any
    field: str
    rule: str
    noun: str = "sale"

    @property
    def message(self) -> str:
        try:
            reference = text_value(self.reference)
        except ValueRefused:
            reference = None
        who = (
            f"{self.noun} {shown(reference)} (id {self.sale_id})"
            if reference
            else f"{self.noun} id {self.sale_id}"
        )
        return f"{who}: {self.field}: {self.rule}"


def _rule(error: Mapping[str, Any]) -> str:
    """pydantic's wording of a refusal, put as a finance user would read it."""
    kind, context = error["type"], error.get("ctx") or {}
    if kind == REFUSED:
        return str(error["msg"])
    if kind == "missing":
        return "is missing"
    if kind == "too_short":
        return "is empty (at least one is needed)"
    if kind == "literal_error":
        return f"{shown(error.get('input'))} is not one of {context.get('expected', 'the allowed values')}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(context.values()), "")
        words = {
            "greater_than_equal": "at least",
            "greater_than": "greater than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }
        return f"{shown(error.get('input'))} must be {words[kind]} {bound}"
    if kind in ("model_type", "dict_type", "list_type"):
        return f"{shown(error.get('input'))} is not a record this field can hold"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int) and parts:
            parts[-1] = f"{parts[-1]}[{item + 1}]"  # people count lines from 1
        else:
            parts.append(str(item))
    return ".".join(parts) or "record"


def rejection_from(error: ValidationError, raw: Mapping[str, Any], id_field: str, noun: str) -> Rejection:
    """The first problem of a record pydantic refused (the others appended), as a Rejection."""
    problems = error.errors()
    first = problems[0]
    others = "; ".join(f"{_field_path(e['loc'])}: {_rule(e)}" for e in problems[1:4])
    more = f" and {len(problems) - 4} more" if len(problems) > 4 else ""
    message = _rule(first) + (f" (also {others}{more})" if others else "")
    return Rejection(record_id(raw, id_field), raw.get("reference"), _field_path(first["loc"]), message, noun)


# A source names a record it has no id for (a file's row without one) under this key.
RECORD_LABEL = "record_label"


def record_id(raw: Mapping[str, Any], id_field: str) -> Any:
    """The record's id, or the label its source gave a record without one."""
    value = raw.get(id_field)
    return raw.get(RECORD_LABEL, value) if value is None else value
