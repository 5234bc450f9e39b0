"""A CRM held in a SQL database (SQLite by default, PostgreSQL in production), via SQLAlchemy.

Reads sales that changed since a watermark, or that were never synced, or that a run left pending,
as plain records for the domain to validate; writes back the AIQ transaction ID, status, message
and sync time. Write-back never downgrades a sale already recorded as posted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    ForeignKey,
    Row,
    Select,
    String,
    and_,
    bindparam,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.types import NullType

from aiq_flows.db import ExactDecimal, make_engine
from aiq_flows.domain.outcomes import CrmStatus, SaleOutcome
from aiq_flows.domain.values import date_span
from aiq_flows.domain.watermark import Watermark


class CrmBase(DeclarativeBase):
    pass


class CrmCustomer(CrmBase):
    __tablename__ = "crm_customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_key: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    address1: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    postcode: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime]


class CrmSale(CrmBase):
    __tablename__ = "crm_sales"
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(100))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("crm_customers.id"))
    sale_date: Mapped[date | None]
    currency: Mapped[str | None] = mapped_column(String(10))
    description: Mapped[str | None] = mapped_column(String(1000))
    updated_at: Mapped[datetime] = mapped_column(index=True)
    # Deferred revenue: a service period, and when the sale was credited (if it was).
    service_start: Mapped[date | None]
    service_end: Mapped[date | None]
    service_months: Mapped[int | None]  # instead of service_end: that many whole months from the start
    credited_at: Mapped[datetime | None]
    invoice_kind: Mapped[str | None] = mapped_column(String(10))  # batch or item; empty: the deployment's
    # Written back by the sync; never touch updated_at, or every write-back would re-trigger it.
    aiq_transaction_id: Mapped[int | None]
    aiq_status: Mapped[str | None] = mapped_column(String(20), index=True)
    aiq_message: Mapped[str | None] = mapped_column(String(2000))
    aiq_synced_at: Mapped[datetime | None]
    customer: Mapped[CrmCustomer | None] = relationship()
    lines: Mapped[list[CrmSaleLine]] = relationship(
        order_by="CrmSaleLine.line_no", cascade="all, delete-orphan"
    )


class CrmSaleLine(CrmBase):
    __tablename__ = "crm_sale_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    sale_id: Mapped[int] = mapped_column(ForeignKey("crm_sales.id"), index=True)
    line_no: Mapped[int]
    description: Mapped[str | None] = mapped_column(String(1000))
    gl_account_code: Mapped[str | None] = mapped_column(String(50))
    tax_code: Mapped[str | None] = mapped_column(String(50))
    net_amount: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4))
    tax_amount: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4))
    department_id: Mapped[str | None] = mapped_column(String(50))


# Every value is read as the database holds it (no type conversion on the way out): a text in a
# date column, a float in an amount column, reach the domain as they are, to be parsed per record;
# a conversion here would stop the whole read at the first bad row, or round an amount unseen.
def _raw(column: Any, name: str | None = None) -> Any:
    return type_coerce(column, NullType()).label(name or column.key)


# Sales are read as plain rows (SQLAlchemy Core), not ORM objects: a page of 2,000 sales with their
# lines costs a fifth of the CPU, and the nightly sync reads pages while it posts the previous one.
_SALE_COLUMNS = (
    _raw(CrmSale.id),
    _raw(CrmSale.reference),
    _raw(CrmSale.sale_date),
    _raw(CrmSale.currency),
    _raw(CrmSale.description),
    _raw(CrmSale.updated_at),
    _raw(CrmSale.service_start),
    _raw(CrmSale.service_end),
    _raw(CrmSale.service_months),
    _raw(CrmSale.credited_at),
    _raw(CrmSale.invoice_kind),
    _raw(CrmSale.aiq_status),
    _raw(CrmSale.aiq_transaction_id),
    _raw(CrmSale.customer_id),
    _raw(CrmCustomer.id, "customer_row"),
    _raw(CrmCustomer.account_key),
    _raw(CrmCustomer.name, "customer_name"),
    _raw(CrmCustomer.email),
    _raw(CrmCustomer.phone),
    _raw(CrmCustomer.address1),
    _raw(CrmCustomer.city),
    _raw(CrmCustomer.postcode),
    _raw(CrmCustomer.country),
)
_LINE_COLUMNS = (
    _raw(CrmSaleLine.sale_id),
    _raw(CrmSaleLine.line_no),
    _raw(CrmSaleLine.description),
    _raw(CrmSaleLine.gl_account_code),
    _raw(CrmSaleLine.tax_code),
    _raw(CrmSaleLine.net_amount),
    _raw(CrmSaleLine.tax_amount),
    _raw(CrmSaleLine.department_id),
)
_IDS_PER_QUERY = 900  # under SQLite's oldest limit of 999 bound parameters


def sales_query() -> Select[Any]:
    return select(*_SALE_COLUMNS).select_from(CrmSale).outerjoin(CrmCustomer, CrmSale.customer)


def _lines_by_sale(connection: Connection, sale_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    lines: dict[int, list[dict[str, Any]]] = {sale_id: [] for sale_id in sale_ids}
    for start in range(0, len(sale_ids), _IDS_PER_QUERY):
        query = (
            select(*_LINE_COLUMNS)
            .where(CrmSaleLine.sale_id.in_(sale_ids[start : start + _IDS_PER_QUERY]))
            .order_by(CrmSaleLine.sale_id, CrmSaleLine.line_no, CrmSaleLine.id)
        )
        for line in connection.execute(query):
            lines[line.sale_id].append(
                {
                    "line_no": line.line_no,
                    "description": line.description,
                    "gl_account_code": line.gl_account_code,
                    "tax_code": line.tax_code,
                    "net_amount": line.net_amount,
                    "tax_amount": line.tax_amount,
                    "department_id": line.department_id,
                }
            )
    return lines


def _record(sale: Row[Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "sale_id": sale.id,
        "reference": sale.reference,
        "sale_date": sale.sale_date,
        "currency": sale.currency,
        "description": sale.description,
        "updated_at": sale.updated_at,
        "service_start": sale.service_start,
        "service_end": sale.service_end,
        "service_months": sale.service_months,
        "credited_at": sale.credited_at,
        "invoice_kind": sale.invoice_kind,
        "customer_ref": sale.customer_id,
        "customer": None
        if sale.customer_row is None
        else {
            "key": sale.account_key,
            "name": sale.customer_name,
            "email": sale.email,
            "phone": sale.phone,
            "address1": sale.address1,
            "city": sale.city,
            "postcode": sale.postcode,
            "country": sale.country,
        },
        "lines": lines,
    }


def read_records(connection: Connection, query: Select[Any]) -> list[tuple[Row[Any], dict[str, Any]]]:
    """Each sale row of `query` (built on `sales_query`) with its record for the domain."""
    sales = list(connection.execute(query))
    lines = _lines_by_sale(connection, [sale.id for sale in sales])
    return [(sale, _record(sale, lines[sale.id])) for sale in sales]


@dataclass(frozen=True)
class SalesPage:
    """A page of raw sale records, and where the next page starts: the last row's change time and
    id exactly as stored, so that paging never depends on a value being readable."""

    records: list[dict[str, Any]]
    cursor: tuple[Any, Any] | None


def _changed_since(since: Watermark, overlap: timedelta) -> Any:
    return or_(
        CrmSale.updated_at >= since.updated_at - overlap,
        CrmSale.aiq_status.is_(None),
        CrmSale.aiq_status == CrmStatus.PENDING.value,
    )


class SqlCrm:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)

    def create_schema(self) -> None:
        CrmBase.metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    def changed_sales(
        self,
        since: Watermark,
        overlap: timedelta,
        limit: int | None = None,
        after: tuple[Any, Any] | None = None,
    ) -> SalesPage:
        """Sales changed since the watermark (minus an overlap for late commits), plus every sale
        never synced or left pending, in change order; a page of `limit` of them after `after`
        (the previous page's cursor: write-back never changes that order)."""
        query = sales_query().where(_changed_since(since, overlap)).order_by(CrmSale.updated_at, CrmSale.id)
        if after is not None:
            changed, sale_id = (type_coerce(CrmSale.updated_at, NullType()), CrmSale.id)
            query = query.where(or_(changed > after[0], and_(changed == after[0], sale_id > after[1])))
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            rows = read_records(connection, query)
        cursor = (rows[-1][0].updated_at, rows[-1][0].id) if rows else None
        return SalesPage([record for _, record in rows], cursor)

    def changed_window(self, since: Watermark, overlap: timedelta) -> tuple[date, date] | None:
        """The first and last sale date among the sales `changed_sales` will return (dates that
        cannot be read are left out: those sales are quarantined, not posted)."""
        query = select(_raw(CrmSale.sale_date)).where(_changed_since(since, overlap)).distinct()
        with self.engine.connect() as connection:
            return date_span(connection.scalars(query))

    def sales_between(self, start: date, end: date) -> list[dict[str, Any]]:
        """Every sale dated in the range (inclusive), with what the sync wrote back."""
        query = sales_query().where(CrmSale.sale_date >= start, CrmSale.sale_date <= end).order_by(CrmSale.id)
        with self.engine.connect() as connection:
            return [
                {**record, "aiq_status": sale.aiq_status, "aiq_transaction_id": sale.aiq_transaction_id}
                for sale, record in read_records(connection, query)
            ]

    def write_back(self, outcomes: list[SaleOutcome]) -> int:
        """Status, message and transaction ID per sale, in one statement per kind (executemany).
        A sale already posted is never downgraded."""
        now = datetime.now(UTC).replace(tzinfo=None)
        posted = [o for o in outcomes if o.crm_status is CrmStatus.POSTED]
        others = [o for o in outcomes if o.crm_status is not CrmStatus.POSTED]
        statement = update(CrmSale).where(CrmSale.id == bindparam("sale_id"))
        values = {
            "aiq_status": bindparam("status"),
            "aiq_message": bindparam("message"),
            "aiq_synced_at": now,
        }
        written = 0
        with Session(self.engine) as session, session.begin():
            connection = session.connection()
            for group, query, extra in (
                (posted, statement.values(**values, aiq_transaction_id=bindparam("tx")), True),
                (
                    others,
                    statement.where(
                        or_(CrmSale.aiq_status.is_(None), CrmSale.aiq_status != CrmStatus.POSTED.value)
                    ).values(**values),
                    False,
                ),
            ):
                if not group:
                    continue
                rows = [
                    {
                        "sale_id": o.sale_id,
                        "status": o.crm_status.value,
                        "message": (o.reason or o.outcome.value)[:2000],
                        **({"tx": o.transaction_id} if extra else {}),
                    }
                    for o in group
                ]
                written += connection.execute(query, rows).rowcount or 0
        return written
