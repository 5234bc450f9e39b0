"""Test session set-up: an isolated Prefect home and a real Prefect API server, started before
anything imports Prefect so that no developer profile or API URL leaks in; the sandbox per test."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

SESSION_HOME = Path(tempfile.mkdtemp(prefix="aiq-flows-tests-"))
os.environ.update(
    PREFECT_HOME=str(SESSION_HOME / "prefect"),
    DO_NOT_TRACK="1",
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    PREFECT_LOGGING_LEVEL="INFO",
    PREFECT_RESULTS_PERSIST_BY_DEFAULT="false",
)
for leaked in ("PREFECT_API_URL", "PREFECT_PROFILE", "PREFECT_API_KEY"):
    os.environ.pop(leaked, None)

from tests.support.processes import REPO, PrefectTestServer, Sandbox  # noqa: E402

_TEMPLATE_DIR = Path(os.environ.get("PREFECT_TEST_TEMPLATE_DIR", REPO / ".cache" / "prefect-test"))
PREFECT_SERVER = PrefectTestServer(SESSION_HOME, _TEMPLATE_DIR)

import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402


def _distributes_only(config: pytest.Config) -> bool:
    """pytest-xdist's controller: it hands tests to the worker processes and runs none itself."""
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if _distributes_only(config):
        shutil.rmtree(SESSION_HOME, ignore_errors=True)
        return
    # Before any test module imports Prefect: this process's own API server, booting while pytest collects.
    os.environ["PREFECT_API_URL"] = PREFECT_SERVER.start()
    atexit.register(PREFECT_SERVER.stop)  # even when the session dies before its teardown


@pytest.fixture(scope="session", autouse=True)
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    PREFECT_SERVER.wait()
    try:
        # The heartbeat thread costs every flow run a second at exit; crash detection is not under test.
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield PREFECT_SERVER.api_url
        from prefect.logging.handlers import APILogHandler

        APILogHandler().flush()  # ship the last run logs before the server goes away
        PREFECT_SERVER.stop()
        _no_secret_left_behind(tmp_path_factory.getbasetemp())
    finally:
        PREFECT_SERVER.stop()
        shutil.rmtree(SESSION_HOME, ignore_errors=True)


def _no_secret_left_behind(basetemp: Path) -> None:
    """After the whole suite: no key, client secret or issued token in anything the tests left,
    nor in any test's captured output."""
    from tests.support.secrets_scan import ISSUED_ELSEWHERE, files_to_scan, hits, issued_secrets

    started = time.monotonic()
    sandboxes = list(basetemp.rglob("sandbox.db"))
    secrets = set().union(ISSUED_ELSEWHERE, *(issued_secrets(db) for db in sandboxes))
    files = files_to_scan([basetemp, SESSION_HOME])
    found = hits(files, secrets)
    SECRETS_SCAN.append(
        f"secrets scan after the suite: {len(secrets):,} keys, secrets and tokens from {len(sandboxes)} "
        f"sandboxes, {len(files):,} files ({sum(f.stat().st_size for f in files) / 2**20:,.0f} MiB), "
        f"{len(found)} hits, {time.monotonic() - started:.1f} s"
    )
    assert found == [], f"secrets found after the suite (file, first characters): {found[:20]}"


SECRETS_SCAN: list[str] = []
# Every test's captured output (stdout, stderr, log records), kept for the scan after the suite.
CAPTURED_OUTPUT = SESSION_HOME / "captured-output.log"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.sections and SESSION_HOME.exists():  # the last teardown's report comes after the scan
        with CAPTURED_OUTPUT.open("a", encoding="utf-8") as captured:
            for title, content in report.sections:
                captured.write(f"== {report.nodeid} {report.when}: {title}\n{content}\n")


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: its scan's line goes to the controller
        workeroutput["secrets_scan"] = list(SECRETS_SCAN)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: a worker finished
def pytest_testnodedown(node: Any, error: Any) -> None:
    SECRETS_SCAN.extend(getattr(node, "workeroutput", {}).get("secrets_scan", []))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in SECRETS_SCAN:
        terminalreporter.write_line(line)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    server = Sandbox(tmp_path)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One sandbox for a module of read-mostly tests."""
    server = Sandbox(tmp_path_factory.mktemp("sandbox"))
    yield server
    server.stop()


@pytest.fixture
def salesforce(tmp_path: Path) -> Iterator[Any]:
    """The Salesforce stand-in (HTTPS on 127.0.0.1), its secrets added to the suite's scan."""
    from aiq_flows.sandbox.salesforce.server import SalesforceStandIn
    from tests.support.secrets_scan import ISSUED_ELSEWHERE

    with SalesforceStandIn(directory=tmp_path / "salesforce") as server:
        yield server
        ISSUED_ELSEWHERE.update(server.org.secrets())


@dataclass(frozen=True)
class DemoBlocks:
    aiq: str
    crm: str
    store: str
    crm_url: str
    store_url: str


@pytest.fixture
def demo_blocks(sandbox: Sandbox, tmp_path: Path) -> DemoBlocks:
    """Blocks for the sandbox's DEMO_UK entity, a fresh CRM file and a fresh store file."""
    from pydantic import SecretStr

    from blocks import AiqConnection, CrmDatabase, StateStore

    suffix = uuid.uuid4().hex[:8]
    entity = sandbox.entity("DEMO_UK")
    crm_url = f"sqlite:///{tmp_path / 'crm.db'}"
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    AiqConnection(
        endpoint_url=sandbox.url,
        company_id="DEMO_UK",
        partner_key=SecretStr(sandbox.credentials["partner_key"]),
        user_key=SecretStr(entity["user_key"]),
        timeout_seconds=10,
    ).save(f"aiq-{suffix}")
    CrmDatabase(url=SecretStr(crm_url)).save(f"crm-{suffix}")
    StateStore(url=SecretStr(store_url)).save(f"store-{suffix}")
    return DemoBlocks(f"aiq-{suffix}", f"crm-{suffix}", f"store-{suffix}", crm_url, store_url)


POSTGRES_URL = os.environ.get("AIQ_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the machine's PostgreSQL database `test`, dropped afterwards."""
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_URL)
    schema = f"aiq_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:  # pragma: no cover - only where no server runs
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required for this test: {error}")
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
