"""Where intercompany charges come from: a SQL database reached through SQLAlchemy."""

from __future__ import annotations

from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from aiq_flows.sources.intercompany_sql import SqlCharges


class ChargesDatabase(Block):
    _block_type_name: ClassVar[str] = "Intercompany Charges Database"
    _description: ClassVar[str] = (
        "SQLAlchemy URL of the intercompany charges database (SQLite or PostgreSQL)."
    )

    url: SecretStr = Field(description="e.g. sqlite:////srv/charges.db or postgresql+psycopg://...")

    def source(self) -> SqlCharges:
        return SqlCharges(self.url.get_secret_value())
