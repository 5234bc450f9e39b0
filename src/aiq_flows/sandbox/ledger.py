"""The sandbox's state: entities, master data, tokens and the posted ledger, in one SQLite file.

Amounts are stored as decimal text and summed as `Decimal`. This module also offers the
read-only inspection API (trial balance, documents by external reference) that tests and the
demo use without going through SOAP.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
    company_id TEXT PRIMARY KEY, name TEXT NOT NULL, base_currency TEXT NOT NULL,
    user_key TEXT NOT NULL, settings TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gl_accounts (
    entity TEXT NOT NULL, code TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
    departmental INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (entity, code));
CREATE TABLE IF NOT EXISTS tax_codes (
    entity TEXT NOT NULL, code TEXT NOT NULL, description TEXT NOT NULL, rate TEXT NOT NULL,
    PRIMARY KEY (entity, code));
CREATE TABLE IF NOT EXISTS credit_terms (
    entity TEXT NOT NULL, code TEXT NOT NULL, description TEXT NOT NULL, days INTEGER NOT NULL,
    end_of_month INTEGER NOT NULL, PRIMARY KEY (entity, code));
CREATE TABLE IF NOT EXISTS currencies (
    entity TEXT NOT NULL, code TEXT NOT NULL, rate TEXT NOT NULL, PRIMARY KEY (entity, code));
CREATE TABLE IF NOT EXISTS departments (
    entity TEXT NOT NULL, department_id TEXT NOT NULL, description TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1, a1 TEXT, a2 TEXT, a3 TEXT, a4 TEXT, a5 TEXT, a6 TEXT,
    PRIMARY KEY (entity, department_id));
CREATE TABLE IF NOT EXISTS dimensions (
    entity TEXT NOT NULL, position INTEGER NOT NULL, code TEXT NOT NULL, description TEXT NOT NULL,
    PRIMARY KEY (entity, position));
CREATE TABLE IF NOT EXISTS dimension_codes (
    entity TEXT NOT NULL, position INTEGER NOT NULL, code TEXT NOT NULL, description TEXT NOT NULL,
    PRIMARY KEY (entity, code));
CREATE TABLE IF NOT EXISTS accounts (
    account_id INTEGER PRIMARY KEY AUTOINCREMENT, entity TEXT NOT NULL, ledger TEXT NOT NULL,
    code TEXT NOT NULL, data TEXT NOT NULL, row_version INTEGER NOT NULL DEFAULT 1,
    UNIQUE (entity, ledger, code));
CREATE TABLE IF NOT EXISTS periods (
    period_id INTEGER PRIMARY KEY AUTOINCREMENT, entity TEXT NOT NULL, year INTEGER NOT NULL,
    number INTEGER NOT NULL, start_date TEXT NOT NULL, end_date TEXT NOT NULL,
    sales_open INTEGER NOT NULL, purchases_open INTEGER NOT NULL, general_open INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS intercompany (
    connection_id INTEGER PRIMARY KEY AUTOINCREMENT,
    entity_a TEXT NOT NULL, ledger_a TEXT NOT NULL, code_a TEXT NOT NULL,
    entity_b TEXT NOT NULL, ledger_b TEXT NOT NULL, code_b TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, entity TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS integration_apps (
    client_id TEXT PRIMARY KEY, client_secret TEXT NOT NULL, name TEXT NOT NULL, entities TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS access_tokens (
    token TEXT PRIMARY KEY, kind TEXT NOT NULL, client_id TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
    transaction_id INTEGER PRIMARY KEY AUTOINCREMENT, entity TEXT NOT NULL, type TEXT NOT NULL,
    type_code TEXT NOT NULL, ledger TEXT NOT NULL, is_batch INTEGER NOT NULL,
    account_id INTEGER, account_code TEXT, account_name TEXT, external_reference TEXT,
    description TEXT, transaction_date TEXT NOT NULL, creation_date TEXT NOT NULL,
    due_date TEXT, currency TEXT NOT NULL, exchange_rate TEXT NOT NULL,
    control_amount TEXT NOT NULL, period_id INTEGER NOT NULL, invoice_id INTEGER);
CREATE INDEX IF NOT EXISTS transactions_by_reference ON transactions (entity, external_reference);
CREATE INDEX IF NOT EXISTS transactions_by_date ON transactions (entity, transaction_date);
-- One row per side of an allocation (the two share an allocation_number); amount is what it
-- settles on that side, always positive.
CREATE TABLE IF NOT EXISTS allocations (
    allocation_id INTEGER PRIMARY KEY AUTOINCREMENT, entity TEXT NOT NULL,
    allocation_number INTEGER NOT NULL, transaction_id INTEGER NOT NULL,
    other_transaction_id INTEGER NOT NULL, amount TEXT NOT NULL, reference TEXT,
    allocation_date TEXT NOT NULL, creation_date TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS allocations_by_transaction ON allocations (entity, transaction_id);
CREATE TABLE IF NOT EXISTS transaction_lines (
    line_id INTEGER PRIMARY KEY AUTOINCREMENT, transaction_id INTEGER NOT NULL,
    gl_code TEXT NOT NULL, description TEXT, department_id TEXT, tax_code TEXT,
    amount TEXT NOT NULL, bc_amount TEXT NOT NULL, broad_type TEXT NOT NULL,
    is_control INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS lines_by_transaction ON transaction_lines (transaction_id);
CREATE TABLE IF NOT EXISTS invoices (
    invoice_id INTEGER PRIMARY KEY AUTOINCREMENT, entity TEXT NOT NULL, ledger TEXT NOT NULL,
    type TEXT NOT NULL, status TEXT NOT NULL, row_version INTEGER NOT NULL,
    external_reference TEXT, transaction_id INTEGER, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS invoices_by_reference ON invoices (entity, external_reference);
CREATE TABLE IF NOT EXISTS stock_items (
    entity TEXT NOT NULL, code TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (entity, code));
CREATE TABLE IF NOT EXISTS attachments (
    document_id INTEGER PRIMARY KEY AUTOINCREMENT, entity TEXT NOT NULL, master_type TEXT NOT NULL,
    master_id TEXT NOT NULL, filename TEXT NOT NULL, comments TEXT, content BLOB NOT NULL,
    UNIQUE (entity, master_type, master_id, filename));
"""


