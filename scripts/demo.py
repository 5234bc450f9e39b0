"""`make demo`: the nightly sales sync end to end on the embedded defaults.

Starts the AccountsIQ sandbox, a local Prefect server (SQLite) and a process worker; registers the
blocks; deploys from prefect.yaml; seeds the demo CRM; runs the nightly deployment; prints the
run's report and the UI address; keeps everything up until Ctrl-C (DEMO_EXIT=1: stops at once).
Everything it starts runs in its own process group and is stopped on the way out.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Where the demo keeps its databases and logs; wiped at each start. Tests point it elsewhere.
STATE = Path(os.environ.get("DEMO_STATE_DIR", REPO / ".demo"))
BIN = Path(sys.executable).parent
DEPLOYMENT = "nightly-sales-sync/nightly-sales-sync"
RELEASE = "deferred-revenue-release/deferred-revenue-release"
BACK_TO_BACK = "back-to-back-invoicing/back-to-back-invoicing"
RECEIPTS = "receipts-sync/receipts-sync"
INTERCOMPANY = "intercompany-pairing/intercompany-pairing"


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def free_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[Any], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"{process.args[0]} exited early; see {STATE}/*.log") from None
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not come up in {timeout:.0f}s") from None
            time.sleep(0.5)


class Processes:
    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen[Any]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[Any]:
        log = (STATE / f"{name}.log").open("w")

        def reset_signals() -> None:  # a worker inheriting SIG_IGN for SIGINT would never stop
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

        process = subprocess.Popen(
            args,
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=reset_signals,
        )
        self.started.append((name, process))
        return process

    def stop_all(self) -> None:
        for name, process in reversed(self.started):
            if process.poll() is None:
                say(f"stopping {name}")
                os.killpg(process.pid, signal.SIGTERM)
        for _name, process in reversed(self.started):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def ensure_write_limits(entities: list[str], env: dict[str, str]) -> None:
    """One writer per AIQ entity (aiq_flows.concurrency): the limit is created where it is missing
    and left as it is where it exists (an operator may have tuned it). Through the API client: the
    `prefect gcl` command costs seconds per call."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from aiq_flows.concurrency import write_limit

    with (
        temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}),
        get_client(sync_client=True) as client,
    ):
        for entity in entities:
            with suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=write_limit(entity), limit=1)
                )


@contextmanager
def demo_stack() -> Iterator[tuple[dict[str, str], str, str]]:
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir()
    sandbox_port, prefect_port = free_port(8765), free_port(4200)
    api = f"http://127.0.0.1:{prefect_port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(STATE / "prefect"),
        "PREFECT_API_URL": api,
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "AIQ_FLOWS_HOME": str(REPO),
        "PYTHONUNBUFFERED": "1",
        # The server keeps concurrency leases on disk: a restart does not strand a write limit's slot.
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem",
    }
    for leaked in ("PREFECT_PROFILE", "PREFECT_API_KEY"):
        env.pop(leaked, None)
    processes = Processes()
    try:
        say(f"starting the AccountsIQ sandbox on 127.0.0.1:{sandbox_port}")
        sandbox = processes.start(
            "sandbox",
            [
                str(BIN / "aiq-sandbox"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(sandbox_port),
                "--db",
                str(STATE / "sandbox.db"),
            ],
            env,
        )
        say(f"starting a Prefect server on 127.0.0.1:{prefect_port} (the first start migrates, ~20 s)")
        server = processes.start(
            "prefect-server",
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)],
            env,
        )
        wait_for(f"http://127.0.0.1:{sandbox_port}/_sandbox/health", sandbox)
        wait_for(f"{api}/health", server)
        yield env, f"http://127.0.0.1:{sandbox_port}", api
    finally:
        processes.stop_all()


