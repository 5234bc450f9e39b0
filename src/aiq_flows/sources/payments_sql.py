"""Payments from any SQL database, read through the mapping's ``payments`` section (a table, a
view or a SELECT, the user's own column names, constants where there is no column), and their
outcome written back to the mapping's payment write-back columns, if any.

Values are read raw, as for sales (`mapped_sql`): the domain parses each per record
(`aiq_flows.domain.payments.validate_payment`), so one bad value refuses one payment, never the read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import MetaData, Table, bindparam, or_, select, type_coerce, update
from sqlalchemy.exc import NoSuchTableError
from sqlalchemy.types import NullType

from aiq_flows.db import make_engine
from aiq_flows.domain.payments import InvoiceStatus
from aiq_flows.sources.fields import mapped
from aiq_flows.sources.mapped_sql import column_key, mapped_columns, raw_column, relation_of, row_reader
from aiq_flows.sources.mapping import Mapping, MappingError

PAYMENT_FIELDS = ("customer", "date", "amount", "currency", "bank_account", "invoices", "kind", "refund_of")
RECORD_FIELDS = {"date": "paid_on"}  # mapping key -> the domain's name, where they differ


@dataclass(frozen=True)
class PaymentState:
    payment_id: Any
    receipt_id: int | None
    status: str
    message: str | None


class PaymentsSql:
    def __init__(self, url: str, mapping: Mapping) -> None:
        if mapping.payments is None:
            raise MappingError("mapping: payments: is required to read payments (receipts-sync)")
        self.section = mapping.payments
        self.engine = make_engine(url)

    def dispose(self) -> None:
        self.engine.dispose()

    def _table(self, qualified: str, key: str) -> Table:
        schema, _, name = qualified.rpartition(".")
        try:
            return Table(name, MetaData(), schema=schema or None, autoload_with=self.engine)
        except NoSuchTableError:
            raise MappingError(f"mapping: {key}: no table {qualified!r}") from None

    @property
    def read_only(self) -> bool:
        return self.section.write_back is None

    @property
    def writes_invoice_status(self) -> bool:
        return self.section.invoice_status is not None

    def write_invoice_status(self, rows: Sequence[tuple[str, InvoiceStatus]]) -> int:
        """Each sale's invoice status (by sale id) in the mapping's ``invoice_status`` columns."""
        target = self.section.invoice_status
        if target is None or not rows:
            return 0
        table = self._table(target.table, "payments.invoice_status.table")
        names = target.columns
        key = type_coerce(table.c[column_key(table, target.key)], NullType())
        values: dict[str, Any] = {column_key(table, names.outstanding): bindparam("new_outstanding")}
        if names.paid_at:
            values[column_key(table, names.paid_at)] = bindparam("new_paid_at")
        if names.days_overdue:
            values[column_key(table, names.days_overdue)] = bindparam("new_overdue")
        statement = update(table).where(key == bindparam("new_id")).values(**values)
        parameters = [
            {
                "new_id": int(sale_id) if sale_id.isdigit() else sale_id,
                "new_outstanding": str(status.outstanding),  # exact text: every database takes it
                "new_paid_at": status.paid_at,
                "new_overdue": status.days_overdue,
            }
            for sale_id, status in rows
        ]
        with self.engine.begin() as connection:
            return connection.execute(statement, parameters).rowcount or 0

    def payments(self) -> list[dict[str, Any]]:
        """Every payment, raw, in id order (the store and AIQ say which are done)."""
        relation = relation_of(self.engine, "payments", self.section)
        columns = [raw_column(relation.column(self.section.id, "payments.id"), "payment_id")]
        for key in PAYMENT_FIELDS:
            columns += mapped_columns(
                relation, f"payments.columns.{key}", getattr(self.section.columns, key), key
            )
        write_back = self.section.write_back
        if (
            write_back is not None
            and write_back.table == self.section.from_
            and write_back.key == self.section.id
        ):
            # the write-back columns live on the payments' own rows: read what was written there
            columns.append(
                raw_column(relation.column(write_back.columns.status, "payments.write_back"), "aiq_status")
            )
        query = select(*columns).order_by(relation.column(self.section.id, "payments.id"))
        with self.engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        records = []
        for row in rows:
            read = row_reader(row)
            record = {"payment_id": row["payment_id"], "aiq_status": row.get("aiq_status")}
            for key in PAYMENT_FIELDS:
                record[RECORD_FIELDS.get(key, key)] = mapped(self.section.columns, key, read)
            records.append(record)
        return records

    def write_back(self, states: Sequence[PaymentState]) -> int:
        """Each payment's receipt, status and message, where the mapping keeps them; a row that
        already says the same is left alone."""
        write_back = self.section.write_back
        if write_back is None or not states:
            return 0
        table = self._table(write_back.table, "payments.write_back.table")
        names = write_back.columns
        key = type_coerce(table.c[column_key(table, write_back.key)], NullType())
        receipt, status = (
            table.c[column_key(table, names.receipt_id)],
            table.c[column_key(table, names.status)],
        )
        values: dict[str, Any] = {receipt.key: bindparam("new_receipt"), status.key: bindparam("new_status")}
        differs = [
            receipt.is_distinct_from(bindparam("new_receipt")),
            status.is_distinct_from(bindparam("new_status")),
        ]
        if names.message:
            message = table.c[column_key(table, names.message)]
            values[message.key] = bindparam("new_message")
            differs.append(message.is_distinct_from(bindparam("new_message")))
        statement = update(table).where(key == bindparam("new_id"), or_(*differs)).values(**values)
        rows = [
            {
                "new_id": s.payment_id,
                "new_receipt": s.receipt_id,
                "new_status": s.status,
                "new_message": s.message,
            }
            for s in states
        ]
        with self.engine.begin() as connection:
            return connection.execute(statement, rows).rowcount or 0
