"""The CRM the sales come from: a SQL database reached through SQLAlchemy."""

from __future__ import annotations

from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from aiq_flows.sources.crm_sql import SqlCrm


class CrmDatabase(Block):
    _block_type_name: ClassVar[str] = "CRM Database"
    _description: ClassVar[str] = "SQLAlchemy URL of the CRM database (SQLite or PostgreSQL)."

    url: SecretStr = Field(description="e.g. sqlite:////srv/crm.db or postgresql+psycopg://...")

    def source(self) -> SqlCrm:
        return SqlCrm(self.url.get_secret_value())
