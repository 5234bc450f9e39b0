"""CRMs that are not the demo's: their own tables, keys, filters and habits, each with the mapping
a user would write for it (`aiq_flows.sources.mapping`). Each is created on SQLite or PostgreSQL.

- ``DEALS``: string ids (Salesforce-like, 18 characters), closed-won deals only (``where``), lines
  as quantity x unit price with no VAT kept (AIQ's rate applies), a constant GL account, a
  customer code derived from the company's name, its own write-back columns, and a trigger that
  stamps ``modified`` on every update, the write-back's included.
- ``ORDERS``: integer ids read through a view that leaves out cancelled orders, dates kept as text
  (``DD/MM/YYYY``), amounts as text (``1200.00``; one ``TBC``), lines through a ``query:``, a constant
  currency, the CRM's own customer codes, its own reference prefix, and no write-back at all (a
  read-only source: the store keeps each sale's state).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, create_engine, text

DEALS_MAPPING = """
version: 1
reference_prefix: "D-"
sales:
  from: deals
  where: "stage = 'won'"
  id: deal_id
  changed_at: modified
  columns:
    reference: deal_name
    customer: company_id
    date: close_date
    currency: currency_code
    description: deal_name
lines:
  from: deal_lines
  sale: deal_id
  order_by: line_no
  columns:
    description: product
    quantity: qty
    unit_price: price
    tax_code: vat_code
    gl_code: {value: "4000"}
customers:
  from: companies
  id: company_id
  code_from: legal_name
  columns:
    name: legal_name
    email: billing_email
    city: town
write_back:
  table: deals
  key: deal_id
  columns: {transaction_id: aiq_txn, status: aiq_status, message: aiq_note, synced_at: aiq_synced}
"""

ORDERS_MAPPING = """
version: 1
reference_prefix: "ORD-"
sales:
  from: v_orders
  id: order_no
  changed_at: last_change
  columns:
    reference: title
    customer: client_id
    date: ordered_on
    currency: {value: GBP}
    description: title
lines:
  query: "SELECT order_no, seq, descr, net, vat, nominal FROM order_items"
  sale: order_no
  order_by: seq
  columns: {description: descr, net_amount: net, tax_amount: vat, tax_code: {value: T1}, gl_code: nominal}
customers:
  from: clients
  id: id
  columns: {code: acct_code, name: name, email: email}
