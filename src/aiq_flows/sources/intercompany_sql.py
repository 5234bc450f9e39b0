"""Intercompany charges held in a SQL database (SQLite by default, PostgreSQL in production),
read and written back as a work list (`aiq_flows.sources.pair_worklist`)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload

from aiq_flows.db import ExactDecimal, make_engine
from aiq_flows.sources import pair_worklist
from aiq_flows.sources.pair_worklist import PairWriteBack


class ChargesBase(DeclarativeBase):
    pass


class ChargeRow(PairWriteBack, ChargesBase):
    __tablename__ = "ic_charges"
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(100))
    from_entity: Mapped[str | None] = mapped_column(String(50))
    to_entity: Mapped[str | None] = mapped_column(String(50))
    charge_date: Mapped[date | None]
    currency: Mapped[str | None] = mapped_column(String(10))
    description: Mapped[str | None] = mapped_column(String(500))
    seller_bi_code: Mapped[str | None] = mapped_column(String(50))
    buyer_bi_code: Mapped[str | None] = mapped_column(String(50))
    sales_tax_code: Mapped[str | None] = mapped_column(String(50))
    purchase_tax_code: Mapped[str | None] = mapped_column(String(50))
    cancelled: Mapped[bool] = mapped_column(default=False)
    lines: Mapped[list[ChargeLineRow]] = relationship(
        order_by="ChargeLineRow.line_no", cascade="all, delete-orphan"
    )


class ChargeLineRow(ChargesBase):
    __tablename__ = "ic_charge_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    charge_id: Mapped[int] = mapped_column(ForeignKey("ic_charges.id"), index=True)
    line_no: Mapped[int]
    description: Mapped[str | None] = mapped_column(String(500))
    amount: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4))


def _record(row: ChargeRow) -> dict[str, Any]:
    return {
        "charge_id": row.id,
        "reference": row.reference,
        "seller": row.from_entity,
        "buyer": row.to_entity,
        "charge_date": row.charge_date,
        "currency": row.currency,
        "description": row.description,
        "seller_bi_code": row.seller_bi_code,
        "buyer_bi_code": row.buyer_bi_code,
        "sales_tax_code": row.sales_tax_code,
        "purchase_tax_code": row.purchase_tax_code,
        "cancelled": row.cancelled,
        "updated_at": row.updated_at,
        "lines": [
            {
                "line_no": line.line_no,
                "description": line.description,
                "amount": None if line.amount is None else line.amount.normalize(),
            }
            for line in row.lines
        ],
    }


class SqlCharges:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        ChargesBase.metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    def unsettled(self, limit: int | None = None) -> list[dict[str, Any]]:
        return [_record(row) for row in pair_worklist.unsettled(self.engine, ChargeRow, limit)]

    def write_back(self, results: list[dict[str, Any]]) -> None:
        pair_worklist.write_back(self.engine, ChargeRow, results)

    def touch(self, charge_id: int, **values: Any) -> None:
        pair_worklist.touch(self.engine, ChargeRow, charge_id, **values)

    def add(self, charge: ChargeRow) -> int:
        with Session(self.engine) as session, session.begin():
            session.add(charge)
            session.flush()
            return charge.id

    def get(self, charge_id: int) -> ChargeRow | None:
        with Session(self.engine) as session:
            query = select(ChargeRow).options(selectinload(ChargeRow.lines)).where(ChargeRow.id == charge_id)
            return session.scalars(query).first()