@dataclass(frozen=True)
class Period:
    period_id: int
    year: int
    number: int
    start_date: date
    end_date: date
    open: dict[str, bool]


def _json_value(value: Any) -> str:
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


def dump_account(account: dict[str, Any]) -> str:
    """Accounts are kept whole as JSON (dates ISO 8601, decimals as text) to round-trip AIQ's
    69-field shape without a column per field."""
    return json.dumps(account, default=_json_value)


def default_seed() -> dict[str, Any]:
    text = resources.files("aiq_flows.sandbox").joinpath("seed.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


class Ledger:
    """Thread-safe access to one sandbox database (a single connection behind a lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(DDL)
        self.lock = threading.RLock()

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        with self.lock:
            return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, *params: Any) -> sqlite3.Row | None:
        rows = self.query(sql, *params)
        return rows[0] if rows else None

    # --- seeding ---------------------------------------------------------------------------------

    def is_seeded(self) -> bool:
        return self.query_one("SELECT 1 FROM entities LIMIT 1") is not None

    def seed(self, data: dict[str, Any], blank_account: dict[str, Any]) -> None:
        """Load entities from a seed document; keys are generated here, one set per database."""
        first_year, first_month = map(int, data["periods"]["first"].split("-"))
        last_year, last_month = map(int, data["periods"]["last"].split("-"))
        with self.transaction() as db:
            db.execute("INSERT INTO meta VALUES ('partner_key', ?)", (secrets.token_urlsafe(24),))
            for entity in data["entities"]:
                cid = entity["company_id"]
                settings = {
                    "control_accounts": entity["control_accounts"],
                    "account_defaults": {
                        "Sales": entity["customer_defaults"],
                        "Purchases": entity["supplier_defaults"],
                    },
                    # bank GL account -> its currency, for the banks not in the base currency
                    "foreign_bank_accounts": entity.get("foreign_bank_accounts", {}),
                }
                db.execute(
                    "INSERT INTO entities VALUES (?, ?, ?, ?, ?)",
                    (
                        cid,
                        entity["name"],
                        entity["base_currency"],
                        secrets.token_urlsafe(24),
                        json.dumps(settings),
                    ),
                )
                db.executemany(
                    "INSERT INTO gl_accounts VALUES (?, ?, ?, ?, ?)",
                    # [code, name, kind] or [code, name, kind, departmental]
                    [(cid, *row[:3], int(len(row) > 3 and row[3])) for row in entity["gl_accounts"]],
                )
                db.executemany(
                    "INSERT INTO tax_codes VALUES (?, ?, ?, ?)", [(cid, *row) for row in entity["tax_codes"]]
                )
                db.executemany(
                    "INSERT INTO credit_terms VALUES (?, ?, ?, ?, ?)",
                    [(cid, *row) for row in entity["credit_terms"]],
                )
                db.executemany(
                    "INSERT INTO currencies VALUES (?, ?, ?)",
                    [(cid, code, rate) for code, rate in entity["currencies"].items()],
                )
                for position, (code, description, elements) in enumerate(entity.get("dimensions", []), 1):
                    db.execute(
                        "INSERT INTO dimensions VALUES (?, ?, ?, ?)", (cid, position, code, description)
                    )
                    db.executemany(
                        "INSERT INTO dimension_codes VALUES (?, ?, ?, ?)",
                        [(cid, position, *element) for element in elements],
                    )
                for department_id, description, codes, *active in entity.get("departments", []):
                    analysis = (list(codes) + [None] * 6)[:6]
                    db.execute(
                        "INSERT INTO departments (entity, department_id, description, active, "
                        "a1, a2, a3, a4, a5, a6) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (cid, department_id, description, int(active[0] if active else True), *analysis),
                    )
                db.executemany(
                    "INSERT INTO stock_items VALUES (?, ?, ?)",
                    [(cid, item["StockItemID"], json.dumps(item)) for item in entity.get("stock_items", [])],
                )
                closed = entity.get("closed_periods", {})
                year, month = first_year, first_month
                while (year, month) <= (last_year, last_month):
                    key = f"{year:04d}-{month:02d}"
                    start = date(year, month, 1)
                    end = date(year + (month == 12), month % 12 + 1, 1).toordinal() - 1
                    db.execute(
                        "INSERT INTO periods (entity, year, number, start_date, end_date, "
                        "sales_open, purchases_open, general_open) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            cid,
                            year,
                            month,
                            start.isoformat(),
                            date.fromordinal(end).isoformat(),
                            key not in closed.get("Sales", []),
                            key not in closed.get("Purchases", []),
                            key not in closed.get("General", []),
                        ),
                    )
                    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
                for ledger, rows in (("Sales", entity["customers"]), ("Purchases", entity["suppliers"])):
                    for row in rows:
                        account = {
                            **blank_account,
                            **settings["account_defaults"][ledger],
                            **row,
                            "LedgerType": ledger,
                            "IsActive": True,
                            "CreationDate": datetime(2025, 1, 1),
                        }
                        self.insert_account(db, cid, ledger, account)
            for app in data.get("integration_apps", []):
                db.execute(
                    "INSERT INTO integration_apps VALUES (?, ?, ?, ?)",
                    (str(uuid.uuid4()), secrets.token_urlsafe(32), app["name"], json.dumps(app["entities"])),
                )
            for connection in data.get("intercompany", []):
                db.execute(
                    "INSERT INTO intercompany (entity_a, ledger_a, code_a, entity_b, ledger_b, code_b) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (*connection["local"], *connection["remote"]),
                )

    def insert_account(
        self, db: sqlite3.Connection, entity: str, ledger: str, account: dict[str, Any]
    ) -> int:
        cursor = db.execute(
            "INSERT INTO accounts (entity, ledger, code, data) VALUES (?, ?, ?, '{}')",
            (entity, ledger, account["Code"]),
        )
        account_id = int(cursor.lastrowid or 0)
        account.update(AccountID=account_id, RowVersionNumber="1")
        db.execute("UPDATE accounts SET data = ? WHERE account_id = ?", (dump_account(account), account_id))
        return account_id

    # --- credentials and tokens ------------------------------------------------------------------

    def credentials(self) -> dict[str, Any]:
        partner = self.query_one("SELECT value FROM meta WHERE key = 'partner_key'")
        entities = self.query("SELECT company_id, name, base_currency, user_key FROM entities")
        apps = self.query("SELECT * FROM integration_apps ORDER BY name")
        return {
            "partner_key": partner["value"] if partner else None,
            "entities": [dict(row) for row in entities],
            "apps": [{**dict(row), "entities": json.loads(row["entities"])} for row in apps],
        }

    # --- master data -----------------------------------------------------------------------------

    def entity_settings(self, entity: str) -> dict[str, Any]:
        row = self.query_one("SELECT * FROM entities WHERE company_id = ?", entity)
        if row is None:
            raise KeyError(entity)
        return {**json.loads(row["settings"]), "base_currency": row["base_currency"], "name": row["name"]}

    def account(self, entity: str, ledger: str, code: str) -> dict[str, Any] | None:
        row = self.query_one(
            "SELECT data FROM accounts WHERE entity = ? AND ledger = ? AND code = ?", entity, ledger, code
        )
        return json.loads(row["data"]) if row else None

    def accounts(self, entity: str, ledger: str) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT data FROM accounts WHERE entity = ? AND ledger = ? ORDER BY account_id", entity, ledger
        )
        return [json.loads(row["data"]) for row in rows]

    def gl_account(self, entity: str, code: str) -> sqlite3.Row | None:
        return self.query_one("SELECT * FROM gl_accounts WHERE entity = ? AND code = ?", entity, code)

    def period_for(self, entity: str, day: date) -> Period | None:
        row = self.query_one(
            "SELECT * FROM periods WHERE entity = ? AND start_date <= ? AND end_date >= ?",
            entity,
            day.isoformat(),
            day.isoformat(),
        )
        if row is None:
            return None
        return Period(
            row["period_id"],
            row["year"],
            row["number"],
            date.fromisoformat(row["start_date"]),
            date.fromisoformat(row["end_date"]),
            {
                "Sales": bool(row["sales_open"]),
                "Purchases": bool(row["purchases_open"]),
                "General": bool(row["general_open"]),
            },
        )

    # --- inspection (no SOAP) --------------------------------------------------------------------

    def trial_balance(self, entity: str) -> dict[str, Decimal]:
        rows = self.query(
            "SELECT l.gl_code, l.bc_amount FROM transaction_lines l JOIN transactions t "
            "ON t.transaction_id = l.transaction_id WHERE t.entity = ?",
            entity,
        )
        balances: dict[str, Decimal] = {}
        for row in rows:
            balances[row["gl_code"]] = balances.get(row["gl_code"], Decimal(0)) + Decimal(row["bc_amount"])
        return balances

    def documents(self, entity: str, external_reference: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM transactions WHERE entity = ?"
        params: list[Any] = [entity]
        if external_reference is not None:
            sql += " AND external_reference = ?"
            params.append(external_reference)
        return [dict(row) for row in self.query(sql + " ORDER BY transaction_id", *params)]

    def documents_dated(
        self, entity: str, start: datetime | None, end: datetime | None, type_codes: set[str]
    ) -> list[dict[str, Any]]:
        """Transactions dated in [start, end] (a bound of year 1 or None is open), of these types."""
        sql, params = "SELECT * FROM transactions WHERE entity = ?", [entity]
        if start is not None and start.year > 1:
            sql += " AND transaction_date >= ?"
            params.append(start.replace(tzinfo=None).isoformat())
        if end is not None and end.year > 1:
            sql += " AND transaction_date <= ?"
            params.append(end.replace(tzinfo=None).isoformat())
        if type_codes:
            sql += f" AND type_code IN ({', '.join('?' * len(type_codes))})"
            params += sorted(type_codes)
        return [dict(row) for row in self.query(sql + " ORDER BY transaction_id", *params)]

    def lines(self, transaction_id: int) -> list[dict[str, Any]]:
        return [
            dict(row)
            for row in self.query(
                "SELECT * FROM transaction_lines WHERE transaction_id = ? ORDER BY line_id", transaction_id
            )
        ]
