"""Custom Prefect events a run emits when it needs a person: the automations in `automations.yaml`
trigger on them and tell the finance team, with the counts and the links."""

from __future__ import annotations

from typing import Any

from prefect.events import emit_event
from prefect.runtime import flow_run

NEEDS_ATTENTION = "aiq-flows.run.needs-attention"
RECONCILIATION_DIFFERENCES = "aiq-flows.reconciliation.differences"
COUNTS = ("held", "quarantined", "failed", "changed_after_posting", "half_pairs", "parity_mismatches")


def announce(event: str, entity: str, counts: dict[str, int], **details: Any) -> None:
    """Emit `event` about this run: its resource is the run (`aiq-flows.run.<id>`), related to its
    flow run, flow and deployment (Prefect adds those), so a message can link to them."""
    flow_name, run_name = flow_run.flow_name, flow_run.name
    emit_event(
        event=event,
        resource={
            "prefect.resource.id": f"aiq-flows.run.{flow_run.id}",
            "prefect.resource.name": f"{flow_name}/{run_name}",
        },
        payload={
            "flow": flow_name,
            "run": run_name,
            "entity": entity,
            "total": sum(counts.values()),
            **{name: counts.get(name, 0) for name in COUNTS},
            **counts,
            **details,
        },
    )


def announce_if_needed(entity: str, counts: dict[str, int], **details: Any) -> bool:
    """The needs-attention event, when any of these counts is not zero."""
    needing = {name: n for name, n in counts.items() if n}
    if needing:
        announce(NEEDS_ATTENTION, entity, needing, **details)
    return bool(needing)
