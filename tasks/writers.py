"""One writer per AccountsIQ entity at a time, across runs, workers and machines: every flow holds
the entity's Prefect global concurrency limit (`aiq_flows.concurrency.write_limit`) while it writes
to that entity.

Waiting is bounded and says why: a run that finds the limit taken logs which run holds it (the
store records the holder, since Prefect's API does not name it) and gives up after `WAIT` (an hour)
with a message that points at the runbook. Releasing never undoes a finished night: the flow's
watermark and report come after the `with` block, so a release that fails (the server out of reach)
is logged, and the server frees the slot when its lease expires.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from uuid import UUID

from prefect import get_run_logger
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.sync import concurrency
from prefect.runtime import flow_run

from aiq_flows.concurrency import write_limit
from aiq_flows.store.outbox import DocumentStore
from blocks.store import StateStore

# How long a run waits for an entity's write limit before it gives up (a dead holder's lease runs
# out within LEASE_SECONDS on a server with persistent lease storage).
WAIT = timedelta(hours=1)
FIRST_LOOK = timedelta(seconds=15)  # then the holder is named in the log, and the wait goes on
# The server frees a slot whose holder stopped renewing after this long (the deployment's env can
# shorten it, AIQ_FLOWS_WRITE_LEASE_SECONDS, to Prefect's minimum of 60).
LEASE_SECONDS = max(60.0, float(os.environ.get("AIQ_FLOWS_WRITE_LEASE_SECONDS", "300")))


class WriteLimitTimeout(TimeoutError):
    """The entity's write limit stayed taken for the whole wait."""


def _limits(names: list[str], wait: timedelta) -> AbstractContextManager[None]:
    run_id = flow_run.id
    return concurrency(
        names,
        occupy=1,
        timeout_seconds=max(wait.total_seconds(), 1.0),
        lease_duration=LEASE_SECONDS,
        holder=ConcurrencyLeaseHolder(type="flow_run", id=UUID(str(run_id))) if run_id else None,
        raise_on_lease_renewal_failure=False,  # a server restart must not kill a night half posted
    )


@contextmanager
def writing_to(
    state: StateStore, *entities: str, planning: bool = False, wait: timedelta = WAIT
) -> Iterator[None]:
    """Hold these entities' write limits (all of them, in one acquisition) for the block's
    duration; a plan (a dry run, an approval's plan) writes nothing and holds nothing."""
    if planning:
        yield
        return
    names = [write_limit(entity) for entity in sorted(set(entities))]
    run_id, run_name = str(flow_run.id or ""), str(flow_run.name or "this run")
    holding = _acquire(state, names, set(entities), wait)
    with _store(state) as store:
        for entity in set(entities):
            store.hold_writer(entity, run_id, run_name)
    try:
        yield
    finally:
        _release(holding, state, set(entities), run_id)


@contextmanager
def _store(state: StateStore) -> Iterator[DocumentStore]:
    store = state.store()
    try:
        yield store
    finally:
        store.dispose()


def _acquire(
    state: StateStore, names: list[str], entities: set[str], wait: timedelta
) -> AbstractContextManager[None]:
    """The limits, entered: at once if free, else after naming who holds them."""
    first = _limits(names, FIRST_LOOK)
    try:
        first.__enter__()
        return first
    except TimeoutError:
        pass
    with _store(state) as store:
        holders = {entity: store.writer(entity) for entity in entities}
    held_by = ", ".join(
        f"{write_limit(e)} by run {w.run_name} ({w.run_id}) since {w.since:%Y-%m-%d %H:%M} UTC"
        if w
        else f"{write_limit(e)} by a run this store does not know"
        for e, w in holders.items()
    )
    get_run_logger().warning(
        "Waiting up to %s for the write limit, held: %s (a dead holder: see the runbook, "
        "'a run waits for its write limit')",
        wait,
        held_by,
    )
    rest = _limits(names, wait - FIRST_LOOK)
    try:
        rest.__enter__()
    except TimeoutError:
        raise WriteLimitTimeout(
            f"gave up after {wait} waiting for the write limit ({held_by}): nothing was written"
        ) from None
    return rest


def _release(
    holding: AbstractContextManager[None], state: StateStore, entities: set[str], run_id: str
) -> None:
    """Give the limits back. A failure is logged, never raised: what the run did stands, and the
    server frees the slot when its lease expires."""
    logger = get_run_logger()
    try:
        holding.__exit__(None, None, None)
    except Exception as error:
        logger.warning(
            "Could not release the write limit (%r): the server frees it when its lease expires (%d s)",
            error,
            LEASE_SECONDS,
        )
    try:
        with _store(state) as store:
            for entity in entities:
                store.release_writer(entity, run_id)
    except Exception as error:
        logger.warning("Could not clear this run's writer record (%r)", error)
