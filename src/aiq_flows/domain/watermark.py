"""A position in a source's change stream."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, order=True)
class Watermark:
    """(updated_at, record id): ordering by id as well means records with equal timestamps at the
    boundary are neither skipped nor read twice by the ordering itself."""

    updated_at: datetime
    record_id: int = 0

    @classmethod
    def beginning(cls) -> Watermark:
        return cls(datetime(1970, 1, 1))
