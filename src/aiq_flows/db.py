"""SQLAlchemy engines for the project's own databases (CRM, store): SQLite or PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Dialect, Numeric, String, TypeDecorator, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.types import TypeEngine

from aiq_flows.secrets import register_secret


def insert_if_absent(engine: Engine, model: Any) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT DO NOTHING in the engine's dialect (SQLite or PostgreSQL): the
    first writer of a key wins, atomically, and a second one changes nothing."""
    insert = postgresql.insert(model) if engine.dialect.name == "postgresql" else sqlite.insert(model)
    return insert.on_conflict_do_nothing()


def make_engine(url: str) -> Engine:
    register_secret(make_url(url).password)  # a password in the URL must never reach a log
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        # Several processes (worker, tests, a second run) share one file: wait instead of failing.
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


class ExactDecimal(TypeDecorator[Decimal]):
    """A Decimal column that keeps every digit on every backend: NUMERIC(precision, scale) where
    NUMERIC is exact (PostgreSQL, SQL Server, MySQL), plain text on SQLite, whose NUMERIC keeps a
    float (9,999,999,999,999.9999 would come back as 10,000,000,000,000). A value written when the
    column was still a float is read back as the decimal that float prints as."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 18, scale: int = 4) -> None:
        super().__init__()
        self.precision, self.scale = precision, scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(self.precision + 2))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return format(Decimal(value), "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