def register_blocks(sandbox_base: str) -> None:
    from pydantic import SecretStr

    from aiq_flows.gateway.schema import PATH_1_1
    from blocks import AiqConnection, ChargesDatabase, CrmDatabase, JobsDatabase, ResultsFolder, StateStore

    credentials = json.loads(
        run([str(BIN / "aiq-sandbox"), "credentials", "--db", str(STATE / "sandbox.db")], dict(os.environ))
    )
    for entity in credentials["entities"]:
        AiqConnection(
            endpoint_url=sandbox_base + PATH_1_1,
            company_id=entity["company_id"],
            partner_key=SecretStr(credentials["partner_key"]),
            user_key=SecretStr(entity["user_key"]),
        ).save(
            entity["company_id"].lower().replace("demo_", "demo-"), overwrite=True
        )  # demo-uk, demo-ie, ...
    CrmDatabase(url=SecretStr(f"sqlite:///{STATE / 'crm.db'}")).save("demo-crm", overwrite=True)
    JobsDatabase(url=SecretStr(f"sqlite:///{STATE / 'jobs.db'}")).save("demo-jobs", overwrite=True)
    ChargesDatabase(url=SecretStr(f"sqlite:///{STATE / 'charges.db'}")).save("demo-charges", overwrite=True)
    StateStore(url=SecretStr(f"sqlite:///{STATE / 'store.db'}")).save("demo-store", overwrite=True)
    ResultsFolder(path=str(STATE / "results")).save("demo-results", overwrite=True)
    # The group's other entities: a second UK company's CRM, and the Irish company's, read through
    # the demo's Irish mapping (euro, Irish VAT).
    from aiq_flows.mappings import DEMO_CRM_IE
    from blocks import SqlSalesSource

    CrmDatabase(url=SecretStr(f"sqlite:///{STATE / 'crm-uk2.db'}")).save("demo-uk2-crm", overwrite=True)
    SqlSalesSource(
        url=SecretStr(f"sqlite:///{STATE / 'crm-ie.db'}"), mapping=DEMO_CRM_IE.read_text(encoding="utf-8")
    ).save("demo-ie-crm", overwrite=True)


def results(flow_run_name: str, flow: str = "nightly-sales-sync") -> list[dict[str, str]]:
    """A run's full results: one row per sale, from its results file."""
    import csv

    [file] = (STATE / "results" / flow).glob(f"*-{flow_run_name}.csv")
    with file.open(encoding="utf-8") as rows:
        return list(csv.DictReader(rows))


