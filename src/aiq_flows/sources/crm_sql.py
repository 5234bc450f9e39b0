"""The demo CRM: a SQL database (SQLite by default, PostgreSQL in production) with a customers
table, a sales table with the project's write-back columns, and a lines table. Nothing here reads
it: the sync reads it through its mapping, as it reads any CRM (`aiq_flows.sources.mapped_sql`).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    ForeignKey,
    String,
    inspect,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from aiq_flows.db import ExactDecimal, make_engine


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
    # Written back by the receipts sync: the invoice's status in AIQ, so sales see who paid.
    aiq_outstanding: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4))
    aiq_paid_at: Mapped[date | None]
    aiq_days_overdue: Mapped[int | None]
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


class CrmPayment(CrmBase):
    """A customer's payment as the CRM (or its payment provider) records it; the receipts sync
    reads it through the mapping's ``payments`` section and writes its outcome back."""

    __tablename__ = "crm_payments"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_code: Mapped[str | None] = mapped_column(String(50))  # the AIQ customer code
    paid_on: Mapped[date | None]
    amount: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4))
    currency: Mapped[str | None] = mapped_column(String(10))
    sale_ids: Mapped[str | None] = mapped_column(String(500))  # the sales it pays, comma separated
    kind: Mapped[str | None] = mapped_column(String(20))  # payment, refund or chargeback
    refund_of: Mapped[str | None] = mapped_column(String(50))
    bank_account: Mapped[str | None] = mapped_column(String(50))
    aiq_receipt_id: Mapped[int | None]
    aiq_status: Mapped[str | None] = mapped_column(String(20))
    aiq_message: Mapped[str | None] = mapped_column(String(2000))


class SqlCrm:
    """The demo CRM's database: its schema (created here) and seeding. It is read and written back
    through its mapping (`aiq_flows/mappings/demo-crm.yaml`, `blocks.crm.CrmDatabase`), like any
    user's CRM."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)

    def create_schema(self) -> None:
        """The demo CRM's tables; one made by an earlier release gets the columns added since
        (nullable, so no row changes): the demo CRM's own upgrade."""
        CrmBase.metadata.create_all(self.engine)
        present = inspect(self.engine)
        for table in CrmBase.metadata.sorted_tables:
            have = {column["name"] for column in present.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have:
                    kind = column.type.compile(dialect=self.engine.dialect)
                    with self.engine.begin() as connection:
                        connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))

    def dispose(self) -> None:
        self.engine.dispose()