"""


def company_id(n: int) -> str:
    return f"0015g00000Co{n:04d}AA"


def deal_id(n: int) -> str:
    return f"0065g00000De{n:04d}QA"


@dataclass(frozen=True)
class CrmShape:
    name: str
    mapping: str
    prefix: str
    create: Callable[[Engine], None]
    valid: list[Any]  # the ids of the sales that must reach AIQ, once each
    quarantined: dict[Any, str]  # id -> the field its quarantine names
    filtered: list[Any]  # ids the mapping's filter leaves out: never read, never posted
    read_only: bool
    change_one: Callable[[Engine, Any], None]  # edit a posted sale's content (not only its time)
    written_back: Callable[[Engine], dict[Any, tuple[str | None, int | None]]] = field(
        default=lambda engine: {}
    )
    stamps: Callable[[Engine], dict[Any, Any]] = field(default=lambda engine: {})


def _noon_yesterday() -> datetime:
    return (datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)).replace(
        hour=12, minute=0, second=0, microsecond=0
    )


# --- deals --------------------------------------------------------------------------------------


def _create_deals(engine: Engine) -> None:
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as db:
        db.execute(
            text(
                "CREATE TABLE companies (company_id VARCHAR(18) PRIMARY KEY, legal_name VARCHAR(80), "
                "billing_email VARCHAR(80), town VARCHAR(40))"
            )
        )
        db.execute(
            text(
                "CREATE TABLE deals (deal_id VARCHAR(18) PRIMARY KEY, deal_name VARCHAR(80), "
                "company_id VARCHAR(18), stage VARCHAR(20), close_date DATE, currency_code VARCHAR(3), "
                "modified TIMESTAMP NOT NULL, aiq_txn INTEGER, aiq_status VARCHAR(20), "
                "aiq_note VARCHAR(2000), aiq_synced TIMESTAMP)"
            )
        )
        db.execute(
            text(
                "CREATE TABLE deal_lines (deal_id VARCHAR(18), line_no INTEGER, product VARCHAR(80), "
                "qty NUMERIC(12, 2), price NUMERIC(12, 2), vat_code VARCHAR(5))"
            )
        )
        if postgres:  # stamps every update, as most CRMs do
            db.execute(
                text(
                    "CREATE FUNCTION stamp_modified() RETURNS trigger AS $$ BEGIN "
                    "NEW.modified := clock_timestamp() AT TIME ZONE 'UTC'; RETURN NEW; END $$ "
                    "LANGUAGE plpgsql"
                )
            )
            db.execute(
                text(
                    "CREATE TRIGGER deals_stamp BEFORE UPDATE ON deals FOR EACH ROW "
                    "EXECUTE FUNCTION stamp_modified()"
                )
            )
        else:
            db.execute(
                text(
                    "CREATE TRIGGER deals_stamp AFTER UPDATE ON deals FOR EACH ROW BEGIN "
                    "UPDATE deals SET modified = strftime('%Y-%m-%d %H:%M:%f', 'now') "
                    "WHERE deal_id = NEW.deal_id; END"
                )
            )
        db.execute(
            text("INSERT INTO companies VALUES (:id, :name, :email, 'Leeds')"),
            [
                {"id": company_id(n), "name": name, "email": f"ap@{n}.example"}
                for n, name in ((1, "Northwind Traders"), (2, "Fabrikam Ltd"), (3, "Contoso Group"))
            ],
        )
        noon = _noon_yesterday()
        deals = []
        for n in range(1, 13):
            stage = "lost" if n in (4, 9) else "won"
            close = None if n == 7 else datetime(2026, 11, n + 2).date()  # 7: no close date yet
            deals.append(
                {
                    "id": deal_id(n),
                    "name": f"Renewal {n}",
                    "company": company_id(n % 3 + 1),
                    "stage": stage,
                    "close": close,
                    "modified": noon + timedelta(minutes=n),
                }
            )
        db.execute(
            text(
                "INSERT INTO deals (deal_id, deal_name, company_id, stage, close_date, currency_code, "
                "modified) VALUES (:id, :name, :company, :stage, :close, 'GBP', :modified)"
            ),
            deals,
        )
        db.execute(
            text("INSERT INTO deal_lines VALUES (:deal, :no, :product, :qty, :price, :vat)"),
            [
                {
                    "deal": deal_id(n),
                    "no": line,
                    "product": f"Seat licence {line}",
                    "qty": str(line + 1),  # SQLite keeps these as numbers: 149.99 a float
                    "price": "149.99",
                    "vat": "ZZ" if n == 11 else "T1",  # 11: a tax code AIQ does not have
                }
                for n in range(1, 13)
                for line in (1, 2)
            ],
        )


def _deals_written_back(engine: Engine) -> dict[Any, tuple[str | None, int | None]]:
    with engine.connect() as db:
        rows = db.execute(text("SELECT deal_id, aiq_status, aiq_txn FROM deals"))
        return {row.deal_id: (row.aiq_status, row.aiq_txn) for row in rows}


def _deals_stamps(engine: Engine) -> dict[Any, Any]:
    with engine.connect() as db:
        return {row.deal_id: row.modified for row in db.execute(text("SELECT deal_id, modified FROM deals"))}


def _change_deal(engine: Engine, sale_id: Any) -> None:
    with engine.begin() as db:  # the line's price changes; the trigger stamps the deal
        db.execute(text("UPDATE deal_lines SET price = 199.99 WHERE deal_id = :id"), {"id": sale_id})
        db.execute(text("UPDATE deals SET deal_name = deal_name WHERE deal_id = :id"), {"id": sale_id})


DEALS = CrmShape(
    name="deals",
    mapping=DEALS_MAPPING,
    prefix="D-",
    create=_create_deals,
    valid=[deal_id(n) for n in (1, 2, 3, 5, 6, 8, 10, 12)],
    quarantined={deal_id(7): "sale_date", deal_id(11): "lines[1].tax_code"},
    filtered=[deal_id(4), deal_id(9)],
    read_only=False,
    change_one=_change_deal,
    written_back=_deals_written_back,
    stamps=_deals_stamps,
)


# --- orders -------------------------------------------------------------------------------------


def _create_orders(engine: Engine) -> None:
    with engine.begin() as db:
        db.execute(
            text(
                "CREATE TABLE clients (id INTEGER PRIMARY KEY, acct_code VARCHAR(10), name VARCHAR(80), "
                "email VARCHAR(80))"
            )
        )
        db.execute(
            text(
                "CREATE TABLE orders (order_no INTEGER PRIMARY KEY, client_id INTEGER, "
                "ordered_on VARCHAR(20), cancelled INTEGER NOT NULL, last_change TIMESTAMP)"
            )
        )
        db.execute(
            text(
                "CREATE TABLE order_items (order_no INTEGER, seq INTEGER, descr VARCHAR(200), "
                "net VARCHAR(20), vat VARCHAR(20), nominal VARCHAR(10))"
            )
        )
        db.execute(
            text(
                "CREATE VIEW v_orders AS SELECT order_no, client_id, ordered_on, "
                "'Order ' || CAST(order_no AS VARCHAR(12)) AS title, last_change "
                "FROM orders WHERE cancelled = 0"
            )
        )
        db.execute(
            text("INSERT INTO clients VALUES (:id, :code, :name, :email)"),
            [
                {"id": 1, "code": "ACME01", "name": "Acme Industries plc", "email": "ap@acme.example"},
                {"id": 2, "code": "WAYNE02", "name": "Wayne Enterprises", "email": "ap@wayne.example"},
            ],
        )
        noon = _noon_yesterday()
        db.execute(
            text("INSERT INTO orders VALUES (:no, :client, :on, :cancelled, :changed)"),
            [
                {
                    "no": 5000 + n,
                    "client": n % 2 + 1,
                    "on": "31/02/2026" if n == 6 else f"{n + 3:02d}/11/2026",  # 6: no such day
                    "cancelled": 1 if n == 3 else 0,
                    "changed": noon + timedelta(minutes=n),
                }
                for n in range(1, 11)
            ],
        )
        db.execute(
            text("INSERT INTO order_items VALUES (:no, :seq, :descr, :net, :vat, '4100')"),
            [
                {
                    "no": 5000 + n,
                    "seq": seq,
                    "descr": f"Widgets, box {seq}",
                    "net": "TBC" if n == 8 and seq == 2 else f"{1000 + 100 * n}.00",  # 8: price to come
                    "vat": f"{(1000 + 100 * n) * Decimal('0.2'):.2f}",
                }
                for n in range(1, 11)
                for seq in (1, 2)
            ],
        )


def _change_order(engine: Engine, sale_id: Any) -> None:
    with engine.begin() as db:
        db.execute(
            text("UPDATE order_items SET net = '1999.00', vat = '399.80' WHERE order_no = :no"),
            {"no": sale_id},
        )
        db.execute(
            text("UPDATE orders SET last_change = :now WHERE order_no = :no"),
            {"no": sale_id, "now": datetime.now(UTC).replace(tzinfo=None)},
        )


ORDERS = CrmShape(
    name="orders",
    mapping=ORDERS_MAPPING,
    prefix="ORD-",
    create=_create_orders,
    valid=[5000 + n for n in (1, 2, 4, 5, 7, 9, 10)],
    quarantined={5006: "sale_date", 5008: "lines[2].net_amount"},
    filtered=[5003],
    read_only=True,
    change_one=_change_order,
)


def engine_for(url: str) -> Engine:
    return create_engine(url)
