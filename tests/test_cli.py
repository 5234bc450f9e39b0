"""`aiq-flows`, the console script, as a user runs it on their own data: `mapping check` (one JSON
line per sale, then `checked: N sales, V valid, Q quarantined`; exit 2 and one line when the
mapping does not fit), `sync nightly` (the flow once, keys from the environment only, the summary
as JSON on its last line), `db upgrade`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.support.crm_shapes import DEALS, deal_id
from tests.support.processes import REPO, Sandbox

AIQ_FLOWS = str(Path(sys.executable).parent / "aiq-flows")


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AIQ_FLOWS, *args], capture_output=True, text=True, timeout=300, env=env or dict(os.environ), cwd=cwd
    )


@pytest.fixture
def deals(tmp_path: Path) -> tuple[str, Path]:
    url = f"sqlite:///{tmp_path / 'deals.db'}"
    engine = create_engine(url)
    DEALS.create(engine)
    engine.dispose()
    mapping = tmp_path / "deals.yaml"
    mapping.write_text(DEALS.mapping, encoding="utf-8")
    return url, mapping


def test_mapping_check_reads_and_validates_each_sale_without_aiq(deals: tuple[str, Path]) -> None:
    url, mapping = deals
    result = run("mapping", "check", "--mapping", str(mapping), "--url", url)
    assert result.returncode == 0, result.stderr
    *sales, last = result.stdout.splitlines()
    assert last == "checked: 10 sales, 9 valid, 1 quarantined"  # without AIQ a tax code is not checked
    lines = [json.loads(line) for line in sales]
    assert {line["sale_id"] for line in lines} == {*DEALS.valid, *DEALS.quarantined}
    [refused] = [line for line in lines if "quarantined" in line]
    assert refused["sale_id"] == deal_id(7) and refused["field"] == "sale_date"
    valid = next(line["valid"] for line in lines if line["sale_id"] == deal_id(1))
    assert valid["lines"][0]["net_amount"] == "299.98" and valid["customer"]["key"] == "Fabrikam Ltd"

    limited = run("mapping", "check", "--mapping", str(mapping), "--url", url, "--limit", "3")
    assert limited.stdout.splitlines()[-1] == "checked: 3 sales, 3 valid, 0 quarantined"


def test_mapping_check_against_aiq_checks_tax_codes_and_accounts(
    deals: tuple[str, Path], sandbox: Sandbox
) -> None:
    url, mapping = deals
    env = dict(os.environ)
    env |= {
        "AIQ_PARTNER_KEY": sandbox.credentials["partner_key"],
        "AIQ_USER_KEY": sandbox.entity("DEMO_UK")["user_key"],
    }
    result = run(
        "mapping", "check", "--mapping", str(mapping), "--url", url,
        "--aiq-endpoint", sandbox.url, "--company", "DEMO_UK",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "checked: 10 sales, 8 valid, 2 quarantined"
    assert "'ZZ' is not an AccountsIQ tax code" in result.stdout
    assert env["AIQ_USER_KEY"] not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            ("    date: close_date", "    date: closed"),
            "sales.columns.date: no column 'closed' in table 'deals'",
        ),
        (("  from: deal_lines", "  from: lines"), "lines.from: no table or view 'lines' in the database"),
        (("version: 1", "version: one"), "deals.yaml: version: must be 1"),
    ],
)
def test_a_mapping_that_does_not_fit_exits_2_with_one_line(
    deals: tuple[str, Path], change: tuple[str, str], says: str
) -> None:
    url, mapping = deals
    mapping.write_text(DEALS.mapping.replace(*change, 1), encoding="utf-8")
    result = run("mapping", "check", "--mapping", str(mapping), "--url", url)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr


def test_sync_nightly_runs_the_flow_once_with_keys_from_the_environment(
    deals: tuple[str, Path], sandbox: Sandbox, tmp_path: Path
) -> None:
    url, mapping = deals
    args = ["sync", "nightly", "--mapping", str(mapping), "--url", url, "--aiq-endpoint", sandbox.url]
    args += ["--company", "DEMO_UK"]
    keyless = run(*args, cwd=tmp_path)
    assert keyless.returncode == 2
    assert "AIQ_PARTNER_KEY and AIQ_USER_KEY in the environment" in keyless.stderr

    env = dict(os.environ)
    env |= {
        "AIQ_PARTNER_KEY": sandbox.credentials["partner_key"],
        "AIQ_USER_KEY": sandbox.entity("DEMO_UK")["user_key"],
    }
    planned = run(*args, "--dry-run", env=env, cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr[-2000:]
    assert json.loads(planned.stdout.splitlines()[-1])["to_create"] == len(DEALS.valid)
    assert sandbox.documents() == []

    first = run(*args, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    summary = json.loads(first.stdout.splitlines()[-1])
    assert (summary["created"], summary["quarantined"]) == (len(DEALS.valid), len(DEALS.quarantined))
    assert (tmp_path / "aiq-store.db").exists()  # the store defaults to the current directory
    again = json.loads(run(*args, env=env, cwd=tmp_path).stdout.splitlines()[-1])
    assert again["created"] == 0
    assert Counter(d["external_reference"] for d in sandbox.documents()) == Counter(
        {f"D-{sale_id}": 1 for sale_id in DEALS.valid}
    )
    engine = create_engine(url)
    with engine.connect() as db:
        posted = db.execute(text("SELECT COUNT(*) FROM deals WHERE aiq_txn IS NOT NULL")).scalar()
    engine.dispose()
    assert posted == len(DEALS.valid)
    for output in (first.stdout, first.stderr):
        assert env["AIQ_PARTNER_KEY"] not in output and env["AIQ_USER_KEY"] not in output


def test_db_upgrade_brings_a_store_of_release_0_1_to_this_release(tmp_path: Path) -> None:
    from alembic import command

    from aiq_flows.store.outbox import DocumentStore
    from aiq_flows.store.schema import FIRST, StoreSchemaBehind, _config, head

    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        command.upgrade(_config(connection), FIRST)
        connection.execute(
            text(
                "INSERT INTO aiq_documents (entity, external_reference, kind, source_id, state, "
                "attempts, transaction_id, updated_at) VALUES ('DEMO_UK', 'S-1', 'batch_sales_invoice', "
                "'1', 'posted', 1, 77, '2026-11-20 12:00:00')"
            )
        )
    engine.dispose()
    with pytest.raises(StoreSchemaBehind, match="aiq-flows db upgrade"):
        DocumentStore(url)

    result = run("db", "upgrade", "--url", url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) | {"store": ""} == {
        "store": "",
        "from": FIRST,
        "to": head(),
    }
    store = DocumentStore(url)
    assert store.get("DEMO_UK", ["S-1"])["S-1"].transaction_id == 77
    store.dispose()
