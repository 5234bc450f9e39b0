"""Deferred revenue end to end under a real Prefect API against the sandbox: the nightly sync
invoices a deferred sale in full to deferred revenue and stores its schedule; the monthly release
posts each month exactly once, catches up, follows the closed-period policy and empties the
deferred balance when the sale is credited."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.orm import Session

from aiq_flows.domain.deferrals import ClosedPeriodPolicy
from aiq_flows.sources.crm_sql import CrmCustomer, CrmSale, CrmSaleLine, SqlCrm
from flows.deferred_revenue_release import deferred_revenue_release
from flows.nightly_sales_sync import nightly_sales_sync
from tests.conftest import DemoBlocks
from tests.support.processes import Sandbox
from tests.test_gateway_sandbox import gateway_for

JOURNAL = "CreateGeneralJournalGetBackTransactionID"
DEFERRED, REVENUE = "2400", "4100"


def add_deferred_sale(
    blocks: DemoBlocks,
    sale_id: int,
    sold: date,
    start: date,
    end: date | None,
    net: str = "1000.00",
    department: str | None = "SUBS",
    months: int | None = None,
) -> None:
    crm = SqlCrm(blocks.crm_url)
    crm.create_schema()
    with Session(crm.engine) as session, session.begin():
        customer = session.get(CrmCustomer, 1) or CrmCustomer(
            id=1, account_key="acme01", name="Acme Industries plc", updated_at=datetime(2025, 1, 1)
        )
        session.add(
            CrmSale(
                id=sale_id,
                reference=f"SUB-{sale_id}",
                customer=customer,
                sale_date=sold,
                currency="GBP",
                description=f"Annual subscription {sale_id}",
                updated_at=datetime(2026, 1, 1, 9, sale_id % 60),
                service_start=start,
                service_end=end,
                service_months=months,
                lines=[
                    CrmSaleLine(
                        line_no=1,
                        description="Support subscription, 12 months",
                        gl_account_code=REVENUE,
                        tax_code="T1",
                        net_amount=Decimal(net),
                        tax_amount=Decimal(net) / 5,
                        department_id=department,
                    )
                ],
            )
        )
    crm.dispose()


def credit_sale(blocks: DemoBlocks, sale_id: int) -> None:
    crm = SqlCrm(blocks.crm_url)
    with Session(crm.engine) as session, session.begin():
        sale = session.get(CrmSale, sale_id)
        assert sale is not None
        sale.credited_at = sale.updated_at = datetime(2026, 5, 2, 10)
    crm.dispose()


def sync(blocks: DemoBlocks) -> dict[str, Any]:
    return nightly_sales_sync(aiq_connection=blocks.aiq, crm_database=blocks.crm, state_store=blocks.store)


def release(blocks: DemoBlocks, run_date: date, **options: Any) -> dict[str, Any]:
    return deferred_revenue_release(
        aiq_connection=blocks.aiq, state_store=blocks.store, run_date=run_date, **options
    )


def latest_table(key: str) -> list[dict[str, Any]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifact = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort="CREATED_DESC", limit=1
        )[0]
    return list(json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data)


def balance(sandbox: Sandbox, gl: str) -> Decimal:
    return Decimal(sandbox.trial_balance().get(gl, "0"))


def journals(sandbox: Sandbox, sale_id: int) -> list[str]:
    return sorted(
        d["external_reference"]
        for d in sandbox.documents()
        if d["external_reference"].startswith(f"DEF-S-{sale_id}-")
    )


def test_invoice_then_twelve_releases_empty_deferred_revenue_into_revenue(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    add_deferred_sale(demo_blocks, 1, date(2026, 1, 1), date(2026, 1, 1), date(2026, 12, 31))
    assert sync(demo_blocks)["created"] == 1
    assert (balance(sandbox, DEFERRED), balance(sandbox, REVENUE)) == (Decimal("-1000.00"), 0)
    schedule = latest_table("deferred-revenue-schedules")
    assert [(row["month"], row["release"]) for row in schedule[:2]] == [
        ("2026-01", "83.34"),
        ("2026-02", "83.34"),
    ]
    assert [row["deferred_balance"] for row in schedule] == [
        str(Decimal("1000.00") - sum(Decimal(r["release"]) for r in schedule[: n + 1])) for n in range(12)
    ]
    assert schedule[-1]["deferred_balance"] == "0.00"

    summary = release(demo_blocks, date(2027, 1, 1))
    assert summary["created"] == 12
    assert journals(sandbox, 1) == [f"DEF-S-1-2026{m:02d}" for m in range(1, 13)]
    assert (balance(sandbox, DEFERRED), balance(sandbox, REVENUE)) == (0, Decimal("-1000.00"))
    amounts = sorted(
        Decimal(d["control_amount"]) for d in sandbox.documents() if d["type"] == "GeneralJournal"
    )
    assert amounts == [Decimal("83.33")] * 8 + [Decimal("83.34")] * 4
    gateway = gateway_for(sandbox)
    for document in sandbox.documents():
        if document["type"] == "GeneralJournal":  # debit deferred, credit revenue, BI code on both
            posted = gateway.get_transaction(document["transaction_id"])
            assert posted is not None
            assert [(p.GLAccountCode, p.Amount > 0, p.DepartmentID) for p in posted.Lines] == [
                (DEFERRED, True, "SUBS"),
                (REVENUE, False, "SUBS"),
            ]


def test_running_the_release_twice_in_a_month_posts_nothing_the_second_time(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    add_deferred_sale(demo_blocks, 2, date(2026, 1, 1), date(2026, 1, 1), date(2026, 12, 31))
    sync(demo_blocks)
    assert release(demo_blocks, date(2026, 3, 31))["created"] == 3
    calls = sandbox.calls()[JOURNAL]
    assert release(demo_blocks, date(2026, 3, 31))["journals"] == 0
    assert sandbox.calls()[JOURNAL] == calls


def test_missed_months_are_caught_up(sandbox: Sandbox, demo_blocks: DemoBlocks) -> None:
    add_deferred_sale(demo_blocks, 3, date(2026, 1, 1), date(2026, 1, 1), date(2026, 12, 31))
    sync(demo_blocks)
    release(demo_blocks, date(2026, 1, 31))
    assert release(demo_blocks, date(2026, 5, 31))["created"] == 4  # February to May, nobody ran in between
    assert journals(sandbox, 3) == [f"DEF-S-3-2026{m:02d}" for m in range(1, 6)]


def test_all_twelve_up_front_with_their_own_dates(sandbox: Sandbox, demo_blocks: DemoBlocks) -> None:
    add_deferred_sale(demo_blocks, 4, date(2026, 1, 1), date(2026, 1, 1), date(2026, 12, 31))
    sync(demo_blocks)
    assert release(demo_blocks, date(2026, 1, 1), post_all_upfront=True)["created"] == 12
    dates = sorted(d["transaction_date"][:10] for d in sandbox.documents() if d["type"] == "GeneralJournal")
    assert dates[0] == "2026-01-31" and dates[-1] == "2026-12-31"


def test_closed_period_policy_fail_stops_that_month_with_a_clear_message(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    # service from January 2025, whose general ledger is closed in the sandbox; invoiced in April
    add_deferred_sale(demo_blocks, 5, date(2025, 4, 15), date(2025, 1, 1), date(2025, 12, 31))
    sync(demo_blocks)
    state = release(demo_blocks, date(2025, 2, 28), return_state=True)
    assert state.is_failed()
    with pytest.raises(
        RuntimeError, match=r"DEF-S-5-202501: the general ledger period for 2025-01 is closed"
    ):
        state.result()
    assert journals(sandbox, 5) == ["DEF-S-5-202502"]  # the open month was still released


def test_closed_period_policy_first_open_period_posts_there_and_says_so(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    add_deferred_sale(demo_blocks, 6, date(2025, 4, 15), date(2025, 1, 1), date(2025, 12, 31))
    sync(demo_blocks)
    release(demo_blocks, date(2025, 2, 28), closed_period_policy=ClosedPeriodPolicy.FIRST_OPEN_PERIOD)
    january = sandbox.documents(external_reference="DEF-S-6-202501")
    assert [d["transaction_date"][:10] for d in january] == ["2025-02-01"]
    posted = gateway_for(sandbox).get_transaction(january[0]["transaction_id"])
    assert posted is not None
    assert all(
        "release for 2025-01, posted in the first open period" in (p.Description or "") for p in posted.Lines
    )


def test_a_credit_mid_schedule_releases_exactly_the_remainder(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    add_deferred_sale(demo_blocks, 7, date(2026, 1, 1), date(2026, 1, 1), date(2026, 12, 31))
    sync(demo_blocks)
    release(demo_blocks, date(2026, 4, 30))  # January to April: 4 x 83.34
    assert balance(sandbox, DEFERRED) == Decimal("-1000.00") + 4 * Decimal("83.34")
    credit_sale(demo_blocks, 7)
    sync(demo_blocks)  # sees the credit: the sale is already invoiced, its schedule is flagged
    assert release(demo_blocks, date(2026, 5, 31))["created"] == 1  # one credit journal, no May release
    credit = sandbox.documents(external_reference="DEF-S-7-CR")
    assert [Decimal(d["control_amount"]) for d in credit] == [Decimal("666.64")]  # 8 x 83.33
    assert balance(sandbox, DEFERRED) == 0
    assert release(demo_blocks, date(2027, 1, 1))["journals"] == 0  # the future months are gone


def test_a_lost_journal_answer_never_duplicates(sandbox: Sandbox, demo_blocks: DemoBlocks) -> None:
    add_deferred_sale(demo_blocks, 8, date(2026, 1, 1), date(2026, 1, 1), date(2026, 12, 31))
    sync(demo_blocks)
    sandbox.faults({"kind": "drop_response", "operation": JOURNAL, "rate": 0.5}, seed=4)
    release(demo_blocks, date(2027, 1, 1))
    sandbox.clear_faults()
    release(demo_blocks, date(2027, 1, 1))
    assert journals(sandbox, 8) == [f"DEF-S-8-2026{m:02d}" for m in range(1, 13)]
    assert balance(sandbox, DEFERRED) == 0


def test_a_service_given_as_start_and_months(sandbox: Sandbox, demo_blocks: DemoBlocks) -> None:
    add_deferred_sale(demo_blocks, 9, date(2026, 3, 10), date(2026, 3, 15), None, net="600.00", months=6)
    sync(demo_blocks)
    assert release(demo_blocks, date(2026, 12, 31))["created"] == 7  # 15 Mar to 14 Sep: 7 calendar months
    assert balance(sandbox, DEFERRED) == 0 and balance(sandbox, REVENUE) == Decimal("-600.00")
