"""Back-to-back jobs held in a SQL database (SQLite by default, PostgreSQL in production), read
and written back as a work list (`aiq_flows.sources.pair_worklist`)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload

from aiq_flows.db import ExactDecimal, make_engine
from aiq_flows.sources import pair_worklist
from aiq_flows.sources.pair_worklist import PairWriteBack


class JobsBase(DeclarativeBase):
    pass


class JobRow(PairWriteBack, JobsBase):
    __tablename__ = "b2b_jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(100))
    supplier_code: Mapped[str | None] = mapped_column(String(50))
    customer_code: Mapped[str | None] = mapped_column(String(50))
    job_date: Mapped[date | None]
    currency: Mapped[str | None] = mapped_column(String(10))
    markup_percent: Mapped[Decimal | None] = mapped_column(ExactDecimal(9, 4))
    fixed_fee: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4))
    vat_mode: Mapped[str | None] = mapped_column(String(20))
    bi_code: Mapped[str | None] = mapped_column(String(50))
    analysis_code1: Mapped[str | None] = mapped_column(String(50))
    analysis_code2: Mapped[str | None] = mapped_column(String(50))
    analysis_code3: Mapped[str | None] = mapped_column(String(50))
    analysis_code4: Mapped[str | None] = mapped_column(String(50))
    analysis_code5: Mapped[str | None] = mapped_column(String(50))
    analysis_code6: Mapped[str | None] = mapped_column(String(50))
    closing: Mapped[bool] = mapped_column(default=False)
    cancelled: Mapped[bool] = mapped_column(default=False)
    aiq_bi_code: Mapped[str | None] = mapped_column(String(50))  # the BI code the legs carry
    lines: Mapped[list[JobLineRow]] = relationship(
        order_by="JobLineRow.line_no", cascade="all, delete-orphan"
    )


class JobLineRow(JobsBase):
    __tablename__ = "b2b_job_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("b2b_jobs.id"), index=True)
    line_no: Mapped[int]
    description: Mapped[str | None] = mapped_column(String(500))
    hours: Mapped[Decimal | None] = mapped_column(ExactDecimal(12, 4))
    rate: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4))
    amount: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4))


def _decimal(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.normalize()


def _record(row: JobRow) -> dict[str, Any]:
    """A plain record for the domain to validate (it owns the rules)."""
    return {
        "job_id": row.id,
        "reference": row.reference,
        "supplier_code": row.supplier_code,
        "customer_code": row.customer_code,
        "job_date": row.job_date,
        "currency": row.currency,
        "markup_percent": _decimal(row.markup_percent),
        "fixed_fee": _decimal(row.fixed_fee),
        "vat_mode": row.vat_mode or "principal",
        "bi_code": row.bi_code,
        "analysis_codes": tuple(getattr(row, f"analysis_code{n}") for n in range(1, 7)),
        "closing": row.closing,
        "cancelled": row.cancelled,
        "updated_at": row.updated_at,
        "lines": [
            {
                "line_no": line.line_no,
                "description": line.description,
                "hours": _decimal(line.hours),
                "rate": _decimal(line.rate),
                "amount": _decimal(line.amount),
            }
            for line in row.lines
        ],
    }


class SqlJobs:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        JobsBase.metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    def unsettled(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Jobs never synced, left pending, or changed since their last sync, oldest first."""
        return [_record(row) for row in pair_worklist.unsettled(self.engine, JobRow, limit)]

    def write_back(self, results: list[dict[str, Any]]) -> None:
        """Each result: id, status, aiq_sales/purchase_transaction_id, aiq_bi_code, message."""
        pair_worklist.write_back(self.engine, JobRow, results)

    def add(self, job: JobRow) -> int:
        with Session(self.engine) as session, session.begin():
            session.add(job)
            session.flush()
            return job.id

    def get(self, job_id: int) -> JobRow | None:
        with Session(self.engine) as session:
            return session.scalars(
                select(JobRow).options(selectinload(JobRow.lines)).where(JobRow.id == job_id)
            ).first()

    def touch(self, job_id: int, **values: Any) -> None:
        pair_worklist.touch(self.engine, JobRow, job_id, **values)
