"""The secrets scan: every flow run against one sandbox, over API 1.1 and 2.0, with tokens
expiring and answers lost; then every log the runs wrote (captured, stdout/stderr, the Prefect
API), every artifact, the store and every source database are searched for the seeded partner
and user keys, the client secrets, and every token the sandbox issued. Zero hits."""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from datetime import date
from typing import Any

import pytest
from pydantic import SecretStr

from aiq_flows.sources.demo_intercompany import seed_demo_charges
from aiq_flows.sources.demo_jobs import seed_demo_jobs
from aiq_flows.sources.intercompany_sql import SqlCharges
from aiq_flows.sources.jobs_sql import SqlJobs
from blocks import AiqConnection, ChargesDatabase, JobsDatabase
from flows.back_to_back_invoicing import back_to_back_invoicing
from flows.deferred_revenue_release import deferred_revenue_release
from flows.intercompany_pairing import intercompany_pairing
from tests.conftest import DemoBlocks
from tests.support.processes import Sandbox
from tests.test_nightly_sales_sync import _dump, run_sync, seed


def _prefect_everything() -> str:
    """Every log line and every artifact the Prefect API holds."""
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = [
            log.message
            for offset in range(0, 20_000, 200)
            for log in client.read_logs(limit=200, offset=offset)
        ]
        artifacts = [
            json.dumps(a.data, default=str) + str(a.description)
            for offset in range(0, 2000, 200)
            for a in client.read_artifacts(limit=200, offset=offset)
        ]
    return "\n".join(logs + artifacts)


def test_no_secret_or_token_anywhere_after_every_flow(
    sandbox: Sandbox,
    demo_blocks: DemoBlocks,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    suffix = uuid.uuid4().hex[:6]
    app = sandbox.app()
    entities = []
    for entity in ("DEMO_UK", "DEMO_IE", "DEMO_UK2"):
        name = f"scan-{entity.lower().replace('_', '-')}-{suffix}"
        AiqConnection(
            api_version="2.0",
            endpoint_url=sandbox.url_2_0,
            company_id=entity,
            client_id=app["client_id"],
            client_secret=SecretStr(app["client_secret"]),
            timeout_seconds=10,
        ).save(name)
        entities.append(name)
    jobs_url, charges_url = f"sqlite:///{tmp_path / 'jobs.db'}", f"sqlite:///{tmp_path / 'charges.db'}"
    JobsDatabase(url=SecretStr(jobs_url)).save(f"jobs-{suffix}")
    ChargesDatabase(url=SecretStr(charges_url)).save(f"charges-{suffix}")
    seed(demo_blocks, sales=40)
    seed_demo_jobs(SqlJobs(jobs_url), count=6, today=date(2026, 11, 20))
    seed_demo_charges(SqlCharges(charges_url), count=3, today=date(2026, 11, 20))
    sandbox.faults(
        {"kind": "expire_token", "operation": "*", "rate": 0.05},
        {
            "kind": "drop_response",
            "operation": "CreateBatchSalesInvoiceBulkGetBackTransactionIDs",
            "count": 1,
        },
        seed=7,
    )

    run_sync(demo_blocks, chunk_size=10)  # API 1.1
    deferred_revenue_release(
        aiq_connection=demo_blocks.aiq, state_store=demo_blocks.store, run_date=date(2027, 3, 1)
    )
    back_to_back_invoicing(
        aiq_connection=entities[0], jobs_database=f"jobs-{suffix}", state_store=demo_blocks.store
    )
    intercompany_pairing(
        aiq_connections=entities, charges_database=f"charges-{suffix}", state_store=demo_blocks.store
    )

    out, err = capfd.readouterr()
    with sqlite3.connect(sandbox.db) as db:
        tokens = [
            row[0] for row in db.execute("SELECT token FROM tokens UNION SELECT token FROM access_tokens")
        ]
    secrets = [
        sandbox.credentials["partner_key"],
        *(entity["user_key"] for entity in sandbox.credentials["entities"]),
        *(a["client_secret"] for a in sandbox.credentials["apps"]),
        *tokens,
    ]
    assert len(tokens) >= 6  # logins, access and refresh tokens were issued, several renewed
    haystacks = {
        "captured log records": caplog.text,
        "stdout": out,
        "stderr": err,
        "Prefect logs and artifacts": _prefect_everything(),
        "store": _dump(demo_blocks.store_url),
        "crm": _dump(demo_blocks.crm_url),
        "jobs": _dump(jobs_url),
        "charges": _dump(charges_url),
    }
    hits = [
        (where, secret[:4] + "...")
        for where, text in haystacks.items()
        for secret in secrets
        if secret in text
    ]
    assert hits == []


def test_the_suite_wide_scan_finds_a_secret_wherever_it_is_planted(tmp_path: Any) -> None:
    """The scan that runs after the whole suite (tests/conftest.py) finds a planted token inside
    binary data and inside a longer run of URL-safe characters, and leaves AIQ's own files alone."""
    import secrets as random_secrets

    from tests.support.secrets_scan import files_to_scan, hits

    token, key = random_secrets.token_urlsafe(32), random_secrets.token_urlsafe(24)
    (tmp_path / "store.db").write_bytes(b"\x00\x01SQLite" + b"abc_" + token.encode() + b"-xyz\xff")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "results.csv").write_text(f"sale,note\n1,key={key}\n")
    (tmp_path / "sandbox.log").write_text(token)  # AIQ's side: holds them by design
    (tmp_path / "clean.log").write_text("nothing to see " + "A" * 100)

    found = hits(files_to_scan([tmp_path]), {token, key, random_secrets.token_urlsafe(32)})

    assert sorted((path.name, prefix) for path, prefix in found) == sorted(
        [("store.db", token[:4]), ("results.csv", key[:4])]
    )
