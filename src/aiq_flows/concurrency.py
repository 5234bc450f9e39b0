"""One writer per AccountsIQ entity at a time, across runs, workers and machines.

Each flow holds the entity's Prefect global concurrency limit (``aiq-writes-<entity>``) while it
writes to that entity. The store already makes every document exactly-once; the limit keeps two
runs (a duplicate schedule, a UI retry of a run still going) from interleaving their writes and
from sharing AIQ's capacity. Create the limits once per Prefect server:

    prefect gcl create aiq-writes-demo-uk --limit 1

A missing limit is not an error: Prefect warns and the run goes on unthrottled.
"""

from __future__ import annotations


def write_limit(entity: str) -> str:
    """The global concurrency limit name for writes to one AIQ entity."""
    return "aiq-writes-" + entity.lower().replace("_", "-")
