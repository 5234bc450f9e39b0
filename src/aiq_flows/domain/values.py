"""Raw values from a CRM, an export or any other source, parsed one at a time.

A source hands over whatever its column held: text in a date column, "£12.00" in an amount, a
float a spreadsheet made of 99.99999, a control character pasted from a word processor. Each
parser here takes any value and returns the typed value (None for an empty one), or raises
`ValueRefused` with a message a finance user can act on; nothing else ever escapes, so one bad
value refuses its record and never the run.

Amounts are read exactly: text and floats become the `Decimal` they spell (no rounding on the
way in), so a rule about decimals sees what the CRM holds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any


class ValueRefused(ValueError):
    """A value that cannot be read as what its field needs; the message names the value and the
    rule, the caller adds the record and the field."""


_SHOWN = 40  # characters of a refused value quoted in a message


def shown(value: Any) -> str:
    """A value as a message quotes it: text in quotes with control characters escaped, a number
    or a date as written, cut to a readable length."""
    if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, date):
        text = value.isoformat()
    else:
        text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[: _SHOWN - 1]}…"


# --- text -------------------------------------------------------------------------------------------

# XML 1.0 can carry tab, line feed, carriage return and everything from U+0020 except the
# surrogates and U+FFFE/U+FFFF; AccountsIQ's SOAP API is XML, so nothing else can reach it.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_problem(text: str) -> str | None:
    """Why `text` cannot travel in XML (the first character that cannot, and where), or None."""
    found = _NOT_XML.search(text)
    if found is None:
        return None
    code = ord(found.group())
    kind = "a control character" if code < 0x20 or code == 0x7F else "a character XML cannot carry"
    return (
        f"character U+{code:04X} ({kind}) at position {found.start() + 1} cannot be sent to AccountsIQ: "
        "remove it at the source"
    )


def text_value(value: Any) -> str | None:
    """Text, stripped; None when empty. Numbers and dates become their usual spelling."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueRefused(f"{value!r} is a yes/no value, not text")
    if isinstance(value, bytes | bytearray | memoryview):
        raise ValueRefused("binary data is not text")
    if isinstance(value, float):
        if not math.isfinite(value):
            return None if math.isnan(value) else str(value)
        value = int(value) if value.is_integer() else repr(value)
    elif isinstance(value, datetime | date):
        value = value.isoformat()
    text = str(value).strip()
    return text or None


# --- amounts ------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_NOT_FINITE = re.compile(r"[+-]?(inf(inity)?|s?nan)", re.IGNORECASE)
# Far beyond any amount, but small enough that Decimal arithmetic on it cannot overflow.
_MAGNITUDE = 30


def _plain_number_hint(text: str) -> str:
    if re.search(r"\d,\d", text):
        return " (no thousands separator)"
    if re.search(r"[^\d\s.,+-]", text):
        return " (no currency sign or other text)"
    return ""


def decimal_value(value: Any) -> Decimal | None:
    """An exact Decimal; None when empty. Floats become the decimal they print as (99.99999,
    not its binary neighbour); text must be a plain number such as -1234.56."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueRefused(f"{value!r} is a yes/no value, not a number")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if math.isnan(value):
            return None  # how pandas and SQL drivers spell an empty cell
        if math.isinf(value):
            raise ValueRefused(f"{shown(value)} is not a finite number")
        number = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _NOT_FINITE.fullmatch(text):
            raise ValueRefused(f"{shown(value)} is not a finite number")
        if not _NUMBER.fullmatch(text):
            raise ValueRefused(
                f"{shown(value)} is not a number: write amounts as plain numbers such as 1234.56"
                + _plain_number_hint(text)
            )
        number = Decimal(text)
    else:
        raise ValueRefused(f"{shown(value)} is not a number")
    if not number.is_finite():
        raise ValueRefused(f"{shown(value)} is not a finite number")
    if number and not -_MAGNITUDE <= number.adjusted() <= _MAGNITUDE:
        raise ValueRefused(f"{shown(value)} is out of any sensible range for an amount")
    return number


def whole_number(value: Any) -> int | None:
    """A whole number (12, "12", 12.0); None when empty."""
    try:
        number = decimal_value(value)
    except ValueRefused:
        raise ValueRefused(f"{shown(value)} is not a whole number") from None
    if number is None:
        return None
    if number != number.to_integral_value():
        raise ValueRefused(f"{shown(value)} is not a whole number")
    return int(number)


# --- dates and times ----------------------------------------------------------------------------------

_SLASHED = re.compile(
    r"(?P<a>\d{1,2})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)(?P<year>\d{4})"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
)
_YEAR_FIRST = re.compile(r"(?P<year>\d{4})/(?P<month>\d{1,2})/(?P<day>\d{1,2})")
_DATE_FORMS = "YYYY-MM-DD, DD/MM/YYYY or a timestamp"


def _naive_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def _from_text(text: str, day_first: bool) -> datetime:
    try:
        return datetime.fromisoformat(text)  # 2026-12-31, 2026-12-31 00:00:00, ...T09:30:00Z
    except ValueError:
        pass
    if match := _YEAR_FIRST.fullmatch(text):
        return datetime(int(match["year"]), int(match["month"]), int(match["day"]))
    if match := _SLASHED.fullmatch(text):
        first, second = int(match["a"]), int(match["b"])
        day, month = (first, second) if day_first else (second, first)
        parsed = datetime(int(match["year"]), month, day)
        clock = text[match.end("year") :].strip().lstrip("T")
        if clock:
            parsed = datetime.combine(parsed.date(), datetime.fromisoformat(f"2000-01-01T{clock}").time())
        return parsed
    raise ValueError(text)


def datetime_value(value: Any, *, day_first: bool = True) -> datetime | None:
    """A moment, naive in UTC when the source gave a zone; a date is its midnight. None when empty.
    `day_first`: how 01/02/2026 reads (1 February in the UK and Ireland, the default)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _naive_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, float) and math.isnan(value):
        return None
    if not isinstance(value, str):
        raise ValueRefused(f"{shown(value)} is not a date or time (expected {_DATE_FORMS})")
    text = value.strip()
    if not text:
        return None
    try:
        return _naive_utc(_from_text(text, day_first))
    except (ValueError, OverflowError):
        raise ValueRefused(f"{shown(value)} is not a date or time (expected {_DATE_FORMS})") from None


def date_value(value: Any, *, day_first: bool = True) -> date | None:
    """A calendar date; a timestamp in a date column gives the day it names in its own zone
    (2026-11-20T23:30-05:00 is the 20th). None when empty."""
    if is_empty(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return _from_text(value.strip(), day_first).date()
        except (ValueError, OverflowError):
            pass
    raise ValueRefused(f"{shown(value)} is not a date (expected {_DATE_FORMS})")


def date_span(values: Iterable[Any], *, day_first: bool = True) -> tuple[date, date] | None:
    """The first and last of the values that read as dates; None when none does (a value that
    cannot be read refuses its own record elsewhere, and has no place in a span)."""
    days = []
    for value in values:
        try:
            day = date_value(value, day_first=day_first)
        except ValueRefused:
            continue
        if day is not None:
            days.append(day)
    return (min(days), max(days)) if days else None


def is_empty(value: Any) -> bool:
    """Whether a source value stands for nothing (NULL, NaN, blank text)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()
