"""Reading what a flow run showed in the Prefect UI: its latest artifacts."""

from __future__ import annotations

import json
from typing import Any


def _latest(key: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=1, sort="CREATED_DESC"
        )
    return artifact.data


def latest_table(key: str) -> list[dict[str, Any]]:
    """The rows of the most recent table artifact under ``key``."""
    data = _latest(key)
    return list(json.loads(data) if isinstance(data, str) else data)


def latest_markdown(key: str) -> str:
    """The text of the most recent markdown artifact under ``key``."""
    return str(_latest(key))
