"""The jobs system back-to-back invoices come from: a SQL database reached through SQLAlchemy."""

from __future__ import annotations

from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from aiq_flows.sources.jobs_sql import SqlJobs


class JobsDatabase(Block):
    _block_type_name: ClassVar[str] = "Jobs Database"
    _description: ClassVar[str] = "SQLAlchemy URL of the back-to-back jobs database (SQLite or PostgreSQL)."

    url: SecretStr = Field(description="e.g. sqlite:////srv/jobs.db or postgresql+psycopg://...")

    def source(self) -> SqlJobs:
        return SqlJobs(self.url.get_secret_value())
