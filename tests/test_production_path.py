"""The production path: a Prefect server on PostgreSQL, a process work pool and worker,
`prefect deploy --all` from prefect.yaml, and the nightly deployment run through the worker; then
what Prefect itself does not make safe: a finished run retried through the API (what the UI's
Retry does) and two runs of the same deployment at once, with the entity's global concurrency
limit in place. Each invoice exists once in AIQ whatever happened."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POSTGRES_URL
from tests.support.processes import REPO, free_port

DEPLOYMENT = "nightly-sales-sync/nightly-sales-sync"
pytestmark = pytest.mark.postgres


def _postgres_available() -> bool:
    import sqlalchemy

    try:
        with sqlalchemy.create_engine(POSTGRES_URL).connect():
            return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def production_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not _postgres_available():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from _production_stack(tmp_path_factory.mktemp("production"), monkeypatch)


def _production_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    import uuid

    import sqlalchemy

    import scripts.demo as demo

    # A schema of its own in the test database: nothing left behind, nothing shared.
    schema = f"prefect_e2e_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    database = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql+asyncpg://")
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", database)
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_SEARCH_PATH", schema)
    monkeypatch.setattr(demo, "STATE", tmp_path / "stack")
    # Any free ports: the demo's own (8765, 4200) may be taken by the demo test in the other process.
    monkeypatch.setattr(demo, "free_port", lambda preferred: free_port())
    try:
        yield from _stack(demo)
    finally:
        # The server's logs, artifacts and states, as text, for the secrets scan after the suite.
        _dump_schema(engine, schema, tmp_path / "prefect-postgres-dump.txt")
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def _dump_schema(engine: Any, schema: str, target: Path) -> None:
    import sqlalchemy

    with engine.connect() as connection, target.open("w", encoding="utf-8") as dump:
        for table in sqlalchemy.inspect(connection).get_table_names(schema=schema):
            for row in connection.execute(sqlalchemy.text(f'SELECT * FROM "{schema}"."{table}"')):
                dump.write(f"{table}\t{tuple(row)!r}\n")


def _stack(demo: Any) -> Iterator[dict[str, Any]]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with demo.demo_stack() as (env, sandbox_base, api):
        from aiq_flows.sources.crm_sql import SqlCrm
        from aiq_flows.sources.demo_crm import seed_demo_crm

        with temporary_settings(updates={PREFECT_API_URL: api}):
            demo.register_blocks(sandbox_base)
            seed_demo_crm(SqlCrm(f"sqlite:///{demo.STATE / 'crm.db'}"), sales=120)
            prefect = str(demo.BIN / "prefect")
            demo.run([prefect, "work-pool", "create", "aiq-process", "--type", "process", "--overwrite"], env)
            demo.run([prefect, "--no-prompt", "deploy", "--all"], env)
            demo.ensure_write_limits(["demo-uk"], env)
            workers = demo.Processes()
            try:
                workers.start(
                    "worker",
                    [
                        prefect,
                        "worker",
                        "start",
                        "--pool",
                        "aiq-process",
                        "--name",
                        "pg-worker",
                        "--limit",
                        "4",
                    ],
                    env,
                )
                yield {"env": env, "sandbox": sandbox_base, "api": api, "state": demo.STATE}
            finally:
                workers.stop_all()


def _wait_final(flow_run_id: Any, timeout: float = 300) -> Any:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            run = client.read_flow_run(flow_run_id)
            if run.state is not None and run.state.is_final():
                return run
            time.sleep(1)
    raise AssertionError(f"flow run {flow_run_id} did not finish")


def _sandbox(sandbox_base: str, path: str) -> Any:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{sandbox_base}/_sandbox/{path}", timeout=30) as answer:
        return json.loads(answer.read())


def _documents(sandbox_base: str, entity: str = "DEMO_UK") -> Counter[str]:
    return Counter(d["external_reference"] for d in _sandbox(sandbox_base, f"documents?entity={entity}"))


def test_deployments_on_a_postgres_server_survive_retry_and_double_runs(
    production_stack: dict[str, Any],
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Scheduled

    with temporary_settings(updates={PREFECT_API_URL: production_stack["api"]}):
        with get_client(sync_client=True) as client:
            names = {f"{d.name}" for d in client.read_deployments()}
        assert {
            "nightly-sales-sync",
            "back-to-back-invoicing",
            "intercompany-pairing",
            "reconciliation",
        } <= names

        first = run_deployment(DEPLOYMENT, timeout=300, poll_interval=1)
        assert first.state is not None and first.state.is_completed(), first.state
        documents = _documents(production_stack["sandbox"])
        assert documents and max(documents.values()) == 1

        # The UI's Retry on a finished run: the same flow run scheduled again, and run again.
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(first.id, Scheduled(name="AwaitingRetry"), force=True)
        retried = _wait_final(first.id)
        assert retried.state.is_completed() and retried.run_count >= 2
        assert _documents(production_stack["sandbox"]) == documents  # nothing posted again

        # Two runs of the same deployment at once (a duplicate schedule).
        from aiq_flows.sources.crm_sql import SqlCrm
        from aiq_flows.sources.demo_crm import seed_demo_crm

        seed_demo_crm(SqlCrm(f"sqlite:///{production_stack['state'] / 'crm.db'}"), sales=80, start_id=1001)
        pair = [run_deployment(DEPLOYMENT, timeout=0) for _ in range(2)]
        finished = [_wait_final(run.id) for run in pair]
        assert all(run.state.is_completed() for run in finished), [run.state for run in finished]
        after = _documents(production_stack["sandbox"])
        assert max(after.values()) == 1 and len(after) > len(documents)
        assert os.environ.get("PREFECT_SERVER_DATABASE_CONNECTION_URL", "").startswith("postgresql+asyncpg")
    assert (REPO / "prefect.yaml").exists()


def test_every_deployment_runs_through_the_worker(production_stack: dict[str, Any]) -> None:
    """The nightly sync, the deferred release, back-to-back, intercompany, the reconciliation and
    the file drop, each run from its deployment through the worker on the PostgreSQL server; then
    AIQ holds each pair and each sale once, every entity's ledger balances, and reconciliation
    finds nothing."""
    from decimal import Decimal

    import pandas as pd
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    import scripts.demo as demo
    from aiq_flows.sources.demo_intercompany import seed_demo_charges
    from aiq_flows.sources.demo_jobs import seed_demo_jobs
    from aiq_flows.sources.intercompany_sql import SqlCharges
    from aiq_flows.sources.jobs_sql import SqlJobs
    from tests.test_file_drop import rows as export_rows

    state, sandbox, env = production_stack["state"], production_stack["sandbox"], production_stack["env"]
    jobs = seed_demo_jobs(SqlJobs(f"sqlite:///{state / 'jobs.db'}"))
    charges = seed_demo_charges(SqlCharges(f"sqlite:///{state / 'charges.db'}"))
    demo.ensure_write_limits(["demo-ie", "demo-uk2"], env)
    drop = state / "drop"
    (drop / "incoming").mkdir(parents=True)
    pd.DataFrame(export_rows(9001, 2)).to_csv(drop / "incoming" / "export.csv", index=False)

    runs = {}
    with temporary_settings(updates={PREFECT_API_URL: production_stack["api"]}):
        for deployment, parameters in (
            (DEPLOYMENT, {}),  # the night's sales first (nothing new when an earlier test ran it)
            ("deferred-revenue-release/deferred-revenue-release", {}),
            ("back-to-back-invoicing/back-to-back-invoicing", {}),
            ("intercompany-pairing/intercompany-pairing", {}),
            # Before the file drop: its exports are not in the CRM, so reconciliation would report them.
            ("reconciliation/reconciliation", {}),
            ("file-drop-sales-sync/file-drop-sales-sync", {"folder": str(drop)}),
        ):
            runs[deployment] = run_deployment(deployment, parameters=parameters, timeout=300, poll_interval=1)
    assert {name: run.state.type.value for name, run in runs.items()} == dict.fromkeys(runs, "COMPLETED")

    entities = ("DEMO_UK", "DEMO_IE", "DEMO_UK2")
    documents = {entity: _documents(sandbox, entity) for entity in entities}
    assert all(max(found.values()) == 1 for found in documents.values()), documents
    b2b = {ref for ref in documents["DEMO_UK"] if ref.startswith("B2B-")}
    assert len(b2b) == 2 * (len(jobs.job_ids) - len(jobs.bad))  # both legs of every good job
    intercompany = Counter(ref[-2:] for found in documents.values() for ref in found if ref.startswith("IC-"))
    connected = len(charges.charge_ids) - len(charges.unconnected)
    assert intercompany == {"-S": connected, "-P": connected}
    assert {"S-9001", "S-9002"} <= set(documents["DEMO_UK"])
    assert list((drop / "archive").glob("*-export.results.csv"))
    for entity in entities:
        balance = _sandbox(sandbox, f"trial-balance?entity={entity}")
        assert sum(Decimal(amount) for amount in balance.values()) == 0, entity


def _report_artifact(flow_run_id: Any) -> tuple[Any, list[dict[str, Any]]]:
    import json

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
                key=ArtifactFilterKey(any_=["nightly-sales-sync-report"]),
            )
        )
    data = artifact.data
    return artifact, list(json.loads(data) if isinstance(data, str) else data)


def _summary_artifact(flow_run_id: Any) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
                key=ArtifactFilterKey(any_=["nightly-sales-sync-summary"]),
            )
        )
    return artifact


def test_the_ui_shows_a_10000_sale_night_its_exceptions_and_the_link_to_every_result(
    production_stack: dict[str, Any],
) -> None:
    """Headless Chromium (Debian's, driven by Playwright) on the Prefect UI of the PostgreSQL
    server, after a 10,000-sale night through the worker: the flow run page, the report table of
    what needs a person (the rows the flow published), and the summary's link to the results file
    that holds every sale."""
    import csv

    from playwright.sync_api import expect
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from aiq_flows.sources.crm_sql import SqlCrm
    from aiq_flows.sources.demo_crm import seed_demo_crm
    from tests.support.browser import headless_chromium

    seed_demo_crm(SqlCrm(f"sqlite:///{production_stack['state'] / 'crm.db'}"), sales=10_000, start_id=20_001)
    with temporary_settings(updates={PREFECT_API_URL: production_stack["api"]}):
        run = run_deployment(DEPLOYMENT, timeout=900, poll_interval=2)
        assert run.state is not None and run.state.is_completed(), run.state
        artifact, rows = _report_artifact(run.id)
        summary = _summary_artifact(run.id)
    [results] = (production_stack["state"] / "results" / "nightly-sales-sync").glob(f"*-{run.name}.csv")
    every = list(csv.DictReader(results.open(encoding="utf-8")))
    attention = {row["sale_id"] for row in every if row["outcome"] in ("quarantined", "failed", "held")}
    assert len(every) >= 10_000  # every sale in the file; the UI's table: what needs a person
    assert {str(row["sale_id"]) for row in rows} <= attention and len(rows) == min(len(attention), 1_000)
    quarantined = next(row for row in rows if row["outcome"] == "quarantined")
    failed = next(row for row in rows if row["outcome"] == "failed")

    ui = production_stack["api"].removesuffix("/api")
    with headless_chromium(width=1920) as page:
        page.goto(f"{ui}/runs/flow-run/{run.id}")
        page.get_by_text(run.name, exact=True).first.wait_for()
        page.get_by_text("Completed", exact=True).first.wait_for()
        page.get_by_text("Artifacts", exact=True).click()
        page.get_by_text("nightly-sales-sync-report", exact=True).first.click()
        page.wait_for_url(f"**/artifacts/artifact/{artifact.id}")
        page.get_by_text(f"{len(rows)} Items", exact=True).wait_for()
        header = page.locator("table thead").inner_text()
        assert all(column in header for column in rows[0])
        for row in (quarantined, failed):
            page.get_by_placeholder("Search").fill(row["reference"])
            # The UI's search matches any cell by substring (SO-00501 would find SO-005010 …).
            matching = [r for r in rows if any(row["reference"] in str(v) for v in r.values())]
            shown = page.locator("table tbody tr")
            expect(shown).to_have_count(len(matching))
            cells = shown.filter(has_text=row["reference"]).inner_text()
            for value in (row["outcome"], row["reason"][:40]):
                assert str(value) in cells, (value, cells)
        page.get_by_placeholder("Search").fill("")
        page.goto(f"{ui}/artifacts/artifact/{summary.id}")
        link = page.get_by_role("link", name=results.name)
        link.wait_for()
        assert link.get_attribute("href") == results.resolve().as_uri()
        page.get_by_text("Full results, one row per sale", exact=False).first.wait_for()
        screenshot = page.screenshot(path=str(_screenshot_path()), full_page=True)
    assert screenshot[:8] == b"\x89PNG\r\n\x1a\n"


def _screenshot_path() -> Path:
    folder = Path(os.environ.get("AIQ_SCREENSHOTS", REPO / ".cache" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "nightly-sync-report.png"


def test_the_group_runs_each_entity_through_the_worker_and_one_failing_stops_none_of_the_others(
    production_stack: dict[str, Any],
) -> None:
    """One deployment for the group: each entity's sync a deployment run of its own through the
    worker, side by side; the entity whose source is missing fails alone, the group run says so
    and fails, the others complete; every invoice once."""
    from prefect.client.schemas.objects import StateType
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    import scripts.demo as demo
    from aiq_flows.sources.crm_sql import SqlCrm
    from aiq_flows.sources.demo_crm import seed_demo_crm

    seed_demo_crm(SqlCrm(f"sqlite:///{production_stack['state'] / 'crm-uk2.db'}"), sales=30, start_id=1)
    entities = [
        {"aiq_connection": "demo-uk", "crm_database": "demo-crm", "state_store": "demo-store"},
        {"aiq_connection": "demo-uk2", "crm_database": "demo-uk2-crm", "state_store": "demo-store"},
        {
            "aiq_connection": "demo-ie",
            "crm_database": "sql-sales-source/no-such-crm",
            "state_store": "demo-store",
        },
    ]
    with temporary_settings(updates={PREFECT_API_URL: production_stack["api"]}):
        demo.ensure_write_limits(["demo-uk2"], production_stack["env"])
        group = run_deployment(
            "group-nightly-sync/group-nightly-sync",
            parameters={"entities": entities, "max_parallel": 3},
            timeout=600,
            poll_interval=2,
        )
        rows = {
            row["aiq_connection"]: row for row in demo.report(str(group.id), "group-nightly-sync-entities")
        }
    assert group.state is not None and group.state.type is StateType.FAILED
    assert "1 of 3 entities did not complete: demo-ie (Failed)" in str(group.state.message)
    assert (rows["demo-uk"]["state"], rows["demo-uk2"]["state"], rows["demo-ie"]["state"]) == (
        "Completed",
        "Completed",
        "Failed",
    )
    assert (
        int(rows["demo-uk2"]["created"]) > 15
        and rows["demo-uk2"]["link"].endswith(rows["demo-uk2"]["run"]) is False
    )
    for entity in ("DEMO_UK", "DEMO_UK2"):
        counts = _documents(production_stack["sandbox"], entity)
        assert counts and set(counts.values()) == {1}, entity
