"""SQLAlchemy engines for the project's own databases (CRM, store): SQLite or PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url

from aiq_flows.secrets import register_secret


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
