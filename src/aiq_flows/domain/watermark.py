"""A position in a source's change stream."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, order=True)
class Watermark:
    """(updated_at, record id): the latest change a run has settled. Runs read from it, less an
    overlap for late commits; the id tells records with equal timestamps apart."""

    updated_at: datetime
    record_id: str = ""  # the record's id in its source, as text (Salesforce's ids are)

    @classmethod
    def beginning(cls) -> Watermark:
        return cls(datetime(1970, 1, 1))
