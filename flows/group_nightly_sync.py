"""Group nightly sync: the nightly sales sync for every entity of a group, from one deployment.

Each entity's sync runs as its own run (a deployment run through the work pool, or a subflow in this
process), up to `max_parallel` at once; each holds its own entity's write limit, so entities run side
by side and a second run for the same entity waits. One entity's failure does not stop the others:
the group report has a row per entity, and the group run fails at the end if any entity did.
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from aiq_flows.secrets import install_redaction
from flows.nightly_sales_sync import nightly_sales_sync
from tasks.group import EntityRun, EntitySync, discover_entities, publish_group_report, run_counts
from tasks.typed_prefect import as_is, deployment_run, threads

MAX_PARALLEL = 8


@task(name="sync-entity", cache_policy=NONE)
def sync_entity(
    entity: EntitySync, deployment: str | None, parameters: dict[str, Any], gate: threading.BoundedSemaphore
) -> EntityRun:
    """One entity's nightly sync, to its end, whatever its end: a deployment run (waited for) or a
    subflow. Never raises: a failed entity is a row of the group report."""
    chosen = {**parameters, **entity.model_dump(exclude_none=True)}
    run_id: UUID | None
    with gate:
        if deployment:
            run = deployment_run(deployment, chosen)
            state, run_id, name = run.state, run.id, run.name
        else:
            state = nightly_sales_sync(**chosen, return_state=True)
            run_id, name = state.state_details.flow_run_id, ""
    return EntityRun(
        entity,
        run_id,
        name,
        state.name if state is not None and state.name else "Unknown",
        str(state.message or "") if state is not None else "",
        run_counts(run_id) if run_id is not None else {},
    )


@flow(name="group-nightly-sync", task_runner=threads(MAX_PARALLEL))
def group_nightly_sync(
    entities: list[EntitySync] | None = None,
    discover_prefix: str | None = None,
    deployment: str | None = "nightly-sales-sync/nightly-sales-sync",
    max_parallel: int = 3,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`entities`: (AIQ connection, source, store) per entity. Or `discover_prefix`: every AIQ
    Connection block named `<prefix><entity>` with its source block `<prefix><entity>-crm` and the
    store `<prefix>store` (a naming rule). `deployment`: run each as a run of that deployment
    (through the work pool: a process each); None: as subflows of this run. `parameters` go to
    every entity's sync (chunk_size, credit_policy, ...)."""
    install_redaction()
    chosen = list(entities or []) + (discover_entities(discover_prefix) if discover_prefix else [])
    if not chosen:
        raise ValueError(
            "no entities: give `entities`, or a `discover_prefix` that names AIQ Connection blocks"
        )
    parallel = max(1, min(max_parallel, MAX_PARALLEL))
    get_run_logger().info("Syncing %d entities, %d at a time", len(chosen), parallel)
    gate = threading.BoundedSemaphore(parallel)  # the runner has MAX_PARALLEL threads; this run, fewer
    futures = [sync_entity.submit(entity, deployment, parameters or {}, as_is(gate)) for entity in chosen]
    return publish_group_report([future.result() for future in futures])


if __name__ == "__main__":
    group_nightly_sync()
