"""SOQL literals, written as Salesforce reads them: a value never reaches a query unescaped."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def literal(value: Any) -> str:
    """A quoted, escaped string; a bare date (YYYY-MM-DD) or dateTime in UTC to the second
    (YYYY-MM-DDThh:mm:ssZ; a naive one is taken as UTC, and its fraction dropped, so that a bound
    it makes is never later than the moment it names); a number; true/false; null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | Decimal):
        return str(value)
    text = str(value)
    if any(ord(char) < 32 and char not in _ESCAPES for char in text):
        raise ValueError(f"a control character in {text!r} cannot be written in SOQL")
    return "'" + "".join(_ESCAPES.get(char, char) for char in text) + "'"


def in_list(field: str, values: Iterable[Any]) -> str:
    return f"{field} IN ({', '.join(literal(value) for value in values)})"
