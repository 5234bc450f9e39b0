"""Benchmark: the group nightly sync over the sandbox's three entities (DEMO_UK, DEMO_UK2 and
DEMO_IE, the Irish one through its own mapping), every AIQ call delayed, as in production: a
Prefect server, a process worker, each entity's sync a run of the nightly deployment in a process
of its own. Side by side (the group) against the same three runs one after the other, each on a
fresh sandbox. The group should take about the time of its slowest entity, not the sum, as far as
the machine's cores allow (the sandbox itself is one process).

    .venv/bin/python bench/group_sync.py [--sales 2000] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from nightly_sync import SandboxProcess, free_port, wait_healthy

REPO = Path(__file__).resolve().parents[1]

ENTITIES = ("DEMO_UK", "DEMO_UK2", "DEMO_IE")


def prepare(box: SandboxProcess, directory: Path, sales: int, tag: str) -> list[dict[str, str]]:
    """Blocks for the three entities on this sandbox, each with a CRM of `sales` sales."""
    from pydantic import SecretStr

    from aiq_flows.mappings import DEMO_CRM_IE
    from blocks import AiqConnection, CrmDatabase, SqlSalesSource, StateStore

    seeding = (
        "import sys, datetime; from aiq_flows.sources.crm_sql import SqlCrm; "
        "from aiq_flows.sources.demo_crm import seed_demo_crm; "
        "seed_demo_crm(SqlCrm(sys.argv[1]), sales=int(sys.argv[2]), today=datetime.date(2026, 11, 25))"
    )
    store = f"{tag}-store"
    StateStore(url=SecretStr(f"sqlite:///{directory / f'{tag}-store.db'}")).save(store, overwrite=True)
    entities = []
    for company in ENTITIES:
        name = f"{tag}-{company.lower().replace('_', '-')}"
        crm_url = f"sqlite:///{directory / f'{name}-crm.db'}"
        subprocess.run([sys.executable, "-c", seeding, crm_url, str(sales)], check=True)
        entity = next(e for e in box.credentials["entities"] if e["company_id"] == company)
        AiqConnection(
            endpoint_url=box.url,
            company_id=company,
            partner_key=SecretStr(box.credentials["partner_key"]),
            user_key=SecretStr(entity["user_key"]),
        ).save(name, overwrite=True)
        if company == "DEMO_IE":
            SqlSalesSource(url=SecretStr(crm_url), mapping=DEMO_CRM_IE.read_text(encoding="utf-8")).save(
                f"{name}-crm", overwrite=True
            )
            source = f"sql-sales-source/{name}-crm"
        else:
            CrmDatabase(url=SecretStr(crm_url)).save(f"{name}-crm", overwrite=True)
            source = f"{name}-crm"
        entities.append({"aiq_connection": name, "crm_database": source, "state_store": store})
    return entities


class Orchestrator:
    """A Prefect server (SQLite) and a process worker, in processes of their own."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.env = {
            **os.environ,
            "PREFECT_API_URL": self.api,
            "PREFECT_HOME": str(directory / "prefect"),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
        template = REPO / ".cache" / "prefect-test" / f"prefect-{version('prefect')}.db"
        (directory / "prefect").mkdir(parents=True, exist_ok=True)
        if template.exists():  # a migrated database: the server starts in seconds
            shutil.copyfile(template, directory / "prefect" / "prefect.db")
        log = (directory / "orchestrator.log").open("w")
        prefect = str(Path(sys.executable).parent / "prefect")
        self.server = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        wait_healthy(f"{self.api}/health", seconds=120)
        subprocess.run([prefect, "work-pool", "create", "bench-pool", "--type", "process", "--overwrite"],
                       env=self.env, check=True, capture_output=True)  # fmt: skip
        self.worker = subprocess.Popen(
            [prefect, "worker", "start", "--pool", "bench-pool", "--limit", "4"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO,
        )  # fmt: skip

    def stop(self) -> None:
        for process in (self.worker, self.server):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sales", type=int, default=2000, help="sales per entity")
    parser.add_argument("--latency-ms", type=int, default=20)
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="aiq-bench-group-"))
    orchestrator = Orchestrator(directory)
    os.environ.update(PREFECT_API_URL=orchestrator.api, PREFECT_HOME=str(directory / "prefect"))
    try:
        from prefect.deployments import run_deployment
        from prefect.flows import Flow

        from flows.group_nightly_sync import group_nightly_sync

        Flow.from_source(str(REPO), "flows/nightly_sales_sync.py:nightly_sales_sync").deploy(
            "bench", work_pool_name="bench-pool", print_next_steps=False
        )
        deployment = "nightly-sales-sync/bench"
        timings: dict[str, float] = {}
        sequential = SandboxProcess(directory, args.latency_ms)
        try:
            each = prepare(sequential, directory, args.sales, "seq")
            started = time.perf_counter()
            for entity in each:
                begun = time.perf_counter()
                run = run_deployment(deployment, parameters=entity, timeout=1800, poll_interval=1)
                timings[entity["aiq_connection"]] = time.perf_counter() - begun
                print(
                    f"{entity['aiq_connection']:<18}: {timings[entity['aiq_connection']]:6.1f} s  {run.state}"
                )
            one_after_another = time.perf_counter() - started
        finally:
            sequential.stop()
        side_by_side = SandboxProcess(directory, args.latency_ms)
        try:
            group = prepare(side_by_side, directory, args.sales, "grp")
            started = time.perf_counter()
            result = group_nightly_sync(entities=group, deployment=deployment, max_parallel=3)
            together = time.perf_counter() - started
        finally:
            side_by_side.stop()
    finally:
        orchestrator.stop()
    slowest = max(timings.values())
    print(
        f"latency per call      : {args.latency_ms} ms, {args.sales:,} sales per entity, 3 entities, 2 cores"
    )
    print(f"one after another     : {one_after_another:6.1f} s (the slowest entity alone: {slowest:.1f} s)")
    print(f"group, side by side   : {together:6.1f} s -> {result}")
    print(f"group vs slowest      : {together / slowest:5.2f}x")
    print(f"group vs the sum      : {together / one_after_another:5.2f}x")


if __name__ == "__main__":
    main()
