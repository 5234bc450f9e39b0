"""The group nightly sync's steps: which entities (a list, or AIQ Connection blocks found by a
naming rule), what each entity's run reports back, and the group report with a row per entity."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
from prefect.settings import PREFECT_UI_URL
from pydantic import BaseModel

from aiq_flows.domain.outcomes import Outcome


class EntitySync(BaseModel):
    """One entity of the group: the blocks its nightly sync takes."""

    aiq_connection: str
    crm_database: str
    state_store: str
    results_folder: str | None = None


class EntitiesFailed(RuntimeError):
    """At least one entity's sync did not complete (the others ran to the end)."""


@dataclass(frozen=True)
class EntityRun:
    entity: EntitySync
    flow_run_id: UUID | None
    run_name: str
    state: str
    message: str = ""
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return self.state == "Completed"


def discover_entities(prefix: str) -> list[EntitySync]:
    """Every AIQ Connection block named `<prefix><entity>`, with `<prefix><entity>-crm` as its source
    and `<prefix>store` as the store."""
    with get_client(sync_client=True) as client:
        documents = client.read_block_documents_by_type("aiq-connection")
    names = sorted(
        d.name for d in documents if d.name and d.name.startswith(prefix) and not d.name.endswith("-crm")
    )
    return [
        EntitySync(aiq_connection=n, crm_database=f"{n}-crm", state_store=f"{prefix}store") for n in names
    ]


def run_counts(flow_run_id: UUID) -> dict[str, Any]:
    """The counts an entity's run published (its `nightly-sales-sync-counts` artifact)."""
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
                key=ArtifactFilterKey(any_=["nightly-sales-sync-counts"]),
            ),
            limit=1,
        )
    if not artifacts:
        return {}
    data = artifacts[0].data
    rows: Any = json.loads(data) if isinstance(data, str) else data
    return dict(rows[0]) if isinstance(rows, list) and rows else {}


def _link(run: EntityRun) -> str:
    base = PREFECT_UI_URL.value()
    return f"{base}/runs/flow-run/{run.flow_run_id}" if base and run.flow_run_id else ""


@task(name="publish-group-report", cache_policy=NONE)
def publish_group_report(runs: list[EntityRun]) -> dict[str, Any]:
    """A row per entity (its run, state, counts, link); the group run fails if any entity's did."""
    rows = [
        {
            "entity": run.counts.get("entity", run.entity.aiq_connection),
            "aiq_connection": run.entity.aiq_connection,
            "source": run.entity.crm_database,
            "run": run.run_name,
            "state": run.state,
            **{kind.value: run.counts.get(kind.value, "") for kind in Outcome},
            "input": run.counts.get("input", ""),
            "message": run.message[:300],
            "link": _link(run),
        }
        for run in runs
    ]
    failed = [run for run in runs if not run.completed]
    lines = [f"# Group nightly sync: {len(runs) - len(failed)} of {len(runs)} entities completed", ""]
    lines += [f"- **{row['entity']}** {row['state']}: {row['run']} {row['link']}" for row in rows]
    create_markdown_artifact(key="group-nightly-sync-summary", markdown="\n".join(lines))
    create_table_artifact(key="group-nightly-sync-entities", table=rows, description="One row per entity")
    if failed:
        names = ", ".join(f"{r.entity.aiq_connection} ({r.state})" for r in failed)
        get_run_logger().error("Entities that did not complete: %s", names)
        raise EntitiesFailed(f"{len(failed)} of {len(runs)} entities did not complete: {names}")
    return {"entities": len(runs), "completed": len(runs) - len(failed)}
