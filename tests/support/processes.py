"""Real servers for the tests: a Prefect API (SQLite, from a pre-migrated template) and the
AccountsIQ sandbox, each a subprocess on 127.0.0.1 that the tests stop when they are done."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from aiq_flows.gateway.schema import PATH_1_1, PATH_2_0

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(process: subprocess.Popen[Any], url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout}s") from None
            time.sleep(0.1)


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class PrefectTestServer:
    """A Prefect API server for a test session.

    Migrating a fresh SQLite database takes ~20 s, so it is done once per Prefect version into a
    template that each session copies. The task-run recorder is off: it is the background writer
    that makes SQLite answer "database is locked" (HTTP 503 and client back-off) under test load.
    """

    def __init__(self, home: Path, template_dir: Path) -> None:
        from importlib.metadata import version

        self.home = home
        self.template = template_dir / f"prefect-{version('prefect')}.db"
        self.process: subprocess.Popen[Any] | None = None
        self.api_url = ""

    def _spawn(self, database: Path, migrated: bool) -> tuple[subprocess.Popen[Any], str]:
        port = free_port()
        env = {
            **os.environ,
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{database}",
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
            "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED": "false",
            "PREFECT_UI_URL": f"http://127.0.0.1:{port}",  # the links in automations' messages
        }
        if migrated:
            env |= {
                "PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false",
                "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false",
            }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env=env,
        )
        return process, f"http://127.0.0.1:{port}/api"

    def _build_template(self) -> None:
        self.template.parent.mkdir(parents=True, exist_ok=True)
        building = self.template.with_suffix(".building")
        building.unlink(missing_ok=True)
        process, url = self._spawn(building, migrated=False)
        try:
            wait_until_healthy(process, url + "/health", timeout=300)
        finally:
            stop(process)
        with sqlite3.connect(building) as db:  # fold the WAL in, or the copy misses migrations
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("PRAGMA journal_mode=DELETE")
        building.replace(self.template)

    def start(self) -> str:
        self.template.parent.mkdir(parents=True, exist_ok=True)
        with open(self.template.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # test processes starting together build it once
            if not self.template.exists():
                self._build_template()
        database = self.home / "prefect-test.db"
        shutil.copyfile(self.template, database)
        self.process, self.api_url = self._spawn(database, migrated=True)
        return self.api_url

    def wait(self) -> None:
        assert self.process is not None
        wait_until_healthy(self.process, self.api_url + "/health")

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


class Sandbox:
    """``aiq-sandbox serve`` in a subprocess, with helpers for its admin API."""

    def __init__(self, directory: Path, token_ttl: float = 1200.0) -> None:
        self.db = directory / "sandbox.db"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}{PATH_1_1}"
        self.url_2_0 = f"{self.base}{PATH_2_0}"
        self.log = (directory / "sandbox.log").open("w")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "aiq-sandbox"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--db",
                str(self.db),
                "--token-ttl",
                str(token_ttl),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until_healthy(self.process, f"{self.base}/_sandbox/health", timeout=60)
        self.credentials = json.loads(
            subprocess.run(
                [str(Path(sys.executable).parent / "aiq-sandbox"), "credentials", "--db", str(self.db)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )

    def app(self, name: str = "aiq-flows") -> dict[str, Any]:
        """An API 2.0 integration application: client_id, client_secret, entities."""
        return next(a for a in self.credentials["apps"] if a["name"] == name)

    def entity(self, company_id: str = "DEMO_UK") -> dict[str, Any]:
        return next(e for e in self.credentials["entities"] if e["company_id"] == company_id)

    def _request(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def faults(self, *rules: dict[str, Any], seed: int = 0) -> Any:
        return self._request("POST", "/_sandbox/faults", {"rules": list(rules), "seed": seed})

    def clear_faults(self) -> None:
        self._request("DELETE", "/_sandbox/faults")

    def expire_tokens(self) -> None:
        self._request("POST", "/_sandbox/tokens/expire", {})

    def calls(self) -> dict[str, int]:
        return dict(self._request("GET", "/_sandbox/calls"))

    def reset_calls(self) -> None:
        self._request("POST", "/_sandbox/calls/reset", {})

    def documents(
        self, entity: str = "DEMO_UK", external_reference: str | None = None
    ) -> list[dict[str, Any]]:
        query = f"?entity={entity}"
        if external_reference is not None:
            query += f"&external_reference={urllib.request.quote(external_reference)}"
        return list(self._request("GET", f"/_sandbox/documents{query}"))

    def trial_balance(self, entity: str = "DEMO_UK") -> dict[str, str]:
        return dict(self._request("GET", f"/_sandbox/trial-balance?entity={entity}"))

    def stop(self) -> None:
        stop(self.process)
        if not self.log.closed:
            self.log.close()
