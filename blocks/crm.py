"""Where the sales come from: any SQL database through a mapping (`SqlSalesSource`), the demo CRM
(`CrmDatabase`: the same, with the demo's mapping), or Salesforce (`blocks.salesforce`). Every
kind gives the flows one contract, `aiq_flows.sources.contract.SalesSource`."""

from __future__ import annotations

from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator

from aiq_flows.mappings import DEMO_CRM
from aiq_flows.sources.mapped_sql import MappedSqlSource
from aiq_flows.sources.mapping import Mapping, load_mapping


class SqlSalesSource(Block):
    _block_type_name: ClassVar[str] = "SQL Sales Source"
    _description: ClassVar[str] = (
        "Any SQLAlchemy database (SQLite, PostgreSQL, SQL Server, MySQL, a warehouse view) and the "
        "mapping of its tables to sales: YAML text, or the path of a YAML file."
    )

    url: SecretStr = Field(description="e.g. postgresql+psycopg://crm@db/crm, mssql+pyodbc://...")
    mapping: str = Field(description="The mapping (YAML text), or the path of a mapping file")

    @field_validator("mapping")
    @classmethod
    def _mapping_reads(cls, value: str) -> str:
        load_mapping(value)  # refused on save, naming the key that is wrong
        return value

    def parsed_mapping(self) -> Mapping:
        return load_mapping(self.mapping)

    def source(self, name: str = "sales-source") -> MappedSqlSource:
        return MappedSqlSource(self.url.get_secret_value(), self.parsed_mapping(), name)


class CrmDatabase(Block):
    """The demo CRM: the project's own tables (`aiq_flows.sources.crm_sql`), read through the
    mapping that ships with it (`aiq_flows/mappings/demo-crm.yaml`), like any other CRM."""

    _block_type_name: ClassVar[str] = "CRM Database"
    _description: ClassVar[str] = "SQLAlchemy URL of the demo CRM's database (SQLite or PostgreSQL)."

    url: SecretStr = Field(description="e.g. sqlite:////srv/crm.db or postgresql+psycopg://...")

    def source(self, name: str = "demo-crm") -> MappedSqlSource:
        return MappedSqlSource(self.url.get_secret_value(), load_mapping(DEMO_CRM), name)
