"""The contract every source of sales meets (any SQL database through a mapping, Salesforce, the
demo CRM): the flows read and write back through it and know nothing else of the source.

Records are raw: each value as the source holds it, for the domain to parse per record
(`aiq_flows.domain.sales.validate_sale`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from aiq_flows.domain.outcomes import SaleOutcome
from aiq_flows.domain.watermark import Watermark
from aiq_flows.sources.mapping import Mapping

# Where the next page starts, as the source keeps it: the last record's change time and id (SQL),
# a query locator (Salesforce). Opaque to everyone but its source.
Cursor = Any


class SourceRefused(RuntimeError):
    """The source refuses for a reason a retry in seconds does not change (a login refused, a
    daily API limit reached): the run stops with this one line, and no retry repeats it."""


@dataclass(frozen=True)
class SalesPage:
    records: list[dict[str, Any]]
    cursor: Cursor | None  # None: this was the last page


@dataclass(frozen=True)
class WrittenBack:
    records: int  # records the source changed (those already saying the same are left alone)
    refused: dict[str, str] = field(default_factory=dict)  # sale id -> why the source refused it


class SalesSource(Protocol):
    name: str  # keys the source's watermark and, read-only, its records' states in the store
    mapping: Mapping  # how its records are read; `reference_prefix` makes their AIQ references

    @property
    def read_only(self) -> bool:
        """True when the source has no write-back columns: the store keeps what it would hold."""
        ...

    def check(self) -> list[str]:
        """Everything the source's configuration names exists (MappingError naming what does
        not); warnings about what works but deserves a person's eye."""
        ...

    def changed_sales(
        self, since: Watermark, overlap: timedelta, limit: int | None = None, after: Cursor | None = None
    ) -> SalesPage:
        """A page of at most `limit` of the sales changed since the watermark less the overlap
        (and, with write-back columns, those never synced or left pending), in change order,
        after `after` (the previous page's cursor)."""
        ...

    def sales_by_id(self, ids: Sequence[Any], since: Watermark, overlap: timedelta) -> list[dict[str, Any]]:
        """These sales, but not those the changed window reads anyway."""
        ...

    def ids(self, page: int = 5000) -> Iterator[list[Any]]:
        """Every sale's id, a page at a time."""
        ...

    def changed_window(self, since: Watermark, overlap: timedelta) -> tuple[date, date] | None:
        """The first and last readable sale date among the sales `changed_sales` will return."""
        ...

    def sales_between(self, start: date, end: date) -> list[dict[str, Any]]:
        """Every sale dated in the range, with what was written back (for reconciliation)."""
        ...

    def write_back(self, outcomes: Sequence[SaleOutcome]) -> WrittenBack:
        """Each sale's status, message and transaction ID, where the source keeps them; a record
        the source refuses stays as it was, so the next run reads it again and writes it then."""
        ...

    def dispose(self) -> None: ...
