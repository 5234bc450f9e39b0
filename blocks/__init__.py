"""Prefect Blocks: where connection settings and secrets live (never in flow parameters)."""

from blocks.aiq import AiqConnection
from blocks.crm import CrmDatabase, SqlSalesSource
from blocks.intercompany import ChargesDatabase
from blocks.jobs import JobsDatabase
from blocks.results import ResultsFolder
from blocks.salesforce import SalesforceSource
from blocks.store import StateStore

__all__ = [
    "AiqConnection",
    "ChargesDatabase",
    "CrmDatabase",
    "JobsDatabase",
    "ResultsFolder",
    "SalesforceSource",
    "SqlSalesSource",
    "StateStore",
]
