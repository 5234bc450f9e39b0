"""One writer per AccountsIQ entity at a time, across runs, workers and machines: every flow holds
the entity's Prefect global concurrency limit (`aiq_flows.concurrency.write_limit`) while it writes
to that entity."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.concurrency.sync import concurrency

from aiq_flows.concurrency import write_limit


@contextmanager
def writing_to(*entities: str, planning: bool = False) -> Iterator[None]:
    """Hold these entities' write limits (all of them, in one acquisition) for the block's
    duration; a plan (a dry run, an approval's plan) writes nothing and holds nothing."""
    if planning:
        yield
        return
    with concurrency([write_limit(entity) for entity in sorted(set(entities))], occupy=1):
        yield
