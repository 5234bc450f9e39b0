"""When the orchestrator itself fails, mid-night, through a real Prefect server (`prefect server
start`, persistent concurrency leases) and a process worker, the deployments from prefect.yaml and
the automations from automations.yaml:

- a worker killed together with its flow run: the run stops sending heartbeats, the automation
  marks it Crashed; the next run takes the dead run's claims at once (the report names the run);
  the crashed run is retried from the API as from the UI; every invoice exists once;
- the server killed and restarted while a run holds the entity's write limit: the slot comes back
  by itself (no `prefect gcl update`), the next run is not stuck, every invoice exists once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import REPO, free_port

DEPLOYMENT = "nightly-sales-sync/nightly-sales-sync"
HEARTBEAT_SECONDS = 30  # Prefect's minimum
DEAD_AFTER_SECONDS = 75  # the heartbeat automation's `within`: two and a half heartbeats
LEASE_SECONDS = 60  # the write limit's lease (AIQ_FLOWS_WRITE_LEASE_SECONDS), Prefect's minimum


class Stack:
    """A sandbox, a Prefect server on SQLite (leases on disk) and a worker, each in its own
    process group, so that each can be killed on its own."""

    def __init__(self, state: Path) -> None:
        import scripts.demo as demo

        self.demo, self.state = demo, state
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(state / "prefect"),
            "PREFECT_API_URL": self.api,
            "PREFECT_UI_URL": f"http://127.0.0.1:{self.port}",
            "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem",
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
            "AIQ_FLOWS_WRITE_LEASE_SECONDS": str(LEASE_SECONDS),
            "AIQ_FLOWS_HOME": str(REPO),
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: dict[str, subprocess.Popen[Any]] = {}
        # The session's migrated template: the server starts in seconds, not 20.
        template = REPO / ".cache" / "prefect-test" / f"prefect-{version('prefect')}.db"
        (state / "prefect").mkdir(parents=True)
        if template.exists():
            shutil.copyfile(template, state / "prefect" / "prefect.db")

    def start(self, name: str, args: list[str]) -> subprocess.Popen[Any]:
        log = (self.state / f"{name}.log").open("a")
        process = subprocess.Popen(
            args, env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = process
        return process

    def kill(self, name: str) -> None:
        """SIGKILL the process group: the process and what it started (a worker's flow runs)."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def start_server(self) -> None:
        prefect = str(self.demo.BIN / "prefect")
        server = self.start(
            "server", [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
        )
        self.demo.wait_for(f"{self.api}/health", server)

    def start_worker(self, name: str = "worker") -> None:
        prefect = str(self.demo.BIN / "prefect")
        self.start(
            name, [prefect, "worker", "start", "--pool", "aiq-process", "--name", name, "--limit", "2"]
        )

    def stop(self) -> None:
        for name in list(self.processes):
            process = self.processes.pop(name)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from aiq_flows.automations import apply

    state = tmp_path_factory.mktemp("orchestrator")
    with pytest.MonkeyPatch.context() as monkeypatch:
        import scripts.demo as demo

        monkeypatch.setattr(demo, "STATE", state)
        stack = Stack(state)
        try:
            sandbox_port = free_port()
            sandbox = stack.start(
                "sandbox",
                [str(demo.BIN / "aiq-sandbox"), "serve", "--host", "127.0.0.1", "--port", str(sandbox_port),
                 "--db", str(state / "sandbox.db")],
            )  # fmt: skip
            stack.sandbox = f"http://127.0.0.1:{sandbox_port}"  # type: ignore[attr-defined]
            demo.wait_for(f"{stack.sandbox}/_sandbox/health", sandbox)  # type: ignore[attr-defined]
            stack.start_server()
            with temporary_settings(updates={PREFECT_API_URL: stack.api}):
                demo.register_blocks(stack.sandbox)  # type: ignore[attr-defined]
                prefect = str(demo.BIN / "prefect")
                demo.run(
                    [prefect, "work-pool", "create", "aiq-process", "--type", "process", "--overwrite"],
                    stack.env,
                )
                demo.run([prefect, "--no-prompt", "deploy", "--all"], stack.env)
                demo.ensure_write_limits(["demo-uk"], stack.env)
                apply(
                    REPO / "automations.yaml",
                    {"email": "", "chat": ""},
                    within={"aiq-flows: a run stopped sending heartbeats": DEAD_AFTER_SECONDS},
                )
                stack.start_worker()
                yield stack
        finally:
            stack.stop()


def _sandbox(stack: Stack, path: str, payload: Any = None) -> Any:
    import json
    import urllib.request

    request = urllib.request.Request(
        f"{stack.sandbox}/_sandbox/{path}",  # type: ignore[attr-defined]
        data=None if payload is None else json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="GET" if payload is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"null")


def _documents(stack: Stack) -> Counter[str]:
    return Counter(d["external_reference"] for d in _sandbox(stack, "documents?entity=DEMO_UK"))


def _slow_posting(stack: Stack, milliseconds: int) -> None:
    rule = {"kind": "latency", "operation": "CreateBatchSalesInvoiceBulkGetBackTransactionIDs"}
    _sandbox(stack, "faults", {"rules": [{**rule, "latency_ms": milliseconds}] if milliseconds else []})


def _wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def _run(stack: Stack, **parameters: Any) -> Any:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: stack.api}):
        return run_deployment(DEPLOYMENT, parameters=parameters, timeout=0)


