"""What the sources of two-leg documents (back-to-back jobs, intercompany charges) share: the
write-back columns, and the work list of records that are not settled yet.

A record is read while it is not settled: never synced, left pending (a half pair, a transient
failure), or changed since its last sync. Write-back records both legs' transaction IDs, the status
and the message, and never touches ``updated_at`` (or every write-back would read it again).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import String, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column, selectinload

SETTLED = ("posted", "quarantined", "failed", "cancelled")


class PairWriteBack:
    """Mixin: the columns a two-leg flow writes back to its source table."""

    updated_at: Mapped[datetime] = mapped_column(index=True)
    aiq_status: Mapped[str | None] = mapped_column(String(20), index=True)
    aiq_sales_transaction_id: Mapped[int | None]
    aiq_purchase_transaction_id: Mapped[int | None]
    aiq_message: Mapped[str | None] = mapped_column(String(2000))
    aiq_synced_at: Mapped[datetime | None]


Row = TypeVar("Row", bound=PairWriteBack)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def unsettled(engine: Engine, row_type: type[Row], limit: int | None = None) -> list[Row]:
    """Records never synced, left pending, or changed since their last sync, oldest first (their
    ``lines`` loaded), detached from the session."""
    table: Any = row_type
    query = (
        select(row_type)
        .options(selectinload(table.lines))
        .where(
            or_(
                table.aiq_status.is_(None),
                table.aiq_status.not_in(SETTLED),
                table.aiq_synced_at.is_(None),
                table.updated_at > table.aiq_synced_at,
            )
        )
        .order_by(table.updated_at, table.id)
        .limit(limit)
    )
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(query))


def write_back(engine: Engine, row_type: type[PairWriteBack], results: list[dict[str, Any]]) -> None:
    """Each result: id, status, sales/purchase transaction IDs, message, and any other columns."""
    table: Any = row_type
    now = _now()
    with Session(engine) as session, session.begin():
        for result in results:
            extra = {k: v for k, v in result.items() if k not in ("id", "status", "message")}
            session.execute(
                update(row_type)
                .where(table.id == result["id"])
                .values(
                    aiq_status=result["status"],
                    aiq_message=(result.get("message") or "")[:2000] or None,
                    aiq_synced_at=now,
                    **extra,
                )
            )


def touch(engine: Engine, row_type: type[PairWriteBack], record_id: int, **values: Any) -> None:
    """Change a record as its owner would (bumps updated_at, so the next run reads it again)."""
    table: Any = row_type
    with Session(engine) as session, session.begin():
        session.execute(update(row_type).where(table.id == record_id).values(updated_at=_now(), **values))