def report(flow_run_id: str, key: str = "nightly-sales-sync-report") -> list[dict[str, Any]]:
    """A run's report artifact: one row per sale (or per job)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
                key=ArtifactFilterKey(any_=[key]),
            )
        )
    data = artifacts[0].data if artifacts else "[]"
    return list(json.loads(data) if isinstance(data, str) else data)


def pairs_line(flow_run_id: str) -> str:
    rows = report(flow_run_id, "back-to-back-pairs")
    posted = [row for row in rows if row["outcome"] == "posted"]
    margin = sum((Decimal(row["margin"]) for row in posted), Decimal(0))
    return f"  pairs posted   : {len(posted)} of {len(rows)} jobs (margin {margin})"


def parity_line(flow_run_id: str) -> str:
    rows = report(flow_run_id, "intercompany-pairs")
    return f"  pairs in parity: {len([row for row in rows if row['parity'] == 'ok'])} of {len(rows)} charges"


def seed_demo_payments(crm_url: str) -> int:
    """Payments for some of the sales the nightly sync just posted, as a payment provider would
    record them: paid in full, in part, overpaid, one naming no invoice, and a chargeback."""
    from sqlalchemy.orm import Session

    from aiq_flows.sources.crm_sql import CrmPayment, CrmSale, SqlCrm
    from blocks import AiqConnection
    from tasks.typed_prefect import load_block

    crm = SqlCrm(crm_url)
    gateway = load_block(AiqConnection, "demo-uk").gateway()
    try:
        with Session(crm.engine) as session, session.begin():
            posted = (
                session.query(CrmSale)
                .filter(CrmSale.aiq_status == "posted")
                .order_by(CrmSale.id)
                .limit(6)
                .all()
            )
            rows = []
            for number, sale in enumerate(posted, start=1):
                found = gateway.transactions_by_external_reference(
                    f"S-{sale.id}", datetime(2000, 1, 1), datetime(2100, 1, 1), ["SI"]
                )
                if not found:
                    continue
                owed = Decimal(str(found[0].ControlAmount))
                amount = {2: (owed / 2).quantize(Decimal("0.01")), 3: owed + Decimal("25.00")}.get(
                    number, owed
                )
                named = "" if number == 5 else str(sale.id)
                rows.append(
                    CrmPayment(
                        id=number,
                        customer_code=found[0].AccountCode,
                        paid_on=date.today(),
                        amount=amount,
                        sale_ids=named,
                        kind="payment",
                    )
                )
            if rows:
                last = rows[-1]
                rows.append(
                    CrmPayment(
                        id=len(rows) + 1,
                        customer_code=last.customer_code,
                        paid_on=date.today(),
                        amount=last.amount,
                        kind="chargeback",
                        refund_of=str(last.id),
                    )
                )
            session.add_all(rows)
            return len(rows)
    finally:
        gateway.close()
        crm.dispose()


def receipts_line(flow_run_id: str) -> str:
    rows = report(flow_run_id, "receipts-sync")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    shown = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    return f"  payments       : {len(rows)} read: {shown}"


def main() -> int:
    with demo_stack() as (env, sandbox_base, api):
        os.environ.update({k: env[k] for k in ("PREFECT_HOME", "PREFECT_API_URL", "DO_NOT_TRACK")})
        from aiq_flows.sources.crm_sql import SqlCrm
        from aiq_flows.sources.demo_crm import seed_demo_crm
        from aiq_flows.sources.demo_dirty_rows import plant_dirty_rows
        from aiq_flows.sources.demo_intercompany import seed_demo_charges
        from aiq_flows.sources.demo_jobs import seed_demo_jobs
        from aiq_flows.sources.intercompany_sql import SqlCharges
        from aiq_flows.sources.jobs_sql import SqlJobs

        say("registering blocks (keys as SecretStr) and seeding the demo CRM")
        register_blocks(sandbox_base)
        crm = SqlCrm(f"sqlite:///{STATE / 'crm.db'}")
        seeded = seed_demo_crm(crm)
        dirty = plant_dirty_rows(crm, start_id=seeded.sales + 1, today=date.today())
        sales = seeded.sales + len(dirty.kinds) + len(dirty.colliding)
        say(
            f"demo CRM: {sales} sales, {seeded.customers} customers, {len(seeded.bad_rows)} bad rows and "
            f"{sales - seeded.sales} dirty ones (text in dates, '£12.00', control characters...)"
        )
        for other in ("crm-uk2.db", "crm-ie.db"):  # the group's other two entities
            seed_demo_crm(SqlCrm(f"sqlite:///{STATE / other}"), sales=60, start_id=1)
        jobs = seed_demo_jobs(SqlJobs(f"sqlite:///{STATE / 'jobs.db'}"))
        say(f"demo jobs: {len(jobs.job_ids)} back-to-back jobs, {len(jobs.bad)} bad ones")
        charges = seed_demo_charges(SqlCharges(f"sqlite:///{STATE / 'charges.db'}"))
        say(
            f"demo intercompany charges: {len(charges.charge_ids)}, "
            f"{len(charges.unconnected)} without a connection"
        )
        say("creating the process work pool and deploying from prefect.yaml")
        run(
            [str(BIN / "prefect"), "work-pool", "create", "aiq-process", "--type", "process", "--overwrite"],
            env,
        )
        run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], env)
        ensure_write_limits(["demo-uk", "demo-ie", "demo-uk2"], env)

        from prefect.deployments import run_deployment

        processes = Processes()
        try:
            say("starting a worker on the aiq-process pool")
            processes.start(
                "worker",
                [str(BIN / "prefect"), "worker", "start", "--pool", "aiq-process", "--name", "demo-worker"],
                env,
            )
            say(f"running {DEPLOYMENT} through the worker")
            flow_run = run_deployment(DEPLOYMENT, timeout=600, poll_interval=2)
            state = flow_run.state
            rows = results(flow_run.name)
            counts: dict[str, int] = {}
            for row in rows:
                counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
            ui = api.removesuffix("/api")
            print()
            print(f"  flow run       : {flow_run.name} -> {state.name if state else 'unknown'}")
            print(f"  sales read     : {len(rows)}")
            for outcome in ("created", "already_present", "held", "quarantined", "failed"):
                print(f"  {outcome:<15}: {counts.get(outcome, 0)}")
            print(f"  adds up        : {sum(counts.values()) == len(rows) == sales}")
            print(f"  Prefect UI     : {ui}/runs/flow-run/{flow_run.id}")
            print()
            if not (state and state.is_completed()):
                say(f"the run did not complete; see {STATE}/worker.log")
                return 1
            paid = seed_demo_payments(f"sqlite:///{STATE / 'crm.db'}")
            runs = (
                (RECEIPTS, f"{paid} payments: receipts and allocations", receipts_line),
                (RELEASE, "months of deferred subscriptions due by today", None),
                (BACK_TO_BACK, "purchase and sales legs with markup and BI codes", pairs_line),
                (INTERCOMPANY, "DEMO_UK, DEMO_IE, DEMO_UK2", parity_line),
            )
            for deployment, what, describe in runs:
                say(f"running {deployment} ({what})")
                other = run_deployment(deployment, timeout=600, poll_interval=2)
                name = deployment.split("/")[0]
                print(f"\n  {name:<15}: {other.name} -> {other.state.name if other.state else 'unknown'}")
                if describe is not None:
                    print(describe(str(other.id)))
                print(f"  Prefect UI     : {ui}/runs/flow-run/{other.id}\n")
                if not (other.state and other.state.is_completed()):
                    say(f"{deployment} did not complete; see {STATE}/worker.log")
                    return 1
            if not group_run(ui) or not salesforce_run(ui):
                return 1
            if os.environ.get("DEMO_EXIT") == "1":
                return 0
            say(f"the UI stays up at {ui} until you press Ctrl-C")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                print()
            return 0
        finally:
            processes.stop_all()


GROUP = "group-nightly-sync/group-nightly-sync"


def group_run(ui: str) -> bool:
    """The group deployment over the sandbox's three entities, each entity's sync a run of its own."""
    from prefect.deployments import run_deployment

    say(f"running {GROUP} (DEMO_UK, DEMO_UK2, DEMO_IE side by side)")
    group = run_deployment(GROUP, timeout=900, poll_interval=2)
    print(f"\n  group          : {group.name} -> {group.state.name if group.state else 'unknown'}")
    for row in report(str(group.id), "group-nightly-sync-entities"):
        print(
            f"  {row['entity']:<15}: {row['run']} -> {row['state']}, created {row['created']}, "
            f"quarantined {row['quarantined']}, failed {row['failed']}"
        )
    print(f"  Prefect UI     : {ui}/runs/flow-run/{group.id}\n")
    if not (group.state and group.state.is_completed()):
        say(f"the group run did not complete; see {STATE}/worker.log")
        return False
    return True


def salesforce_run(ui: str) -> bool:
    """The nightly sync once more, its sales straight from Salesforce: the local stand-in
    (Salesforce's REST API over HTTPS), read through the shipped Opportunities mapping."""
    from prefect.deployments import run_deployment
    from pydantic import SecretStr

    from aiq_flows.mappings import SALESFORCE_OPPORTUNITIES
    from aiq_flows.sandbox.salesforce.demo import seed_org
    from aiq_flows.sandbox.salesforce.server import SalesforceStandIn
    from blocks.salesforce import SalesforceSource

    with SalesforceStandIn(directory=STATE / "salesforce") as standin:
        seeded = seed_org(standin.org, opportunities=40)
        SalesforceSource(
            login_url=standin.url,
            client_id=standin.org.client_id,
            client_secret=SecretStr(standin.org.client_secret),
            mapping=SALESFORCE_OPPORTUNITIES.read_text(encoding="utf-8"),
            ca_bundle=standin.ca_file,
        ).save("demo-salesforce", overwrite=True)
        say(f"running {DEPLOYMENT} from Salesforce (a local stand-in at {standin.url})")
        flow_run = run_deployment(
            DEPLOYMENT,
            parameters={"crm_database": "salesforce-source/demo-salesforce"},
            timeout=600,
            poll_interval=2,
        )
        written = [o for o in standin.org.all("Opportunity") if o["AIQ_Status__c"] == "posted"]
        print(
            f"\n  salesforce     : {flow_run.name} -> {flow_run.state.name if flow_run.state else 'unknown'}"
        )
        print(f"  opportunities  : {len(written)} of {len(seeded.won)} closed-won invoiced, IDs written back")
        print(f"  Prefect UI     : {ui}/runs/flow-run/{flow_run.id}\n")
        if not (flow_run.state and flow_run.state.is_completed()):
            say(f"the Salesforce run did not complete; see {STATE}/worker.log")
            return False
    return True


if __name__ == "__main__":
    sys.exit(main())
