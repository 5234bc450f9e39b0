"""An upgrade from the previous release keeps every record: release 0.1.0 (its own code,
from git, in a process of its own) syncs a CRM into the sandbox and fills its store; this release
refuses that store until `aiq-flows db upgrade` has brought it to the current schema, then runs on
it: nothing re-posted, nothing lost, the watermark where the old release left it. SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import uuid
from collections import Counter
from datetime import date
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import REPO, Sandbox

# The last release that landed (0.1.0). By commit, not by tag: a clone of main carries no tags.
PREVIOUS_RELEASE = "66a2a14123c29fc8f38f4f76e33841217616623a"
AIQ_FLOWS = str(Path(sys.executable).parent / "aiq-flows")

OLD_RUN = """
import json, sys
from datetime import date
from pydantic import SecretStr
from blocks import AiqConnection, CrmDatabase, StateStore
from aiq_flows.sources.crm_sql import SqlCrm
from aiq_flows.sources.demo_crm import seed_demo_crm
from flows.nightly_sales_sync import nightly_sales_sync

a = json.loads(sys.argv[1])
AiqConnection(endpoint_url=a["endpoint"], company_id="DEMO_UK", partner_key=SecretStr(a["partner_key"]),
              user_key=SecretStr(a["user_key"])).save(a["aiq"], overwrite=True)
CrmDatabase(url=SecretStr(a["crm_url"])).save(a["crm"], overwrite=True)
StateStore(url=SecretStr(a["store_url"])).save(a["store"], overwrite=True)
seed_demo_crm(SqlCrm(a["crm_url"]), sales=40, today=date(2026, 11, 25))
summary = nightly_sales_sync(aiq_connection=a["aiq"], crm_database=a["crm"], state_store=a["store"])
print("SUMMARY " + json.dumps(summary))
"""


def previous_release(target: Path) -> Path:
    """The previous release's files, from git (a clone of main holds the commit in its history)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", PREVIOUS_RELEASE], capture_output=True
    )
    if archive.returncode != 0:
        pytest.fail(f"{PREVIOUS_RELEASE} is not in this checkout's history: {archive.stderr.decode()[:200]}")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_the_previous_releases_store_is_upgraded_and_nothing_is_posted_twice_or_lost(
    sandbox: Sandbox, tmp_path: Path, store_url: str
) -> None:
    from aiq_flows.sources.crm_sql import SqlCrm
    from aiq_flows.sources.demo_crm import seed_demo_crm
    from aiq_flows.store.outbox import DocumentStore
    from aiq_flows.store.schema import FIRST, StoreSchemaBehind, head
    from flows.nightly_sales_sync import nightly_sales_sync

    old = previous_release(tmp_path / "release-0.1")
    suffix = uuid.uuid4().hex[:8]
    names = {"aiq": f"aiq-{suffix}", "crm": f"crm-{suffix}", "store": f"store-{suffix}"}
    crm_url = f"sqlite:///{tmp_path / 'crm.db'}"
    arguments: dict[str, Any] = {
        **names,
        "endpoint": sandbox.url,
        "partner_key": sandbox.credentials["partner_key"],
        "user_key": sandbox.entity("DEMO_UK")["user_key"],
        "crm_url": crm_url,
        "store_url": store_url,
    }
    env = {**os.environ, "PYTHONPATH": f"{old / 'src'}{os.pathsep}{old}"}
    ran = subprocess.run(
        [sys.executable, "-c", OLD_RUN, json.dumps(arguments)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    old_summary = json.loads(ran.stdout.split("SUMMARY ", 1)[1])
    assert old_summary["created"] > 20
    posted = Counter(d["external_reference"] for d in sandbox.documents())

    with pytest.raises(StoreSchemaBehind, match=r"aiq-flows db upgrade"):
        DocumentStore(store_url)  # this release never writes to a store it has not upgraded
    upgrade = subprocess.run([AIQ_FLOWS, "db", "upgrade", "--url", store_url], capture_output=True, text=True)
    assert upgrade.returncode == 0, upgrade.stderr
    assert json.loads(upgrade.stdout.splitlines()[-1])["from"] == FIRST
    assert json.loads(upgrade.stdout.splitlines()[-1])["to"] == head()

    store = DocumentStore(store_url)
    watermark = f"nightly-sales-sync:{names['crm']}:DEMO_UK"
    kept = store.watermark(watermark)
    documents = store.get("DEMO_UK", list(posted))
    store.dispose()
    assert kept.updated_at.year == 2026 and kept.record_id  # where the old release left it
    assert {ref: record.transaction_id for ref, record in documents.items()} == {
        d["external_reference"]: d["transaction_id"] for d in sandbox.documents()
    }

    again = nightly_sales_sync(
        aiq_connection=names["aiq"], crm_database=names["crm"], state_store=names["store"]
    )
    assert again["created"] == 0 and Counter(d["external_reference"] for d in sandbox.documents()) == posted
    seed_demo_crm(SqlCrm(crm_url), sales=10, start_id=41, today=date(2026, 11, 26))
    later = nightly_sales_sync(
        aiq_connection=names["aiq"], crm_database=names["crm"], state_store=names["store"]
    )
    now = Counter(d["external_reference"] for d in sandbox.documents())
    assert set(now.values()) == {1} and later["created"] == len(now) - len(posted) > 0
    assert all(int(ref.removeprefix("S-")) > 40 for ref in now - posted)
