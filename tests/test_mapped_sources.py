"""CRMs of their own shape (`tests.support.crm_shapes`), each read through the mapping a user
would write, synced end to end into the sandbox under a real Prefect API, on SQLite and
PostgreSQL: a bad mapping stops the run before anything is written; then every valid sale is
posted once, the rest quarantined naming their field; a re-run creates nothing; a CRM that stamps
every update is not re-stamped by the write-back; a deal changed after posting is reported, and
reconciliation over the same mapping finds it."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine

from aiq_flows.store.outbox import DocumentStore
from blocks.crm import SqlSalesSource
from flows.nightly_sales_sync import nightly_sales_sync
from flows.reconciliation import reconciliation
from tests.conftest import DemoBlocks
from tests.support.artifacts import latest_markdown, latest_table
from tests.support.crm_shapes import DEALS, ORDERS, CrmShape
from tests.support.processes import Sandbox

WRITES = ("Create", "Update", "Save", "Post", "Cancel", "Attach")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def crm_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'own-crm.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def crm(crm_url: str) -> Iterator[Engine]:
    engine = create_engine(crm_url)
    yield engine
    engine.dispose()


def save_source(url: str, mapping: str) -> str:
    name = f"own-crm-{uuid.uuid4().hex[:8]}"
    SqlSalesSource(url=SecretStr(url), mapping=mapping).save(name)
    return f"sql-sales-source/{name}"


def sync(blocks: DemoBlocks, source: str, **parameters: Any) -> Any:
    # No overlap: each run reads exactly what changed since the last, so that the runs below
    # show what a re-read costs and what it changes.
    return nightly_sales_sync(
        aiq_connection=blocks.aiq,
        crm_database=source,
        state_store=blocks.store,
        overlap_minutes=0,
        **parameters,
    )


def documents_by_sale(sandbox: Sandbox, shape: CrmShape) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for document in sandbox.documents():
        found.setdefault(document["external_reference"], []).append(document["transaction_id"])
    return found


def write_calls(sandbox: Sandbox) -> int:
    return sum(n for op, n in sandbox.calls().items() if op.startswith(WRITES))


def states(shape: CrmShape, crm: Engine, blocks: DemoBlocks, source: str) -> dict[str, tuple[Any, Any]]:
    """Each sale's status and transaction ID where the source keeps them: its own write-back
    columns, or, read-only, the store."""
    if not shape.read_only:
        return {str(k): v for k, v in shape.written_back(crm).items() if v != (None, None)}
    store = DocumentStore(blocks.store_url)
    try:
        ids = [str(i) for i in [*shape.valid, *shape.quarantined, *shape.filtered]]
        return dict(store.known_records(source, ids))
    finally:
        store.dispose()


@pytest.mark.parametrize("shape", [DEALS, ORDERS], ids=lambda shape: shape.name)
def test_a_crm_of_its_own_shape_syncs_each_sale_once(
    shape: CrmShape, crm: Engine, crm_url: str, sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    shape.create(crm)

    # A column that is not there: one clear line, before anything is written anywhere.
    wrong = save_source(crm_url, shape.mapping.replace("description: ", "description: descrption_", 1))
    failed = sync(demo_blocks, wrong, return_state=True)
    assert failed.is_failed()
    assert "mapping: sales.columns.description: no column 'descrption_" in str(failed.message)
    assert write_calls(sandbox) == 0 and sandbox.documents() == []
    assert states(shape, crm, demo_blocks, wrong) == {}

    source = save_source(crm_url, shape.mapping)
    first = sync(demo_blocks, source)
    posted = documents_by_sale(sandbox, shape)
    assert posted.keys() == {f"{shape.prefix}{sale_id}" for sale_id in shape.valid}
    assert all(len(ids) == 1 for ids in posted.values()), posted  # once each
    assert first["input"] == len(shape.valid) + len(shape.quarantined)  # the filtered never read
    assert (first["created"], first["quarantined"]) == (len(shape.valid), len(shape.quarantined))
    rows = {str(row["sale_id"]): row for row in latest_table("nightly-sales-sync-report")}
    for sale_id, field in shape.quarantined.items():
        assert f"{field}:" in rows[str(sale_id)]["reason"], rows[str(sale_id)]
    written = states(shape, crm, demo_blocks, source)
    assert {k: v for k, v in written.items() if v[0] == "posted"} == {
        str(sale_id): ("posted", posted[f"{shape.prefix}{sale_id}"][0]) for sale_id in shape.valid
    }
    assert {k for k, v in written.items() if v[0] == "quarantined"} == {str(i) for i in shape.quarantined}
    assert not {str(i) for i in shape.filtered} & written.keys()

    # Again: nothing new. A CRM that stamps every update reads its written-back sales once more,
    # finds them unchanged in content and leaves their rows alone, so the next run reads none.
    second = sync(demo_blocks, source)
    assert second["created"] == 0 and documents_by_sale(sandbox, shape) == posted
    if shape.stamps(crm):
        assert second["already_present"] == len(shape.valid)
        assert f"unchanged since posting: {len(shape.valid)}" in latest_markdown("nightly-sales-sync-summary")
    stamped = shape.stamps(crm)
    third = sync(demo_blocks, source)
    # At most the sale at the watermark itself is read again: the window includes its own
    # instant, so that a sale committed later with the same change time is never lost.
    assert third["input"] <= 1 and third["created"] == 0
    assert shape.stamps(crm) == stamped  # the write-back touched nothing

    # A sale edited after it was posted: reported, its invoice left as AIQ holds it.
    edited = shape.valid[0]
    shape.change_one(crm, edited)
    fourth = sync(demo_blocks, source)
    assert fourth["created"] == 0
    changed = [row for row in latest_table("nightly-sales-sync-report") if row["error_code"]]
    assert [(str(row["sale_id"]), row["error_code"]) for row in changed] == [
        (str(edited), "CHANGED_AFTER_POSTING")
    ]
    assert "changed in the source after posting (1)" in latest_markdown("nightly-sales-sync-summary").lower()
    assert Counter(d["external_reference"] for d in sandbox.documents()) == Counter(
        {reference: 1 for reference in posted}
    )

    # Reconciliation over the same mapping (the store's states for the read-only view) finds
    # exactly that sale: its amount in the CRM is no longer the invoice's.
    differences = reconciliation(
        aiq_connection=demo_blocks.aiq,
        crm_database=source,
        state_store=demo_blocks.store,
        from_date=date(2026, 11, 1),
        to_date=date(2026, 11, 30),
        return_state=True,
    )
    assert differences.is_failed()
    assert [(row["difference"], row["reference"]) for row in latest_table("reconciliation-differences")] == [
        ("amount differs", f"{shape.prefix}{edited}")
    ]
