"""Dirty CRM rows, as real exports carry them, planted in the demo CRM (SQLite, whose columns
hold any value): text in date columns, "£12.00" in amounts, control characters pasted into
names, impossible service periods, two customers whose keys normalise to one AIQ code.

Each kind says what the sync must make of it: quarantined naming a field, held, or posted (a
value that is only written differently, such as 31/12/2026). The demo shows them in its report;
the tests check every one end to end.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text

from aiq_flows.sources.crm_sql import SqlCrm

Row = dict[str, Any]


@dataclass(frozen=True)
class DirtyKind:
    name: str
    spoil: Callable[[Row, list[Row], Row], None]  # (sale, its lines, its own customer) changed in place
    outcome: str  # what the sync makes of it: quarantined, held or created
    field: str | None = None  # the field the message names
    says: str = ""  # words the message contains


def _set(target: str, **values: Any) -> Callable[[Row, list[Row], Row], None]:
    def spoil(sale: Row, lines: list[Row], customer: Row) -> None:
        {"sale": sale, "line": lines[0], "customer": customer}[target].update(values)

    return spoil


def _no_service_start(sale: Row, _lines: list[Row], _customer: Row) -> None:
    sale.update(service_start=None, service_months=12)


def _huge(sale: Row, lines: list[Row], _customer: Row) -> None:
    lines[0].update(net_amount="999999999999999.99", tax_amount="199999999999999.99")


def _service_past_periods(sale: Row, _lines: list[Row], _customer: Row) -> None:
    sale.update(service_start="2027-07-01", service_months=12)  # the sandbox's periods end 2027-12


KINDS: tuple[DirtyKind, ...] = (
    DirtyKind("date_day_first", _set("sale", sale_date="20/11/2026"), "created"),
    DirtyKind("date_timestamp", _set("sale", sale_date="2026-11-20 00:00:00"), "created"),
    DirtyKind(
        "date_word",
        _set("sale", sale_date="yesterday"),
        "quarantined",
        "sale_date",
        "'yesterday' is not a date",
    ),
    DirtyKind("date_missing", _set("sale", sale_date=None), "quarantined", "sale_date", "is missing"),
    DirtyKind(
        "date_impossible", _set("sale", sale_date="2026-02-30"), "quarantined", "sale_date", "is not a date"
    ),
    DirtyKind(
        "amount_nan_text",
        _set("line", net_amount="NaN"),
        "quarantined",
        "lines[1].net_amount",
        "not a finite number",
    ),
    DirtyKind(
        "amount_thousands",
        _set("line", net_amount="1,234.56"),
        "quarantined",
        "lines[1].net_amount",
        "no thousands separator",
    ),
    DirtyKind(
        "amount_currency_sign",
        _set("line", net_amount="£12.00"),
        "quarantined",
        "lines[1].net_amount",
        "'£12.00' is not a number",
    ),
    DirtyKind(
        "amount_empty_text", _set("line", net_amount=""), "quarantined", "lines[1].net_amount", "is missing"
    ),
    DirtyKind(
        "amount_null", _set("line", tax_amount=None), "quarantined", "lines[1].tax_amount", "is missing"
    ),
    DirtyKind(
        "amount_infinite",
        _set("line", net_amount=math.inf),
        "quarantined",
        "lines[1].net_amount",
        "not a finite",
    ),
    DirtyKind("amount_huge", _huge, "quarantined", "lines[1].net_amount", "is not below 1,000,000,000,000"),
    DirtyKind(
        "amount_sub_penny",
        _set("line", net_amount=99.99999),
        "quarantined",
        "lines[1].net_amount",
        "99.99999 has more",
    ),
    DirtyKind(
        "amount_five_places",
        _set("line", net_amount="0.12345", tax_amount="0.02"),
        "quarantined",
        "lines[1].net_amount",
        "0.12345 has more decimals",
    ),
    DirtyKind(
        "months_negative",
        _set("sale", service_start="2026-11-01", service_months=-1),
        "quarantined",
        "service_months",
        "-1 is not a number of months",
    ),
    DirtyKind(
        "months_absurd",
        _set("sale", service_start="2026-11-01", service_months=100_000),
        "quarantined",
        "service_months",
        "100000 is not a number of months",
    ),
    DirtyKind(
        "months_without_start", _no_service_start, "quarantined", "service_start", "service_months is given"
    ),
    DirtyKind("service_past_periods", _service_past_periods, "held", None, "beyond AccountsIQ's last period"),
    DirtyKind(
        "control_in_customer_name",
        _set("customer", name="Bell\x07 Foundry"),
        "quarantined",
        "customer.name",
        "U+0007",
    ),
    DirtyKind(
        "control_in_line",
        _set("line", description="Kit\x0bbox"),
        "quarantined",
        "lines[1].description",
        "U+000B",
    ),
    DirtyKind(
        "control_in_description",
        _set("sale", description="Page\x0cbreak"),
        "quarantined",
        "description",
        "U+000C",
    ),
    DirtyKind("tab_and_accents", _set("sale", description="Café\torder – Zürich ✓"), "created"),
    DirtyKind("currency_lower", _set("sale", currency=" gbp "), "created"),
    DirtyKind(
        "currency_word", _set("sale", currency="Pounds"), "quarantined", "currency", "three-letter currency"
    ),
    DirtyKind(
        "kind_unknown", _set("sale", invoice_kind="proforma"), "quarantined", "invoice_kind", "'proforma'"
    ),
    DirtyKind(
        "credited_word", _set("sale", credited_at="yes"), "quarantined", "credited_at", "not a date or time"
    ),
    DirtyKind(
        "updated_word", _set("sale", updated_at="whenever"), "quarantined", "updated_at", "not a date or time"
    ),
    DirtyKind(
        "reference_too_long",
        _set("sale", reference="R" * 60),
        "quarantined",
        "reference",
        "60 characters long",
    ),
    DirtyKind(
        "customer_missing", _set("sale", customer_id=991), "quarantined", "customer", "991 does not exist"
    ),
)
COLLIDING_KEYS = ("Zeta Traders", "ZETA-TRADERS")  # both AIQ code ZETA-TRADERS: never merged


@dataclass(frozen=True)
class Planted:
    kinds: dict[int, DirtyKind]  # sale id -> the kind planted there
    colliding: dict[int, str]  # sale id -> the colliding customer key it belongs to


def insert_rows(connection: Any, table: str, rows: list[Row]) -> None:
    """Rows as they are, through plain SQL: no column type gets to convert or refuse a value."""
    if rows:
        columns = list(rows[0])
        connection.execute(
            text(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
            ),
            rows,
        )


def plant_dirty_rows(crm: SqlCrm, *, start_id: int, per_kind: int = 1, today: date) -> Planted:
    """`per_kind` sales of every kind from `start_id` on (and two sales per colliding key), each
    on a customer of its own, dated in the days before `today`. SQLite only: the point is the
    values a typed database would refuse to store."""
    crm.create_schema()
    stamp = (datetime.combine(today, datetime.min.time()) + timedelta(hours=5)).isoformat(" ")
    sales: list[Row] = []
    lines: list[Row] = []
    customers: list[Row] = []
    planted: dict[int, DirtyKind] = {}
    colliding: dict[int, str] = {}
    sale_id = start_id
    plan = [kind for kind in KINDS for _ in range(per_kind)] + [None] * (2 * len(COLLIDING_KEYS))
    for number, kind in enumerate(plan):
        customer_id = 100_000 + sale_id
        key = (
            COLLIDING_KEYS[(number - len(plan)) % len(COLLIDING_KEYS)] if kind is None else f"dirty-{sale_id}"
        )
        customer = {
            "id": customer_id,
            "account_key": key,
            "name": f"{key.title()} Ltd",
            "email": None,
            "updated_at": stamp,
        }
        sale = {
            "id": sale_id,
            "reference": f"DIRTY-{sale_id}",
            "customer_id": customer_id,
            "sale_date": (today - timedelta(days=3)).isoformat(),
            "currency": "GBP",
            "description": f"Order DIRTY-{sale_id}",
            "updated_at": stamp,
            "service_start": None,
            "service_end": None,
            "service_months": None,
            "credited_at": None,
            "invoice_kind": None,
        }
        line = {
            "sale_id": sale_id,
            "line_no": 1,
            "description": "Consulting day",
            "gl_account_code": "4010",
            "tax_code": "T1",
            "net_amount": "650.00",
            "tax_amount": "130.00",
            "department_id": None,
        }
        if kind is None:
            colliding[sale_id] = key
        else:
            kind.spoil(sale, [line], customer)
            planted[sale_id] = kind
        sales.append(sale)
        lines.append(line)
        customers.append(customer)
        sale_id += 1
    with crm.engine.begin() as connection:
        insert_rows(connection, "crm_customers", customers)
        insert_rows(connection, "crm_sales", sales)
        insert_rows(connection, "crm_sale_lines", lines)
    return Planted(planted, colliding)
