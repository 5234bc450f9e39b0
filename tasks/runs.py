"""What the orchestrator knows about other runs: which claim owners are over, so that their claims
on documents are taken over at once instead of when their leases run out."""

from __future__ import annotations

from uuid import UUID

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


def runs_over(owners: set[str]) -> dict[str, str]:
    """{flow run id: its state's name} for those of these flow runs Prefect says are over
    (crashed, failed, cancelled or completed). Prefect out of reach: none (the leases decide)."""
    ids = [run_id for owner in owners if (run_id := _uuid(owner)) is not None]
    if not ids:
        return {}
    try:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    except Exception as error:  # the claims wait for their leases, as without this
        get_run_logger().warning(
            "Could not ask Prefect which runs are over (%r): claims wait for their leases", error
        )
        return {}
    return {
        str(run.id): run.state.name or run.state.type.value
        for run in runs
        if run.state and run.state.is_final()
    }
