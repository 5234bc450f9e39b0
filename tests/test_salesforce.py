"""Salesforce as the source, through the real simple-salesforce client against the local stand-in
(`aiq_flows.sandbox.salesforce`, Salesforce's REST shapes over HTTPS), and end to end into the AIQ
sandbox under a real Prefect API: 2,000 opportunities paged with queryMore and written back in
collections of 200; a session that expires mid-run; a write-back Salesforce refuses, written on
the next run; the org's API limit reached mid-run; every invoice exactly once throughout."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from aiq_flows.domain.watermark import Watermark
from aiq_flows.mappings import SALESFORCE_OPPORTUNITIES
from aiq_flows.sandbox.salesforce.demo import SeededOrg, seed_org
from aiq_flows.sandbox.salesforce.server import SalesforceStandIn
from aiq_flows.sources.mapping import MappingError, load_mapping
from aiq_flows.sources.salesforce import (
    SalesforceApi,
    SalesforceLogin,
    SalesforceRefused,
    SalesforceSalesSource,
)
from aiq_flows.sources.soql import literal
from blocks.salesforce import SalesforceSource
from flows.nightly_sales_sync import nightly_sales_sync
from tests.conftest import DemoBlocks
from tests.support.processes import Sandbox

MAPPING = SALESFORCE_OPPORTUNITIES.read_text(encoding="utf-8")


@pytest.fixture
def standin(salesforce: SalesforceStandIn) -> SalesforceStandIn:
    return salesforce


def source(standin: SalesforceStandIn, mapping: str = MAPPING) -> SalesforceSalesSource:
    login = SalesforceLogin(
        standin.url, standin.org.client_id, standin.org.client_secret, ca_bundle=standin.ca_file
    )
    return SalesforceSalesSource(SalesforceApi(login), load_mapping(mapping))


def test_soql_literals_are_escaped_and_typed() -> None:
    assert literal("O'Brien \\ Sons") == r"'O\'Brien \\ Sons'"
    assert literal(datetime(2026, 12, 4, 10, 30, 15, 999_000)) == "2026-12-04T10:30:15Z"
    assert literal(datetime(2026, 12, 4, 11, 0, tzinfo=UTC) + timedelta(hours=0)) == "2026-12-04T11:00:00Z"
    assert (literal(date(2026, 12, 4)), literal(Decimal("12.50")), literal(None)) == (
        "2026-12-04",
        "12.50",
        "null",
    )
    with pytest.raises(ValueError, match="control character"):
        literal("bad\x07value")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            ("  from: OpportunityLineItem", "  from: OpportunityProduct"),
            "mapping: lines.from: no object 'OpportunityProduct'",
        ),
        (
            ("    date: CloseDate", "    date: Close_Date__c"),
            "mapping: sales: no field 'Close_Date__c' on Opportunity",
        ),
        (
            ("StageName = 'Closed Won'", "Stage = 'Closed Won'"),
            "mapping: sales.where: Salesforce refuses it: INVALID_FIELD",
        ),
        (
            ("AIQ_Status__c", "AIQ_State__c"),
            "mapping: write_back.columns.status: Opportunity has no field 'AIQ_State__c'",
        ),
        (
            ("  order_by: SortOrder", "  order_by: Sort"),
            "mapping: lines: no field 'Sort' on OpportunityLineItem",
        ),
    ],
)
def test_a_mapping_that_does_not_fit_the_org_is_refused_naming_object_and_field(
    standin: SalesforceStandIn, change: tuple[str, str], says: str
) -> None:
    with pytest.raises(MappingError) as refused:
        source(standin, MAPPING.replace(*change)).check()
    assert str(refused.value).startswith(says), refused.value


def test_write_back_must_go_on_the_sale_itself() -> None:
    with pytest.raises(MappingError, match=r"write_back\.table: 'Account' must be the sales object"):
        SalesforceSalesSource(
            SalesforceApi(SalesforceLogin("https://x", "id", "secret")),
            load_mapping(MAPPING.replace("  table: Opportunity", "  table: Account")),
        )


def test_pages_follow_next_records_url_and_survive_an_expired_session(standin: SalesforceStandIn) -> None:
    seeded = seed_org(standin.org, opportunities=450)
    standin.org.session_requests = 5  # the session expires a few calls into the read
    sf = source(standin)
    seen: list[str] = []
    cursor = None
    while True:
        page = sf.changed_sales(Watermark.beginning(), timedelta(0), limit=200, after=cursor)
        seen += [record["sale_id"] for record in page.records]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert sorted(seen) == sorted([*seeded.won, *seeded.bad]) and len(seen) == len(set(seen))
    assert standin.org.calls["queryMore"] >= 2 and sf.api.logins > 1
    record = next(
        r
        for r in sf.changed_sales(Watermark.beginning(), timedelta(0)).records
        if r["sale_id"] == seeded.won[0]
    )
    assert record["lines"][0]["quantity"] == Decimal("5") and record["lines"][0]["unit_price"] == Decimal(
        "12.5"
    )
    assert record["customer"]["name"] and record["updated_at"].endswith("+0000")


def test_the_orgs_api_limit_stops_with_one_clear_line(standin: SalesforceStandIn) -> None:
    seed_org(standin.org, opportunities=20)
    standin.org.request_limit = 1
    with pytest.raises(SalesforceRefused, match="REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded"):
        source(standin).changed_sales(Watermark.beginning(), timedelta(0))


# --- end to end ---------------------------------------------------------------------------------


def save_block(standin: SalesforceStandIn) -> str:
    name = f"sf-{uuid.uuid4().hex[:8]}"
    SalesforceSource(
        login_url=standin.url,
        client_id=standin.org.client_id,
        client_secret=SecretStr(standin.org.client_secret),
        mapping=MAPPING,
        ca_bundle=standin.ca_file,
    ).save(name)
    return f"salesforce-source/{name}"


def sync(blocks: DemoBlocks, origin: str, **parameters: Any) -> Any:
    return nightly_sales_sync(
        aiq_connection=blocks.aiq, crm_database=origin, state_store=blocks.store, **parameters
    )


def assert_each_won_opportunity_invoiced_once(
    sandbox: Sandbox, standin: SalesforceStandIn, seeded: SeededOrg
) -> None:
    documents = Counter(d["external_reference"] for d in sandbox.documents())
    assert documents == Counter({f"SF-{opportunity}": 1 for opportunity in seeded.won})
    ids = {d["external_reference"]: d["transaction_id"] for d in sandbox.documents()}
    written = {o["Id"]: o for o in standin.org.all("Opportunity")}
    for opportunity in seeded.won:
        assert written[opportunity]["AIQ_Status__c"] == "posted"
        assert int(written[opportunity]["AIQ_Transaction_ID__c"]) == ids[f"SF-{opportunity}"]
    assert {written[o]["AIQ_Status__c"] for o in seeded.bad} == {"quarantined"}
    assert {written[o]["AIQ_Status__c"] for o in seeded.open} == {None}  # left out by the filter


def test_two_thousand_opportunities_paged_and_written_back_in_collections(
    standin: SalesforceStandIn, sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    seeded = seed_org(standin.org, opportunities=2222)  # every tenth still open: 2,000 closed won
    assert len(seeded.won) + len(seeded.bad) == 2000
    origin = save_block(standin)

    first = sync(demo_blocks, origin, page_size=500)
    assert (first["input"], first["created"], first["quarantined"]) == (2000, 1998, 2)
    assert_each_won_opportunity_invoiced_once(sandbox, standin, seeded)
    assert standin.org.calls["queryMore"] >= 3  # 4 pages of 500 from one query
    assert max(standin.org.collection_sizes) == 200
    assert len(standin.org.collection_sizes) == sum(math.ceil(n / 200) for n in (500, 500, 500, 500))

    # The write-back stamped every record: the next run reads them again, finds each posted and
    # unchanged, and writes nothing (no stamp, so the night after reads none).
    standin.org.collection_sizes.clear()
    second = sync(demo_blocks, origin, page_size=500)
    assert (second["created"], second["already_present"]) == (0, 1998)
    assert standin.org.collection_sizes == []
    assert_each_won_opportunity_invoiced_once(sandbox, standin, seeded)


def test_a_session_expiring_mid_run_and_a_refused_write_back_lose_nothing_and_post_nothing_twice(
    standin: SalesforceStandIn, sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    seeded = seed_org(standin.org, opportunities=60)
    locked = seeded.won[:3]
    for opportunity in locked:  # a validation rule refuses these records' update
        standin.org.refuse_updates[opportunity] = "Closed opportunities cannot be edited"
    standin.org.session_requests = 4
    origin = save_block(standin)

    first = sync(demo_blocks, origin)
    assert first["created"] == len(seeded.won)
    assert {standin.org.get("Opportunity", o)["AIQ_Status__c"] for o in locked} == {None}

    standin.org.refuse_updates.clear()  # the admin relaxes the rule
    second = sync(demo_blocks, origin)
    assert second["created"] == 0
    assert_each_won_opportunity_invoiced_once(sandbox, standin, seeded)


def test_the_api_limit_reached_mid_run_stops_it_and_the_next_run_completes(
    standin: SalesforceStandIn, sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    seeded = seed_org(standin.org, opportunities=600)
    origin = save_block(standin)
    standin.org.request_limit = 12  # enough to read and post a page or two, not to finish
    stopped = sync(demo_blocks, origin, page_size=200, return_state=True)
    assert stopped.is_failed() and "REQUEST_LIMIT_EXCEEDED" in str(stopped.message)

    standin.org.request_limit = None  # a new day
    finished = sync(demo_blocks, origin, page_size=200)
    assert finished["created"] + finished["already_present"] == len(seeded.won)
    assert_each_won_opportunity_invoiced_once(sandbox, standin, seeded)
