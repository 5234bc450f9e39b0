"""Deferred revenue schedules: the months each deferred sale still has to release, stored with the
invoice's transaction ID, and what became of each month (released by which journal, or credited).

Kept in the state store's database beside the side-effect ledger; the journals themselves are
documents in that ledger like any other, so each is posted exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ColumnElement, String, and_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from aiq_flows.db import ExactDecimal, insert_if_absent
from aiq_flows.domain.deferrals import ScheduleLine
from aiq_flows.store.outbox import StoreBase
from aiq_flows.store.schema import ensure_current


class ScheduleState(StrEnum):
    SCHEDULED = "scheduled"
    RELEASED = "released"
    CREDITED = "credited"  # released early by the credit journal; never released monthly


class ScheduleRow(StoreBase):
    __tablename__ = "deferral_schedule"
    entity: Mapped[str] = mapped_column(String(50), primary_key=True)
    sale_reference: Mapped[str] = mapped_column(String(50), primary_key=True)
    month: Mapped[date] = mapped_column(primary_key=True)
    revenue_gl: Mapped[str] = mapped_column(String(50), primary_key=True)
    department_id: Mapped[str] = mapped_column(String(50), primary_key=True)  # "" when none
    amount: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    deferred_gl: Mapped[str] = mapped_column(String(50))
    invoice_transaction_id: Mapped[int]
    state: Mapped[str] = mapped_column(String(20), index=True)
    journal_reference: Mapped[str | None] = mapped_column(String(50))
    journal_transaction_id: Mapped[int | None]
    posted_on: Mapped[date | None]
    note: Mapped[str | None] = mapped_column(String(200))
    # The sale was credited in the source: release what remains in one credit journal.
    credit_requested: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime]


@dataclass(frozen=True)
class ScheduledMonth:
    sale_reference: str
    month: date
    revenue_gl: str
    department_id: str | None
    amount: Decimal
    currency: str
    deferred_gl: str
    state: ScheduleState
    journal_reference: str | None
    credit_requested: bool


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _month(row: ScheduleRow) -> ScheduledMonth:
    return ScheduledMonth(
        row.sale_reference,
        row.month,
        row.revenue_gl,
        row.department_id or None,
        Decimal(row.amount),
        row.currency,
        row.deferred_gl,
        ScheduleState(row.state),
        row.journal_reference,
        row.credit_requested,
    )


@dataclass(frozen=True)
class InvoicedSchedule:
    """A deferred sale's release schedule, and the invoice that deferred its revenue."""

    lines: Sequence[ScheduleLine]
    currency: str
    invoice_transaction_id: int


def _scheduled(entity: str, sale_reference: str) -> ColumnElement[bool]:
    """A sale's months not released yet."""
    return and_(
        ScheduleRow.entity == entity,
        ScheduleRow.sale_reference == sale_reference,
        ScheduleRow.state == ScheduleState.SCHEDULED.value,
    )


class ScheduleStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_current(engine, engine.url.render_as_string(hide_password=True))

    def add(self, entity: str, schedules: Iterable[InvoicedSchedule], *, deferred_gl: str) -> None:
        """Record invoiced sales' schedules once, in one transaction; a re-run adds nothing and
        changes nothing."""
        now = _now()
        rows = [
            {
                "entity": entity,
                "sale_reference": line.sale_reference,
                "month": line.month,
                "revenue_gl": line.revenue_gl,
                "department_id": line.department_id or "",
                "amount": line.amount,
                "currency": schedule.currency,
                "deferred_gl": deferred_gl,
                "invoice_transaction_id": schedule.invoice_transaction_id,
                "state": ScheduleState.SCHEDULED.value,
                "updated_at": now,
            }
            for schedule in schedules
            for line in schedule.lines
        ]
        if rows:
            with self.engine.begin() as connection:
                connection.execute(insert_if_absent(self.engine, ScheduleRow), rows)

    def months(self, entity: str, *, state: ScheduleState | None = None) -> list[ScheduledMonth]:
        query = select(ScheduleRow).where(ScheduleRow.entity == entity)
        if state is not None:
            query = query.where(ScheduleRow.state == state.value)
        query = query.order_by(ScheduleRow.sale_reference, ScheduleRow.month, ScheduleRow.revenue_gl)
        with Session(self.engine) as session:
            return [_month(row) for row in session.scalars(query)]

    def request_credit(self, entity: str, sale_reference: str) -> None:
        """The sale was credited: its remaining months go out in one credit journal."""
        with self.engine.begin() as connection:
            connection.execute(
                update(ScheduleRow)
                .where(_scheduled(entity, sale_reference))
                .values(credit_requested=True, updated_at=_now())
            )

    def mark(
        self,
        entity: str,
        sale_reference: str,
        months: Iterable[date],
        state: ScheduleState,
        journal_reference: str,
        journal_transaction_id: int,
        posted_on: date,
        note: str | None,
    ) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(ScheduleRow)
                .where(_scheduled(entity, sale_reference), ScheduleRow.month.in_(list(months)))
                .values(
                    state=state.value,
                    journal_reference=journal_reference,
                    journal_transaction_id=journal_transaction_id,
                    posted_on=posted_on,
                    note=note,
                    updated_at=_now(),
                )
            )
