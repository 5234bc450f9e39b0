"""The chaos run at a reduced size (the full-size run is `scripts/chaos.py`): transient failures,
lost answers, expiring tokens, a killed run and a duplicate run at once; then nothing is lost or
posted twice."""

from __future__ import annotations

import pytest

from aiq_flows.sources.crm_sql import SqlCrm
from aiq_flows.sources.demo_crm import seed_demo_crm
from scripts.chaos import chaos
from tests.conftest import DemoBlocks
from tests.support.processes import Sandbox


@pytest.mark.chaos
def test_chaos_loses_nothing_and_posts_nothing_twice(sandbox: Sandbox, demo_blocks: DemoBlocks) -> None:
    seed_demo_crm(SqlCrm(demo_blocks.crm_url), sales=300)
    report = chaos(
        sandbox.base, (demo_blocks.aiq, demo_blocks.crm, demo_blocks.store), demo_blocks.crm_url, 300
    )
    print("\n".join(report.lines()))
    assert report.faults["http_error:*"] >= 3 and report.expiries > 0 and report.killed_after_documents > 0
    assert report.duplicates == 0
    assert report.not_terminal == 0
    assert report.write_back_mismatches == 0
    assert report.ledger_total == 0
    assert report.statuses["posted"] == report.documents > 200
    assert report.passed
