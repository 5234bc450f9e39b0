"""Every deployment in prefect.yaml loads, takes the parameters it is given, and has a valid
schedule, work pool and pull step: checked here, not first discovered on the server at 02:30."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from fastapi.encoders import jsonable_encoder
from prefect.client.schemas.schedules import CronSchedule
from prefect.flows import load_flow_from_entrypoint

from tests.support.processes import REPO

PROJECT = yaml.safe_load((REPO / "prefect.yaml").read_text())
DEPLOYMENTS = PROJECT["deployments"]


def test_the_pull_step_sets_the_working_directory() -> None:
    step = PROJECT["pull"][0]["prefect.deployments.steps.set_working_directory"]
    assert step["directory"] == "{{ $AIQ_FLOWS_HOME }}"


def test_every_flow_has_a_deployment() -> None:
    assert {d["entrypoint"] for d in DEPLOYMENTS} >= {
        "flows/nightly_sales_sync.py:nightly_sales_sync",
        "flows/deferred_revenue_release.py:deferred_revenue_release",
    }


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_deployment_entrypoint_and_parameters(
    deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    parameters = deployment.get("parameters", {})
    assert set(parameters) <= set(flow.parameters.properties)
    validated = flow.validate_parameters(parameters)
    as_given = {k: jsonable_encoder(validated[k], exclude_none=True) for k in parameters}
    assert as_given == parameters
    assert not any(isinstance(v, str) and "key" in k.lower() for k, v in parameters.items()), (
        "secrets belong in blocks, not parameters"
    )


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_deployment_schedule_and_work_pool(deployment: dict[str, Any]) -> None:
    assert deployment["work_pool"]["name"] == "aiq-process"
    # Without heartbeats a run whose worker died with it stays Running for ever (automations.yaml).
    heartbeat = deployment["work_pool"]["job_variables"]["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"]
    assert int(heartbeat) >= 30  # Prefect's minimum
    for schedule in deployment.get("schedules", []):
        parsed = CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
        assert parsed.timezone == schedule["timezone"]
