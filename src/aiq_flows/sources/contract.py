"""The contract every source of sales meets (any SQL database through a mapping, Salesforce, the
demo CRM): the flows read and write back through it and know nothing else of the source.

Records are raw: each value as the source holds it, for the domain to parse per record
(`aiq_flows.domain.sales.validate_sale`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from aiq_flows.domain.outcomes import SaleOutcome
from aiq_flows.domain.watermark import Watermark

Cursor = tuple[Any, Any]  # where the next page starts: the last record's change time and id, as held


@dataclass(frozen=True)
class SalesPage:
    records: list[dict[str, Any]]
    cursor: Cursor | None


class SalesSource(Protocol):
    name: str  # keys the source's watermark and, read-only, its records' states in the store

    @property
    def read_only(self) -> bool:
        """True when the source has no write-back columns: the store keeps what it would hold."""
        ...

    def changed_sales(
        self, since: Watermark, overlap: timedelta, limit: int | None = None, after: Cursor | None = None
    ) -> SalesPage:
        """A page of the sales changed since the watermark less the overlap (and, with write-back
        columns, those never synced or left pending), in change order, after `after`."""
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

    def write_back(self, outcomes: Sequence[SaleOutcome]) -> int:
        """Each sale's status, message and transaction ID, where the source keeps them."""
        ...

    def dispose(self) -> None: ...
