"""The nightly sales sync under a real Prefect API against the sandbox over HTTP.

What matters most is tested hardest: a re-run, a lost answer after AIQ committed, two runs at
once, a lost store, an expiring token; every time each sale's invoice exists exactly once.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from aiq_flows.sources.crm_sql import CrmSale, SqlCrm
from aiq_flows.sources.demo_crm import BAD_ROWS, seed_demo_crm
from flows.nightly_sales_sync import nightly_sales_sync
from tests.conftest import DemoBlocks
from tests.support.processes import REPO, Sandbox

CREATE = "CreateBatchSalesInvoiceGetBackTransactionID"
BULK_CREATE = "CreateBatchSalesInvoiceBulkGetBackTransactionIDs"


@dataclass(frozen=True)
class Posting:
    """How the sync posts: in bulk calls (the default), or one call per invoice."""

    bulk: bool
    create: str  # the operation that creates the invoices
    chunk_size: int

    def run(self, blocks: DemoBlocks, **parameters: Any) -> dict[str, Any]:
        return run_sync(blocks, bulk=self.bulk, chunk_size=self.chunk_size, **parameters)


@pytest.fixture(params=["bulk", "single"])
def posting(request: pytest.FixtureRequest) -> Posting:
    # Small bulk chunks, so that faults hit some calls and spare others.
    return Posting(True, BULK_CREATE, 10) if request.param == "bulk" else Posting(False, CREATE, 100)


def attempts(blocks: DemoBlocks, references: list[str]) -> dict[str, int]:
    from aiq_flows.store.outbox import DocumentStore

    store = DocumentStore(blocks.store_url)
    try:
        return {ref: record.attempts for ref, record in store.get("DEMO_UK", references).items()}
    finally:
        store.dispose()


SALES = 120
QUARANTINED_KINDS = {
    "negative_amount",
    "unknown_tax_code",
    "missing_description",
    "no_lines",
    "wrong_vat",
    "bad_currency",
}


def run_sync(blocks: DemoBlocks, **parameters: Any) -> dict[str, Any]:
    return nightly_sales_sync(
        aiq_connection=blocks.aiq, crm_database=blocks.crm, state_store=blocks.store, **parameters
    )


def seed(blocks: DemoBlocks, sales: int = SALES) -> SqlCrm:
    crm = SqlCrm(blocks.crm_url)
    seed_demo_crm(crm, sales=sales, today=date(2026, 11, 25))
    return crm


def planted(sales: int = SALES) -> dict[int, str]:
    """The bad rows the demo seeder plants among `sales` sales (it is deterministic)."""
    crm = SqlCrm("sqlite://")
    return seed_demo_crm(crm, sales=sales, today=date(2026, 11, 25)).bad_rows


def crm_sales(crm: SqlCrm) -> dict[int, CrmSale]:
    with Session(crm.engine) as session:
        query = select(CrmSale).options(selectinload(CrmSale.lines), selectinload(CrmSale.customer))
        return {sale.id: sale for sale in session.scalars(query)}


def assert_each_posted_sale_exists_once(sandbox: Sandbox, crm: SqlCrm) -> dict[int, CrmSale]:
    """Every sale the CRM records as posted has exactly one AIQ document, the one written back;
    no document exists for any other sale; the ledger balances."""
    documents = sandbox.documents()
    by_reference = Counter(d["external_reference"] for d in documents)
    duplicates = {ref: n for ref, n in by_reference.items() if n > 1}
    assert not duplicates, f"duplicated invoices: {duplicates}"
    ids = {d["external_reference"]: d["transaction_id"] for d in documents}
    sales = crm_sales(crm)
    posted = {sale_id: sale for sale_id, sale in sales.items() if sale.aiq_status == "posted"}
    assert set(ids) == {f"S-{sale_id}" for sale_id in posted}
    for sale_id, sale in posted.items():
        assert sale.aiq_transaction_id == ids[f"S-{sale_id}"]
    assert sum(Decimal(v) for v in sandbox.trial_balance().values()) == 0
    return posted


def test_first_run_posts_each_valid_sale_once_and_accounts_for_every_sale(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    crm = seed(demo_blocks)
    summary = run_sync(demo_blocks)

    assert summary["input"] == SALES
    assert sum(v for k, v in summary.items() if k != "input") == SALES
    sales = crm_sales(crm)
    posted = assert_each_posted_sale_exists_once(sandbox, crm)
    assert summary["created"] == len(posted) > 80
    bad = planted()
    assert set(bad.values()) == set(BAD_ROWS)
    assert {s.id for s in sales.values() if s.aiq_status == "quarantined"} == {
        sale_id for sale_id, kind in bad.items() if kind in QUARANTINED_KINDS
    }

    quarantined = [s for s in sales.values() if s.aiq_status == "quarantined"]
    assert len(quarantined) == summary["quarantined"]
    for sale in quarantined:  # each names the record, the field and the rule
        assert sale.aiq_message and sale.aiq_message.startswith(f"sale '{sale.reference}' (id {sale.id}): ")
    messages = " ".join(s.aiq_message or "" for s in quarantined)
    assert "lines[1].tax_code: 'ZZ' is not an AccountsIQ tax code" in messages
    assert "lines[1].net_amount" in messages and "currency" in messages

    failed = [s for s in sales.values() if s.aiq_status == "failed"]
    assert len(failed) == summary["failed"]
    assert {
        s.aiq_message.split(":")[1].strip() for s in failed if s.aiq_message and "customer" in s.aiq_message
    } == {"ACCOUNT_EMAIL_INVALID_FORMAT"}
    assert any("SALES_LEDGER_ALREADY_CLOSED" in (s.aiq_message or "") for s in failed)

    gross_posted = sum(
        sum((line.net_amount or 0) + (line.tax_amount or 0) for line in sale.lines)
        for sale in posted.values()
    )
    assert Decimal(sandbox.trial_balance()["1100"]) == gross_posted  # debtors control


def test_the_report_lists_what_needs_a_person_and_links_every_sale_in_its_results_file(
    sandbox: Sandbox, demo_blocks: DemoBlocks, tmp_path: Path
) -> None:
    from blocks.results import ResultsFolder
    from tests.support.artifacts import latest_markdown, latest_table

    ResultsFolder(path=str(tmp_path / "results"), link_base="https://files.example/aiq").save("results-40")
    seed(demo_blocks, sales=40)
    summary = run_sync(demo_blocks, results_folder="results-40")

    [results] = (tmp_path / "results" / "nightly-sales-sync").glob("*.csv")
    rows = list(csv.DictReader(results.open(encoding="utf-8")))
    assert sorted(int(row["sale_id"]) for row in rows) == list(range(1, 41))  # every sale, once
    assert Counter(row["outcome"] for row in rows) == Counter(
        {k: v for k, v in summary.items() if k != "input" and v}
    )
    assert all(row["aiq_transaction_id"] for row in rows if row["outcome"] == "created")
    table = latest_table("nightly-sales-sync-report")
    assert {row["sale_id"] for row in table} == {
        int(row["sale_id"]) for row in rows if row["outcome"] in ("quarantined", "failed", "held")
    }
    assert all(row["reason"] for row in table)
    assert f"(https://files.example/aiq/nightly-sales-sync/{results.name})" in latest_markdown(
        "nightly-sales-sync-summary"
    )


def test_running_twice_creates_nothing_the_second_time(
    sandbox: Sandbox, demo_blocks: DemoBlocks, posting: Posting
) -> None:
    crm = seed(demo_blocks, sales=60)
    first = posting.run(demo_blocks)
    creates, documents = sandbox.calls()[posting.create], len(sandbox.documents())
    second = posting.run(demo_blocks)
    assert second["created"] == 0 and first["created"] > 0
    assert sandbox.calls()[posting.create] == creates
    assert len(sandbox.documents()) == documents
    assert_each_posted_sale_exists_once(sandbox, crm)


def test_answers_lost_after_commit_never_duplicate(
    sandbox: Sandbox, demo_blocks: DemoBlocks, posting: Posting
) -> None:
    crm = seed(demo_blocks, sales=80)
    sandbox.faults({"kind": "drop_response", "operation": posting.create, "rate": 0.3}, seed=4)
    first = posting.run(demo_blocks)
    dropped = next(r["fired"] for r in sandbox._request("GET", "/_sandbox/faults"))
    assert dropped >= (2 if posting.bulk else 6)
    sandbox.clear_faults()
    posting.run(demo_blocks)
    posted = assert_each_posted_sale_exists_once(sandbox, crm)
    assert len(posted) == first["created"]  # each lost answer was read back, none resent


def test_unknown_outcome_is_verified_in_aiq_before_any_resend(
    sandbox: Sandbox, demo_blocks: DemoBlocks, posting: Posting
) -> None:
    """The store says a previous run sent S-n but never heard back, and AIQ did commit it."""
    from aiq_flows.store.outbox import DocumentStore
    from tests.test_gateway_sandbox import gateway_for, invoice, line

    crm = seed(demo_blocks, sales=20)
    gateway = gateway_for(sandbox)
    committed = invoice("S-3", line("1.00", "0.20")).model_copy(update={"InvoiceDate": datetime(2026, 11, 1)})
    transaction_id = gateway.create_batch_sales_invoice(committed)
    store = DocumentStore(demo_blocks.store_url)
    store.plan("DEMO_UK", [("S-3", "batch_sales_invoice", "3")])
    assert store.claim("DEMO_UK", "S-3", "crashed-run")
    store.mark_attempt("DEMO_UK", "S-3")
    store.mark_unknown("DEMO_UK", "S-3", "answer lost")
    store.dispose()

    posting.run(demo_blocks)
    assert [d["transaction_id"] for d in sandbox.documents(external_reference="S-3")] == [transaction_id]
    assert crm_sales(crm)[3].aiq_transaction_id == transaction_id


def test_a_lost_store_does_not_duplicate(sandbox: Sandbox, demo_blocks: DemoBlocks, posting: Posting) -> None:
    crm = seed(demo_blocks, sales=50)
    first = posting.run(demo_blocks)
    Path(demo_blocks.store_url.removeprefix("sqlite:///")).unlink()
    with Session(crm.engine) as session, session.begin():  # and the CRM forgot the write-backs
        session.execute(update(CrmSale).values(aiq_status=None, aiq_transaction_id=None))
    second = posting.run(demo_blocks)
    assert second["created"] == 0 and second["already_present"] == first["created"]
    assert_each_posted_sale_exists_once(sandbox, crm)


def test_token_expiry_in_the_middle_of_a_run_is_survived(
    sandbox: Sandbox, demo_blocks: DemoBlocks, posting: Posting
) -> None:
    crm = seed(demo_blocks, sales=60)
    lookup = "GetTransactionsBy" if posting.bulk else "GetTransactionsByExternalReference"
    sandbox.faults(
        {"kind": "expire_token", "operation": posting.create, "rate": 0.2 if not posting.bulk else 0.5},
        {"kind": "expire_token", "operation": lookup, "count": 3},
        seed=5,
    )
    logins_before = sandbox.calls().get("Login", 0)
    summary = posting.run(demo_blocks)
    assert sandbox.calls()["Login"] - logins_before > 3
    posted = assert_each_posted_sale_exists_once(sandbox, crm)
    assert summary["created"] == len(posted) > 40


def test_transient_failures_leave_sales_pending_for_the_next_run(
    sandbox: Sandbox, demo_blocks: DemoBlocks, posting: Posting
) -> None:
    crm = seed(demo_blocks, sales=40)
    sandbox.faults({"kind": "http_error", "operation": posting.create, "status": 503, "rate": 0.25}, seed=3)
    first = posting.run(demo_blocks)
    pending = [s for s in crm_sales(crm).values() if s.aiq_status == "pending"]
    assert pending and first["failed"] >= len(pending)
    sandbox.clear_faults()
    second = posting.run(demo_blocks)
    closed = {i for i, kind in planted(40).items() if kind == "closed_period"}  # AIQ refuses that one
    assert second["created"] == len({s.id for s in pending} - closed)
    assert not [s for s in crm_sales(crm).values() if s.aiq_status == "pending"]
    assert_each_posted_sale_exists_once(sandbox, crm)


def test_two_runs_at_once_post_each_invoice_once(
    sandbox: Sandbox, demo_blocks: DemoBlocks, posting: Posting
) -> None:
    crm = seed(demo_blocks, sales=80)
    sandbox.faults({"kind": "latency", "operation": posting.create, "latency_ms": 15})
    script = (
        "import json, sys; from flows.nightly_sales_sync import nightly_sales_sync as sync; "
        "print('SUMMARY=' + json.dumps(sync(aiq_connection=sys.argv[1], crm_database=sys.argv[2], "
        "state_store=sys.argv[3], bulk=sys.argv[4] == 'bulk', chunk_size=int(sys.argv[5]))))"
    )
    mode = "bulk" if posting.bulk else "single"
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                script,
                demo_blocks.aiq,
                demo_blocks.crm,
                demo_blocks.store,
                mode,
                str(posting.chunk_size),
            ],
            cwd=REPO,
            env={**os.environ},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    summaries = [
        json.loads(next(line for line in out.splitlines() if line.startswith("SUMMARY="))[8:])
        for out in outputs
    ]
    posted = assert_each_posted_sale_exists_once(sandbox, crm)
    assert sum(s["created"] for s in summaries) == len(posted)
    # Exactly one attempt at each invoice (the store counts them), whichever run made it.
    tried = attempts(demo_blocks, [f"S-{sale_id}" for sale_id in posted])
    assert set(tried.values()) == {1} and len(tried) == len(posted)
    calls = sandbox.calls()[posting.create]
    if not posting.bulk:  # one call per invoice: the posted ones and the one AIQ refuses (closed period)
        assert calls == len(posted) + 1
    # The run that lost a claim may report a sale as pending; the next run settles every sale.
    settled = posting.run(demo_blocks)
    assert settled["created"] == 0 and settled["held"] == 0
    assert sandbox.calls()[posting.create] == calls
    assert not [s for s in crm_sales(crm).values() if s.aiq_status == "pending"]


def test_equal_timestamps_at_the_watermark_are_neither_lost_nor_duplicated(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    crm = seed(demo_blocks, sales=12)
    same_moment = datetime(2026, 11, 24, 23, 0)
    with Session(crm.engine) as session, session.begin():
        session.execute(update(CrmSale).values(updated_at=same_moment))
    for _ in range(5):  # a few sales per run, cut in the middle of the tie
        run_sync(demo_blocks, max_sales=3, overlap_minutes=0)
    run_sync(demo_blocks, overlap_minutes=0)
    posted = assert_each_posted_sale_exists_once(sandbox, crm)
    valid = {s.id for s in crm_sales(crm).values() if s.aiq_status not in ("quarantined", "failed")}
    assert set(posted) == valid


def test_a_sale_changed_after_its_watermark_is_read_again(sandbox: Sandbox, demo_blocks: DemoBlocks) -> None:
    crm = seed(demo_blocks, sales=20)
    run_sync(demo_blocks, overlap_minutes=0)
    quarantined = next(s for s in crm_sales(crm).values() if s.aiq_status == "quarantined")
    fixed_at = datetime.now() + timedelta(minutes=5)
    with Session(crm.engine) as session, session.begin():
        sale = session.get(CrmSale, quarantined.id)
        assert sale is not None
        for line in sale.lines:
            line.net_amount, line.tax_amount, line.tax_code, line.description = (
                Decimal("10.00"),
                Decimal("2.00"),
                "T1",
                "Corrected line",
            )
        sale.currency = "GBP"
        sale.customer_id = 1  # a customer AIQ accepts (the demo's "juniper" it refuses)
        if not sale.lines:
            from aiq_flows.sources.crm_sql import CrmSaleLine

            sale.lines.append(
                CrmSaleLine(
                    line_no=1,
                    description="Corrected line",
                    gl_account_code="4000",
                    tax_code="T1",
                    net_amount=Decimal("10.00"),
                    tax_amount=Decimal("2.00"),
                )
            )
        sale.updated_at = fixed_at
    summary = run_sync(demo_blocks, overlap_minutes=0)
    assert summary["created"] == 1
    assert crm_sales(crm)[quarantined.id].aiq_status == "posted"


def test_a_sale_changed_after_posting_is_reported_and_its_invoice_left_alone(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    from tests.support.artifacts import latest_table

    crm = seed(demo_blocks, sales=20)
    run_sync(demo_blocks, overlap_minutes=0)
    before = {d["external_reference"]: d for d in sandbox.documents()}
    posted = next(
        s for s in crm_sales(crm).values() if s.aiq_status == "posted" and s.lines[0].tax_code == "T1"
    )
    with Session(crm.engine) as session, session.begin():  # the CRM edits an invoiced sale's amount
        sale = session.get(CrmSale, posted.id)
        assert sale is not None
        sale.lines[0].net_amount += Decimal("5.00")
        sale.lines[0].tax_amount += Decimal("1.00")  # T1 is 20 %
        sale.updated_at = datetime.now() + timedelta(minutes=5)

    summary = run_sync(demo_blocks, overlap_minutes=0)

    assert (summary["created"], summary["already_present"]) == (0, 1)
    assert {d["external_reference"]: d for d in sandbox.documents()} == before  # AIQ untouched
    [row] = [r for r in latest_table("nightly-sales-sync-report") if r["outcome"] == "already_present"]
    assert (row["sale_id"], row["outcome"], row["error_code"]) == (
        posted.id,
        "already_present",
        "CHANGED_AFTER_POSTING",
    )
    assert row["aiq_transaction_id"] == posted.aiq_transaction_id
    after = crm_sales(crm)[posted.id]
    assert after.aiq_status == "posted" and "credit it to change it" in (after.aiq_message or "")


def test_no_key_or_token_in_logs_store_or_crm(
    sandbox: Sandbox,
    demo_blocks: DemoBlocks,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    seed(demo_blocks, sales=30)
    sandbox.expire_tokens()
    sandbox.faults(
        {"kind": "expire_token", "operation": CREATE, "count": 2},
        {"kind": "drop_response", "operation": CREATE, "count": 1},
    )
    run_sync(demo_blocks, bulk=False)
    out, err = capfd.readouterr()
    with sqlite3.connect(sandbox.db) as db:
        tokens = [row[0] for row in db.execute("SELECT token FROM tokens")]
    secrets = [sandbox.credentials["partner_key"], sandbox.entity("DEMO_UK")["user_key"], *tokens]
    assert len(tokens) >= 3
    haystacks = {
        "captured log records": caplog.text,
        "stdout": out,
        "stderr": err,
        "store": _dump(demo_blocks.store_url),
        "crm": _dump(demo_blocks.crm_url),
        "prefect logs": _prefect_logs(),
    }
    for where, text in haystacks.items():
        for secret in secrets:
            assert secret not in text, f"a secret appears in {where}"


def _dump(url: str) -> str:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        return "\n".join(db.iterdump())


def _prefect_logs() -> str:
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        return "\n".join(log.message for log in client.read_logs(limit=200))


def test_the_sync_runs_the_same_over_api_2_0(sandbox: Sandbox, demo_blocks: DemoBlocks) -> None:
    """One AIQ connection block switched to an Integration 2.0 application: same outcome, and the
    tokens come from TokenGet (no Login at all), with an expiry mid-run survived by TokenRefresh."""
    from pydantic import SecretStr

    from blocks import AiqConnection

    app = sandbox.app()
    AiqConnection(
        api_version="2.0",
        endpoint_url=sandbox.url_2_0,
        company_id="DEMO_UK",
        client_id=app["client_id"],
        client_secret=SecretStr(app["client_secret"]),
        timeout_seconds=10,
    ).save(demo_blocks.aiq, overwrite=True)
    crm = seed(demo_blocks, sales=60)
    sandbox.faults({"kind": "expire_token", "operation": BULK_CREATE, "count": 1})
    summary = run_sync(demo_blocks)
    assert summary["created"] > 0 and summary["input"] == 60
    assert_each_posted_sale_exists_once(sandbox, crm)
    calls = sandbox.calls()
    assert "Login" not in calls and calls["TokenGet"] == 1 and calls["TokenRefresh"] == 1


# --- credit check ------------------------------------------------------------------------------------


def _set_credit_limits(sandbox: Sandbox, limits: dict[str, str], others: str | None = None) -> None:
    """Set the given customers' credit limits, and every other active customer's to ``others``."""
    from tests.test_gateway_sandbox import gateway_for

    gateway = gateway_for(sandbox)
    try:
        for customer in gateway.get_active_customers():
            limit = limits.get(customer.Code or "", others)
            if limit is not None:
                customer.CreditLimit = Decimal(limit)
                gateway.update_customer(customer, create=False)
    finally:
        gateway.close()


def test_a_credit_hold_is_released_on_the_next_run(sandbox: Sandbox, demo_blocks: DemoBlocks) -> None:
    from aiq_flows.domain.customer_codes import aiq_customer_code

    crm = seed(demo_blocks, sales=60)
    _set_credit_limits(sandbox, {"ACME01": "1.00"}, others="0")
    first = run_sync(demo_blocks, credit_policy="hold")
    sales = crm_sales(crm)
    bad = planted(60)
    acme = {
        i
        for i, s in sales.items()
        if s.customer and aiq_customer_code(s.customer.account_key) == "ACME01" and i not in bad
    }
    held = {i for i, s in sales.items() if s.aiq_status == "pending"}
    assert acme and acme <= held and first["held"] == len(held)
    assert all("credit hold" in (sales[i].aiq_message or "") for i in held)
    assert not [d for d in sandbox.documents() if int(d["external_reference"][2:]) in held]

    _set_credit_limits(sandbox, {}, others="0")  # limits lifted: the held sales go through
    second = run_sync(demo_blocks, credit_policy="hold")
    refused_by_aiq = {i for i, kind in bad.items() if kind == "closed_period"}  # valid, but a closed period
    assert second["held"] == 0 and second["created"] == len(held - refused_by_aiq)
    assert not [s for s in crm_sales(crm).values() if s.aiq_status == "pending"]
    assert_each_posted_sale_exists_once(sandbox, crm)


def test_post_and_warn_posts_over_the_limit_and_says_so(sandbox: Sandbox, demo_blocks: DemoBlocks) -> None:
    crm = seed(demo_blocks, sales=30)
    _set_credit_limits(sandbox, {"ACME01": "1.00"}, others="0")
    summary = run_sync(demo_blocks, credit_policy="post_and_warn")
    assert summary["held"] == 0
    from aiq_flows.domain.customer_codes import aiq_customer_code

    sales = crm_sales(crm).values()
    warned = [s for s in sales if (s.aiq_message or "").startswith("credit warning")]
    assert warned and all(s.aiq_status == "posted" for s in warned)
    acme = [s for s in sales if s.customer and aiq_customer_code(s.customer.account_key) == "ACME01"]
    posted_acme = [s for s in acme if s.aiq_status == "posted"]
    assert posted_acme and all("ACME01 would owe" in (s.aiq_message or "") for s in posted_acme)


def test_overdue_debt_holds_the_customer(sandbox: Sandbox, demo_blocks: DemoBlocks) -> None:
    from aiq_flows.domain.customer_codes import aiq_customer_code
    from tests.test_gateway_sandbox import gateway_for, invoice, line

    crm = seed(demo_blocks, sales=30)
    gateway = gateway_for(sandbox)
    old = invoice("OLD-DEBT", line("100.00", "20.00"), customer="CORAL03")
    old.InvoiceDate, old.DueDate = datetime(2026, 6, 1), datetime(2026, 7, 1)  # months overdue
    gateway.create_batch_sales_invoice(old)
    gateway.close()
    run_sync(demo_blocks, credit_policy="hold", credit_overdue_days=60)
    sales = crm_sales(crm).values()
    coral = [s for s in sales if s.customer and aiq_customer_code(s.customer.account_key) == "CORAL03"]
    assert coral and all(s.aiq_status in ("pending", "quarantined") for s in coral)
    assert any("overdue" in (s.aiq_message or "") for s in coral)


def test_paging_through_the_crm_loses_and_repeats_nothing_even_on_equal_timestamps(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    crm = seed(demo_blocks, sales=40)
    with Session(crm.engine) as session, session.begin():  # ten sales share each timestamp
        for sale in session.scalars(select(CrmSale)):
            sale.updated_at = datetime(2026, 11, 24, 22, sale.id // 10)
    summary = run_sync(demo_blocks, page_size=7)  # pages end in the middle of equal timestamps
    assert summary["input"] == 40
    sales = crm_sales(crm)
    assert all(s.aiq_synced_at is not None for s in sales.values())
    assert_each_posted_sale_exists_once(sandbox, crm)
    again = run_sync(demo_blocks, page_size=7)
    assert again["created"] == 0


# --- dry run and approval ------------------------------------------------------------------------------

WRITE_PREFIXES = ("Create", "Update", "Save", "Post", "Cancel", "Attach")


def write_calls(sandbox: Sandbox) -> int:
    return sum(n for op, n in sandbox.calls().items() if op.startswith(WRITE_PREFIXES))


def test_a_dry_run_publishes_the_plan_and_writes_nothing(sandbox: Sandbox, demo_blocks: DemoBlocks) -> None:
    from tests.support.artifacts import latest_table

    crm = seed(demo_blocks, sales=40)
    before = write_calls(sandbox)
    plan = run_sync(demo_blocks, dry_run=True, credit_policy="hold")
    assert write_calls(sandbox) == before  # counted at the sandbox: not one write
    assert all(s.aiq_status is None and s.aiq_synced_at is None for s in crm_sales(crm).values())
    rows = latest_table("nightly-sales-sync-plan-rows")
    assert len(rows) == plan["input"] == 40
    to_create = [row for row in rows if row["action"] == "create invoice"]
    assert plan["to_create"] == len(to_create) and plan["customers_to_create"] > 0
    assert plan["confirmation"] == f"POST {len(to_create)} INVOICES"
    run_sync(demo_blocks, credit_policy="hold")  # the plan was right, but for AIQ's own refusals
    sales = crm_sales(crm)
    became = {"create invoice": {"posted", "failed"}, "held": {"pending"}, "quarantined": {"quarantined"}}
    for row in rows:
        if not row["customer"].startswith("JUNIPER"):  # a customer AIQ refuses: no plan can know
            assert sales[row["sale_id"]].aiq_status in became[row["action"]], row
    assert_each_posted_sale_exists_once(sandbox, crm)


def _paused_run(timeout: float = 60) -> Any:
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            paused = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
                )
            )
            if paused:
                return paused[0]
            time.sleep(0.5)
    raise AssertionError("the run never paused for approval")


@pytest.mark.parametrize("typed", ["right", "wrong"])
def test_approval_waits_in_the_ui_and_posts_exactly_the_plan(
    sandbox: Sandbox, demo_blocks: DemoBlocks, typed: str
) -> None:
    import threading

    from prefect.flow_runs import resume_flow_run

    from tests.support.artifacts import latest_table

    crm = seed(demo_blocks, sales=30)
    before = write_calls(sandbox)
    result: dict[str, Any] = {}
    run = threading.Thread(target=lambda: result.update(run_sync(demo_blocks, approval=True)))
    run.start()
    paused = _paused_run()
    assert write_calls(sandbox) == before  # nothing written while it waits
    rows = latest_table("nightly-sales-sync-plan-rows")
    planned = [row["external_reference"] for row in rows if row["action"] == "create invoice"]
    refused_customer = {row["external_reference"] for row in rows if row["customer"].startswith("JUNIPER")}
    # A sale changed after the plan is not in the approved plan: it waits for the next run.
    with Session(crm.engine) as session, session.begin():
        session.add(
            CrmSale(
                id=999,
                reference="SO-LATE",
                customer_id=1,
                sale_date=date(2026, 11, 24),
                currency="GBP",
                description="late",
                updated_at=datetime(2026, 11, 25, 7),
            )
        )
    phrase = f"POST {len(planned)} INVOICES" if typed == "right" else "POST EVERYTHING"
    resume_flow_run(
        paused.id, run_input={"approved": True, "approver": "finance.controller", "confirmation": phrase}
    )
    run.join(timeout=120)
    assert not run.is_alive()
    posted = {d["external_reference"] for d in sandbox.documents()}
    if typed == "wrong":
        assert result["approved"] is False and posted == set() and write_calls(sandbox) == before
        return
    closed_period = {f"S-{i}" for i, kind in planted(30).items() if kind == "closed_period"}
    assert posted == set(planned) - closed_period - refused_customer  # AIQ refuses those two kinds
    assert "S-999" not in posted
    assert_each_posted_sale_exists_once(sandbox, crm)


# --- attachments and PDFs ------------------------------------------------------------------------------


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_breakdowns_are_attached_once_and_pdfs_fetched(
    sandbox: Sandbox, demo_blocks: DemoBlocks, tmp_path: Path, file_format: str
) -> None:
    import io

    import pandas as pd
    from pypdf import PdfReader

    crm = seed(demo_blocks, sales=12)
    folder = tmp_path / "pdfs"
    summary = run_sync(demo_blocks, attach_breakdown=file_format, pdf_folder=str(folder))
    posted = assert_each_posted_sale_exists_once(sandbox, crm)
    assert summary["created"] == len(posted) == sandbox.calls()["AttachDocument"]
    pdfs = sorted((folder / "DEMO_UK").glob("S-*.pdf"))
    assert [p.stem for p in pdfs] == sorted(f"S-{i}" for i in posted)
    first = sorted(posted)[0]
    text = PdfReader(io.BytesIO((folder / "DEMO_UK" / f"S-{first}.pdf").read_bytes())).pages[0].extract_text()
    assert f"S-{first}" in text and str(posted[first].aiq_transaction_id) in text
    with sqlite3.connect(sandbox.db) as db:
        name, content = db.execute(
            "SELECT filename, content FROM attachments WHERE master_id = ?",
            (str(posted[first].aiq_transaction_id),),
        ).fetchone()
    assert name == f"S-{first}-lines.{file_format}"
    frame = pd.read_csv(io.BytesIO(content)) if file_format == "csv" else pd.read_excel(io.BytesIO(content))
    assert len(frame) == len(posted[first].lines)
    # A re-run changes nothing: AIQ refuses a second file of the same name, the PDFs are kept.
    run_sync(demo_blocks, attach_breakdown=file_format, pdf_folder=str(folder))
    with sqlite3.connect(sandbox.db) as db:
        assert db.execute("SELECT COUNT(*) FROM attachments").fetchone()[0] == len(posted)


def test_a_pdf_outage_keeps_the_invoices_and_the_other_documents_and_the_re_run_fetches_them(
    sandbox: Sandbox, demo_blocks: DemoBlocks, tmp_path: Path
) -> None:
    from aiq_flows.gateway.errors import AiqTransientError

    crm = seed(demo_blocks, sales=12)
    folder = tmp_path / "pdfs"
    sandbox.faults({"kind": "http_error", "operation": "GetInvoicePDFByTransactionID", "rate": 1.0})
    with pytest.raises(AiqTransientError):  # the run fails, naming the invoices whose PDF is missing
        run_sync(demo_blocks, attach_breakdown="csv", pdf_folder=str(folder))
    posted = assert_each_posted_sale_exists_once(sandbox, crm)  # posted and written back all the same
    assert sandbox.calls()["AttachDocument"] == len(posted)  # every breakdown attached despite the outage
    assert list((folder / "DEMO_UK").glob("*.pdf*")) == []

    sandbox.clear_faults()
    sandbox.reset_calls()
    summary = run_sync(demo_blocks, attach_breakdown="csv", pdf_folder=str(folder))

    assert (summary["created"], summary["already_present"]) == (0, len(posted))
    assert sorted(p.stem for p in (folder / "DEMO_UK").glob("*.pdf")) == sorted(f"S-{i}" for i in posted)
    again = assert_each_posted_sale_exists_once(sandbox, crm)
    assert {i: sale.aiq_transaction_id for i, sale in again.items()} == {
        i: sale.aiq_transaction_id for i, sale in posted.items()
    }
    with sqlite3.connect(sandbox.db) as db:
        assert db.execute("SELECT COUNT(*) FROM attachments").fetchone()[0] == len(posted)


# --- item invoices ---------------------------------------------------------------------------------------


def test_item_invoices_and_batch_invoices_side_by_side_each_once(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    from tests.test_gateway_sandbox import gateway_for

    crm = seed(demo_blocks, sales=40)
    with Session(crm.engine) as session, session.begin():  # the CRM asks for batch on a few sales
        session.execute(update(CrmSale).where(CrmSale.id % 5 == 0).values(invoice_kind="batch"))
    sandbox.faults({"kind": "drop_response", "operation": "PostInvoicesGetBackTransactionIDs", "count": 1})
    # One chunk: the lost answer is the one that also carried a refusal (the closed-period sale).
    first = run_sync(demo_blocks, invoice_kind="item", chunk_size=100)
    posted = assert_each_posted_sale_exists_once(sandbox, crm)
    assert first["created"] == len(posted)
    kinds = {d["external_reference"]: d["type"] for d in sandbox.documents()}
    for sale_id in posted:
        assert kinds[f"S-{sale_id}"] == ("SalesBatchInvoice" if sale_id % 5 == 0 else "SalesInvoice")
    gateway = gateway_for(sandbox)
    item = next(i for i in sorted(posted) if i % 5)
    [invoice] = gateway.invoices_by_external_reference(f"S-{item}")
    assert invoice.Status == "Posted" and invoice.OrderNumber == posted[item].reference
    drafts = [
        i
        for s in posted
        if s % 5
        for i in gateway.invoices_by_external_reference(f"S-{s}")
        if i.Status != "Posted"
    ]
    gateway.close()
    assert drafts == []  # the lost answer was read back: no draft saved twice, none left behind
    again = run_sync(demo_blocks, invoice_kind="item")
    assert again["created"] == 0
    assert_each_posted_sale_exists_once(sandbox, crm)


def test_a_customer_changed_in_the_crm_is_updated_in_aiq_once(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    from aiq_flows.sources.crm_sql import CrmCustomer
    from tests.test_gateway_sandbox import gateway_for

    def updates_in_a_run() -> int:
        before = sandbox.calls().get("UpdateCustomer", 0)
        run_sync(demo_blocks)
        return sandbox.calls().get("UpdateCustomer", 0) - before

    crm = seed(demo_blocks, sales=20)
    run_sync(demo_blocks)
    unchanged = updates_in_a_run()  # a customer AIQ refuses is tried again each run; nobody else
    with Session(crm.engine) as session, session.begin():
        customer = session.get(CrmCustomer, 1)
        assert customer is not None and customer.account_key == "acme01"
        customer.city, customer.email = "Harrogate", "ledger@acme.example"
    assert updates_in_a_run() == unchanged + 1
    gateway = gateway_for(sandbox)
    acme = gateway.get_customer("ACME01")
    gateway.close()
    assert acme is not None and (acme.City, acme.Email) == ("Harrogate", "ledger@acme.example")
    assert updates_in_a_run() == unchanged  # in step now: not updated again


def test_a_detail_the_crm_leaves_empty_is_kept_in_aiq(sandbox: Sandbox, demo_blocks: DemoBlocks) -> None:
    """UpdateCustomer replaces the whole record: a CRM customer without a phone must not blank the
    phone finance entered in AIQ when the sync updates its city."""
    from aiq_flows.sources.crm_sql import CrmCustomer
    from tests.test_gateway_sandbox import gateway_for

    gateway = gateway_for(sandbox)
    acme = gateway.get_customer("ACME01")
    assert acme is not None
    gateway.update_customer(acme.model_copy(update={"Phone": "+44 113 496 0000"}), create=False)
    crm = seed(demo_blocks, sales=10)
    with Session(crm.engine) as session, session.begin():
        customer = session.get(CrmCustomer, 1)
        assert customer is not None and customer.phone is None and customer.account_key == "acme01"
        customer.city = "Harrogate"

    run_sync(demo_blocks)

    acme = gateway.get_customer("ACME01")
    gateway.close()
    assert acme is not None and (acme.City, acme.Phone) == ("Harrogate", "+44 113 496 0000")
