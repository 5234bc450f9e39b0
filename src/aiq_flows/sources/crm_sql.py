"""A CRM held in a SQL database (SQLite by default, PostgreSQL in production), via SQLAlchemy.

Reads sales that changed since a watermark, or that were never synced, or that a run left pending,
as plain records for the domain to validate; writes back the AIQ transaction ID, status, message
and sync time. Write-back never downgrades a sale already recorded as posted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    ForeignKey,
    Numeric,
    Row,
    Select,
    String,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from aiq_flows.db import make_engine
from aiq_flows.domain.outcomes import CrmStatus, SaleOutcome
from aiq_flows.domain.spreading import service_end
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
    net_amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    tax_amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    department_id: Mapped[str | None] = mapped_column(String(50))


def _amount(value: Decimal | None) -> Decimal | None:
    """Numeric(18, 4) pads amounts to four places; show 100.00, not 100.0000, when exact."""
    if value is None:
        return None
    cents = value.quantize(Decimal("0.01"))
    return cents if cents == value else value


def _service_end(start: date | None, end: date | None, months: int | None) -> date | None:
    if end is None and start is not None and months:
        return service_end(start, months)
    return end


# Sales are read as plain rows (SQLAlchemy Core), not ORM objects: a page of 2,000 sales with their
# lines costs a fifth of the CPU, and the nightly sync reads pages while it posts the previous one.
_SALE_COLUMNS = (
    CrmSale.id,
    CrmSale.reference,
    CrmSale.sale_date,
    CrmSale.currency,
    CrmSale.description,
    CrmSale.updated_at,
    CrmSale.service_start,
    CrmSale.service_end,
    CrmSale.service_months,
    CrmSale.credited_at,
    CrmSale.invoice_kind,
    CrmSale.aiq_status,
    CrmSale.aiq_transaction_id,
    CrmCustomer.id.label("customer_row"),
    CrmCustomer.account_key,
    CrmCustomer.name.label("customer_name"),
    CrmCustomer.email,
    CrmCustomer.phone,
    CrmCustomer.address1,
    CrmCustomer.city,
    CrmCustomer.postcode,
    CrmCustomer.country,
)
_LINE_COLUMNS = (
    CrmSaleLine.sale_id,
    CrmSaleLine.line_no,
    CrmSaleLine.description,
    CrmSaleLine.gl_account_code,
    CrmSaleLine.tax_code,
    CrmSaleLine.net_amount,
    CrmSaleLine.tax_amount,
    CrmSaleLine.department_id,
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
            .order_by(CrmSaleLine.sale_id, CrmSaleLine.line_no)
        )
        for line in connection.execute(query):
            lines[line.sale_id].append(
                {
                    "line_no": line.line_no,
                    "description": line.description,
                    "gl_account_code": line.gl_account_code,
                    "tax_code": line.tax_code,
                    "net_amount": _amount(line.net_amount),
                    "tax_amount": _amount(line.tax_amount),
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
        "service_end": _service_end(sale.service_start, sale.service_end, sale.service_months),
        "credited": sale.credited_at is not None,
        "invoice_kind": sale.invoice_kind,
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
        after: Watermark | None = None,
    ) -> list[dict[str, Any]]:
        """Sales changed since the watermark (minus an overlap for late commits), plus every sale
        never synced or left pending, in change order; a page of `limit` of them after `after`
        (the last sale of the previous page: write-back never changes that order)."""
        window_start = since.updated_at - overlap
        query = (
            sales_query()
            .where(
                or_(
                    CrmSale.updated_at >= window_start,
                    CrmSale.aiq_status.is_(None),
                    CrmSale.aiq_status == CrmStatus.PENDING.value,
                )
            )
            .order_by(CrmSale.updated_at, CrmSale.id)
        )
        if after is not None:
            query = query.where(
                or_(
                    CrmSale.updated_at > after.updated_at,
                    and_(CrmSale.updated_at == after.updated_at, CrmSale.id > after.record_id),
                )
            )
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return [record for _, record in read_records(connection, query)]

    def changed_window(self, since: Watermark, overlap: timedelta) -> tuple[date, date] | None:
        """The first and last sale date among the sales `changed_sales` will return."""
        query = select(func.min(CrmSale.sale_date), func.max(CrmSale.sale_date)).where(
            or_(
                CrmSale.updated_at >= since.updated_at - overlap,
                CrmSale.aiq_status.is_(None),
                CrmSale.aiq_status == CrmStatus.PENDING.value,
            )
        )
        with Session(self.engine) as session:
            first, last = session.execute(query).one()
        return (first, last) if first is not None and last is not None else None

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
