"""The project's Prefect automations, from `automations.yaml` to the Prefect server.

The file is Prefect's own automation model (triggers as `EventTrigger` takes them) with two
conveniences a repository needs: notification channels named by block (`<type slug>/<name>`,
resolved to the block's id at apply time, so the file holds no installation's ids) and `notify:`
lists that become one `send-notification` action per channel. Applying replaces each automation
by name, so it can be run at every deploy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prefect.client.orchestration import get_client
from prefect.events.actions import ActionTypes, SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger
from pydantic import TypeAdapter

_ACTIONS: TypeAdapter[ActionTypes] = TypeAdapter(ActionTypes)


class AutomationsError(ValueError):
    """The file or a channel cannot be applied: the message names which."""


@dataclass(frozen=True)
class Applied:
    name: str
    replaced: bool
    channels: tuple[str, ...]


def _document(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise AutomationsError(f"{path}: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("automations"), list):
        raise AutomationsError(f"{path}: expected an `automations:` list")
    return document


def _block_ids(channels: Mapping[str, str]) -> dict[str, Any]:
    """{channel: block document id}; a channel whose block is missing is refused, naming it."""
    ids: dict[str, Any] = {}
    with get_client(sync_client=True) as client:
        for channel, reference in channels.items():
            if not reference:
                continue
            slug, _, name = reference.partition("/")
            try:
                ids[channel] = client.read_block_document_by_name(name, slug).id
            except Exception:
                raise AutomationsError(
                    f"channel {channel!r}: no block {name!r} of type {slug!r} on this Prefect server "
                    "(create it, or leave the channel out with --channel " + channel + "=)"
                ) from None
    return ids


def build(
    spec: Mapping[str, Any], block_ids: Mapping[str, Any], within: Mapping[str, float] | None = None
) -> AutomationCore:
    """One automation from its entry in the file: its trigger, its own actions, then a
    notification per channel it names that has a block."""
    name = str(spec["name"])
    trigger = dict(spec["trigger"])
    if within and name in within:
        trigger["within"] = within[name]
    actions = [_ACTIONS.validate_python(action) for action in spec.get("actions", [])]
    actions += [
        SendNotification(block_document_id=block_ids[channel], subject=spec["subject"], body=spec["body"])
        for channel in spec.get("notify", [])
        if channel in block_ids
    ]
    return AutomationCore(
        name=name,
        description=str(spec.get("description", "")),
        enabled=True,
        trigger=EventTrigger(**trigger),
        actions=actions,
    )


def apply(
    path: str | Path = "automations.yaml",
    channels: Mapping[str, str] | None = None,
    within: Mapping[str, float] | None = None,
) -> list[Applied]:
    """Create or replace (by name) every automation in the file on the current Prefect server.
    `channels` overrides the file's (an empty value leaves a channel out); `within` overrides a
    proactive automation's wait, in seconds, by name."""
    document = _document(Path(path))
    chosen = {**document.get("channels", {}), **(channels or {})}
    block_ids = _block_ids(chosen)
    applied = []
    with get_client(sync_client=True) as client:
        for spec in document["automations"]:
            automation = build(spec, block_ids, within)
            existing = client.read_automations_by_name(automation.name)
            for old in existing:
                client.delete_automation(old.id)
            client.create_automation(automation)
            applied.append(
                Applied(
                    automation.name,
                    bool(existing),
                    tuple(c for c in spec.get("notify", []) if c in block_ids),
                )
            )
    return applied


def remove(path: str | Path = "automations.yaml") -> int:
    """Delete the file's automations (by name) from the current Prefect server."""
    removed = 0
    with get_client(sync_client=True) as client:
        for spec in _document(Path(path))["automations"]:
            for old in client.read_automations_by_name(str(spec["name"])):
                client.delete_automation(old.id)
                removed += 1
    return removed