def _read(stack: Stack, flow_run_id: Any) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: stack.api}), get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def _final(stack: Stack, flow_run_id: Any, timeout: float = 300) -> Any:
    return _wait(
        lambda: (run := _read(stack, flow_run_id)).state is not None and run.state.is_final() and run,
        timeout,
        f"flow run {flow_run_id} final",
    )


def _seed(stack: Stack, sales: int, start_id: int) -> None:
    from aiq_flows.sources.crm_sql import SqlCrm
    from aiq_flows.sources.demo_crm import seed_demo_crm

    seed_demo_crm(SqlCrm(f"sqlite:///{stack.state / 'crm.db'}"), sales=sales, start_id=start_id)


def _assert_each_invoice_once(stack: Stack) -> Counter[str]:
    documents = _documents(stack)
    assert documents and set(documents.values()) == {1}, {k: n for k, n in documents.items() if n > 1}
    return documents


def test_a_worker_killed_with_its_run_is_marked_crashed_its_claims_taken_and_the_retry_harmless(
    stack: Stack,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Scheduled

    _seed(stack, sales=800, start_id=1)
    _slow_posting(stack, 2500)
    doomed = _run(stack)
    _wait(lambda: _documents(stack), 180, "the first invoices posted")
    # The flow-run process and its worker, SIGKILLed together (a machine lost): nobody reports the run.
    process = int(str(_read(stack, doomed.id).infrastructure_pid).rpartition(":")[2])
    os.kill(process, signal.SIGKILL)
    stack.kill("worker")
    _slow_posting(stack, 0)
    assert _read(stack, doomed.id).state.type is StateType.RUNNING
    crashed = _wait(
        lambda: (run := _read(stack, doomed.id)).state.type is StateType.CRASHED and run,
        DEAD_AFTER_SECONDS + 90,
        "the heartbeat automation marking the dead run Crashed",
    )
    assert "No heartbeat" in (crashed.state.message or "")

    stack.start_worker("worker-2")
    night = _final(stack, _run(stack).id)
    assert night.state.type is StateType.COMPLETED, night.state
    results = sorted((stack.state / "results" / "nightly-sales-sync").glob(f"*-{night.name}.csv"))
    text = results[-1].read_text(encoding="utf-8")
    assert f"claim taken over from run {doomed.id} (Crashed)" in text  # the report says whose
    assert "another run is sending this document" not in text  # nothing left waiting for a lease

    with temporary_settings(updates={PREFECT_API_URL: stack.api}), get_client(sync_client=True) as client:
        client.set_flow_run_state(doomed.id, Scheduled(name="AwaitingRetry"), force=True)  # the UI's Retry
    retried = _final(stack, doomed.id)
    assert retried.state.type is StateType.COMPLETED and retried.run_count >= 2
    _assert_each_invoice_once(stack)


def test_a_server_restart_while_a_run_holds_the_write_limit_strands_no_slot(stack: Stack) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    def active_slots() -> int:
        with temporary_settings(updates={PREFECT_API_URL: stack.api}), get_client(sync_client=True) as client:
            return int(client.read_global_concurrency_limit_by_name("aiq-writes-demo-uk").active_slots)

    _seed(stack, sales=400, start_id=5001)
    _slow_posting(stack, 2000)
    holding = _run(stack)
    _wait(lambda: active_slots() == 1, 180, "the run holding the write limit")
    stack.kill("server")  # mid-night, the slot taken
    time.sleep(3)
    stack.start_server()
    _slow_posting(stack, 0)
    first = _final(stack, holding.id, timeout=600)  # finished, or crashed by the outage: either way...
    _wait(lambda: active_slots() == 0, LEASE_SECONDS + 120, "the slot back without `prefect gcl update`")
    _seed(stack, sales=20, start_id=6001)
    night = _final(stack, _run(stack).id)  # ...the next night is not stuck behind it
    assert night.state.type is StateType.COMPLETED, (first.state, night.state)
    documents = _assert_each_invoice_once(stack)
    assert {f"S-{n}" for n in range(6001, 6021)} & set(documents)
