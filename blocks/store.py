"""The side-effect ledger: what was sent to AccountsIQ, and each source's watermark."""

from __future__ import annotations

from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from aiq_flows.store.outbox import DocumentStore
from aiq_flows.store.schedules import ScheduleStore


class StateStore(Block):
    _block_type_name: ClassVar[str] = "AIQ State Store"
    _description: ClassVar[str] = "SQLAlchemy URL of the store (SQLite locally, PostgreSQL at scale)."

    url: SecretStr = Field(description="e.g. sqlite:////srv/aiq-store.db or postgresql+psycopg://...")

    def store(self) -> DocumentStore:
        return DocumentStore(self.url.get_secret_value())

    def schedules(self, store: DocumentStore) -> ScheduleStore:
        """Deferred revenue schedules, in the same database as `store`."""
        return ScheduleStore(store.engine)
