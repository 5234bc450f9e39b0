"""The receipts-sync flow under a real Prefect API against the sandbox, reading the demo CRM's
payments through its mapping: full, partial and over-payments, a payment before its invoice, one
naming no invoice (oldest first), a bad row, a refund; outcomes written back; a re-run sends nothing;
the counts add up."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from aiq_flows.gateway.client import AiqGateway
from aiq_flows.sources.crm_sql import CrmPayment, SqlCrm
from flows.receipts_sync import receipts_sync
from tests.conftest import DemoBlocks
from tests.support.processes import Sandbox
from tests.test_gateway_sandbox import gateway_for, invoice, line

D = Decimal
RUN_DATE = date(2026, 11, 20)


def add_payments(blocks: DemoBlocks, *rows: dict[str, Any]) -> None:
    crm = SqlCrm(blocks.crm_url)
    crm.create_schema()
    with Session(crm.engine) as session, session.begin():
        for row in rows:
            session.add(CrmPayment(**{"paid_on": date(2026, 11, 2), "kind": "payment", **row}))
    crm.dispose()


def payments(blocks: DemoBlocks) -> dict[int, tuple[str | None, int | None, str | None]]:
    crm = SqlCrm(blocks.crm_url)
    with Session(crm.engine) as session:
        rows = {p.id: (p.aiq_status, p.aiq_receipt_id, p.aiq_message) for p in session.query(CrmPayment)}
    crm.dispose()
    return rows


def post(gateway: AiqGateway, sale_id: int, customer: str = "BRIGHT02", when: datetime | None = None) -> int:
    bill = invoice(f"S-{sale_id}", line("100.00", "20.00"), customer=customer)
    if when is not None:
        bill = bill.model_copy(update={"InvoiceDate": when})
    return gateway.create_batch_sales_invoice(bill)


def left(gateway: AiqGateway, sale_id: int) -> Decimal:
    [row] = gateway.transactions_by_external_reference(
        f"S-{sale_id}", datetime(2026, 1, 1), datetime(2026, 12, 31), ["SI"]
    )
    return D(str(row.OutstandingAmount))


def run(blocks: DemoBlocks) -> dict[str, Any]:
    return receipts_sync(
        aiq_connection=blocks.aiq, state_store=blocks.store, payments_source=blocks.crm, run_date=RUN_DATE
    )


def test_receipts_sync_settles_each_payment_once_and_writes_back(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    gateway = gateway_for(sandbox)
    for sale_id in (101, 102, 103, 104):
        post(gateway, sale_id)
    post(gateway, 201, "CORAL03", datetime(2026, 10, 1))  # older: paid first by a payment naming none
    post(gateway, 202, "CORAL03", datetime(2026, 11, 1))
    add_payments(
        demo_blocks,
        {"id": 1, "customer_code": "BRIGHT02", "amount": D("120.00"), "sale_ids": "101"},  # full
        {"id": 2, "customer_code": "BRIGHT02", "amount": D("50.00"), "sale_ids": "102"},  # partial
        {"id": 3, "customer_code": "BRIGHT02", "amount": D("150.00"), "sale_ids": "103"},  # over
        {
            "id": 4,
            "customer_code": "BRIGHT02",
            "amount": D("120.00"),
            "sale_ids": "999",
        },  # before its invoice
        {"id": 5, "customer_code": "CORAL03", "amount": D("180.00")},  # names none: oldest first
        {"id": 6, "customer_code": "BRIGHT02", "amount": None, "sale_ids": "104"},  # no amount
        {"id": 7, "customer_code": "BRIGHT02", "amount": D("120.00"), "sale_ids": "104"},
        {"id": 8, "customer_code": "BRIGHT02", "amount": D("120.00"), "kind": "chargeback", "refund_of": "7"},
    )
    first = run(demo_blocks)
    assert first["read"] == 8
    assert {
        k: first[k] for k in ("allocated", "on_account", "waiting", "quarantined", "refunded", "refused")
    } == {
        "allocated": 3,  # 1, 2 (partial: the invoice keeps the rest) and 5
        "on_account": 1,  # 3
        "waiting": 1,  # 4
        "quarantined": 1,  # 6
        "refunded": 2,  # 7 and the chargeback 8
        "refused": 0,
    }
    assert (left(gateway, 101), left(gateway, 102), left(gateway, 103)) == (0, D("70.00"), 0)
    assert (left(gateway, 201), left(gateway, 202), left(gateway, 104)) == (0, D("60.00"), D("120.00"))
    written = payments(demo_blocks)
    assert written[1][0] == "allocated" and written[1][1] is not None
    assert written[3][0] == "on_account" and "30.00 on account" in (written[3][2] or "")
    assert written[4][0] == "waiting" and "S-999" in (written[4][2] or "")
    assert written[6][0] == "quarantined" and "amount" in (written[6][2] or "")
    assert written[7][0] == "refunded" and written[7][1] is None
    receipts = [d for d in sandbox.documents() if d["type_code"] == "SR"]
    assert sorted(d["external_reference"] for d in receipts) == ["R-1", "R-2", "R-3", "R-4", "R-5"]

    calls = sandbox.calls()
    again = run(demo_blocks)
    assert {k: again[k] for k in ("allocated", "on_account", "waiting")} == {
        "allocated": 3,
        "on_account": 1,
        "waiting": 1,
    }
    later = sandbox.calls()
    assert later.get("SaveSalesReceiptGetBackTransactionID") == calls.get(
        "SaveSalesReceiptGetBackTransactionID"
    )
    assert later.get("AllocateTransactions") == calls.get("AllocateTransactions")

    post(gateway, 999)  # the invoice payment 4 waited for
    third = run(demo_blocks)
    assert third["waiting"] == 0 and left(gateway, 999) == 0 and payments(demo_blocks)[4][0] == "allocated"
    assert len([d for d in sandbox.documents() if d["type_code"] == "SR"]) == 5
    gateway.close()


def test_a_refund_after_its_payment_reopens_the_invoice(sandbox: Sandbox, demo_blocks: DemoBlocks) -> None:
    gateway = gateway_for(sandbox)
    post(gateway, 301)
    add_payments(
        demo_blocks, {"id": 11, "customer_code": "BRIGHT02", "amount": D("120.00"), "sale_ids": "301"}
    )
    assert run(demo_blocks)["allocated"] == 1 and left(gateway, 301) == 0
    add_payments(
        demo_blocks,
        {"id": 12, "customer_code": "BRIGHT02", "amount": D("120.00"), "kind": "refund", "refund_of": "11"},
    )
    summary = run(demo_blocks)
    assert (summary["refunded"], summary["allocated"]) == (2, 0)
    assert left(gateway, 301) == D("120.00")  # open again; the cash stays on account until refunded out
    assert payments(demo_blocks)[12][0] == "refunded"
    gateway.close()


def test_reconciliation_finds_payments_and_receipts_that_disagree(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    from prefect import flow

    from aiq_flows.domain.reconciliation import Difference
    from aiq_flows.gateway.models import SalesReceipt
    from blocks.aiq import AiqConnection
    from tasks.reconciliation import compare_payments
    from tasks.typed_prefect import load_block, load_origin

    @flow
    def payments_reconciliation() -> list[tuple[str, str]]:
        aiq = load_block(AiqConnection, demo_blocks.aiq)
        findings = compare_payments(aiq, load_origin(demo_blocks.crm), date(2026, 11, 1), date(2026, 11, 30))
        return sorted((f.kind.name, f.reference) for f in findings)

    gateway = gateway_for(sandbox)
    post(gateway, 401)
    add_payments(
        demo_blocks, {"id": 21, "customer_code": "BRIGHT02", "amount": D("120.00"), "sale_ids": "401"}
    )
    assert run(demo_blocks)["allocated"] == 1
    assert payments_reconciliation() == []
    # AIQ changed behind the sync's back, a receipt made by hand, a payment never synced:
    receipt = payments(demo_blocks)[21][1]
    assert receipt is not None and gateway.unallocate([receipt])[0].ok
    gateway.save_sales_receipt(
        SalesReceipt(
            CustomerCode="BRIGHT02",
            CheckReference="R-77",
            PaymentAmount=D("5.00"),
            BankAccountCode="1200",
            PaymentDate=datetime(2026, 11, 3),
        )
    )
    add_payments(demo_blocks, {"id": 22, "customer_code": "BRIGHT02", "amount": D("10.00")})
    assert payments_reconciliation() == [
        (Difference.ALLOCATION.name, "R-21"),
        (Difference.PAYMENT_WITHOUT_RECEIPT.name, "R-22"),
        (Difference.RECEIPT_WITHOUT_PAYMENT.name, "R-77"),
    ]
    gateway.close()


def test_sales_see_who_paid_and_a_payment_in_another_currency_is_not_allocated(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    from aiq_flows.sources.crm_sql import CrmSale

    gateway = gateway_for(sandbox)
    for sale_id in (501, 502, 503):
        post(gateway, sale_id, when=datetime(2026, 9, 1))  # due 30 days later: overdue by RUN_DATE
    crm = SqlCrm(demo_blocks.crm_url)
    crm.create_schema()
    with Session(crm.engine) as session, session.begin():
        session.add_all(CrmSale(id=sale_id, updated_at=datetime(2026, 9, 1)) for sale_id in (501, 502, 503))
    add_payments(
        demo_blocks,
        {
            "id": 31,
            "customer_code": "BRIGHT02",
            "amount": D("120.00"),
            "sale_ids": "501",
            "paid_on": date(2026, 11, 5),
        },
        {"id": 32, "customer_code": "BRIGHT02", "amount": D("20.00"), "sale_ids": "502"},
        {"id": 33, "customer_code": "BRIGHT02", "amount": D("120.00"), "sale_ids": "503", "currency": "EUR"},
    )
    summary = run(demo_blocks)
    assert (summary["allocated"], summary["on_account"]) == (2, 1)
    with Session(crm.engine) as session:
        status = {
            s.id: (s.aiq_outstanding, s.aiq_paid_at, s.aiq_days_overdue) for s in session.query(CrmSale)
        }
    crm.dispose()
    due = date(2026, 10, 1)  # BRIGHT02's 30-day terms from 1 September
    assert status[501] == (D("0"), date(2026, 11, 5), 0)
    assert status[502] == (D("100.00"), None, (RUN_DATE - due).days)
    assert status[503] == (
        D("120.00"),
        None,
        (RUN_DATE - due).days,
    )  # untouched: the EUR payment stays on account
    assert "S-503 (another currency)" in (payments(demo_blocks)[33][2] or "")
    gateway.close()


def test_payments_dropped_as_files_are_settled_and_archived_with_results(
    sandbox: Sandbox, demo_blocks: DemoBlocks, tmp_path: Any
) -> None:
    import csv

    gateway = gateway_for(sandbox)
    post(gateway, 601)
    incoming = tmp_path / "drop" / "incoming"
    incoming.mkdir(parents=True)
    (incoming / "stripe-2026-11-02.csv").write_text(
        "payment_id,customer,paid_on,amount,invoices\n"
        "st_1,BRIGHT02,02/11/2026,120.00,601\n"
        "st_2,BRIGHT02,02/11/2026,£12.00,601\n"
        ",BRIGHT02,02/11/2026,5.00,\n",
        encoding="utf-8",
    )
    summary = receipts_sync(
        aiq_connection=demo_blocks.aiq,
        state_store=demo_blocks.store,
        payments_source=demo_blocks.crm,
        payments_folder=str(tmp_path / "drop"),
        run_date=RUN_DATE,
    )
    assert (summary["read"], summary["allocated"], summary["quarantined"]) == (3, 1, 2)
    assert left(gateway, 601) == 0 and list(incoming.iterdir()) == []
    [results] = (tmp_path / "drop" / "archive").glob("*.results.csv")
    rows = list(csv.DictReader(results.open(encoding="utf-8")))
    assert [(r["payment_id"], r["status"]) for r in rows] == [
        ("st_1", "allocated"),
        ("st_2", "quarantined"),
        ("stripe-2026-11-02.csv row 4", "quarantined"),
    ]
    assert "£12.00" in rows[1]["message"]
    gateway.close()


def test_lost_answers_in_a_run_still_leave_one_receipt_and_the_customer_clear_for_credit(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    from aiq_flows.domain.credit import Charge, CreditPosition, check

    gateway = gateway_for(sandbox)
    post(gateway, 701, "CORAL03", datetime(2026, 8, 1))  # long overdue by RUN_DATE
    [coral] = [c for c in gateway.get_active_customers() if c.Code == "CORAL03"]

    def credit_position() -> CreditPosition:
        [balance] = gateway.account_balances(datetime(2026, 11, 20), [coral.AccountID])
        return CreditPosition(balance.Balance, Decimal("150.00"))

    charge = [Charge("next", "CORAL03", D("120.00"))]
    assert check(charge, {"CORAL03": credit_position()})  # owes 120: a new 120 is held
    add_payments(
        demo_blocks, {"id": 41, "customer_code": "CORAL03", "amount": D("120.00"), "sale_ids": "701"}
    )
    sandbox.faults(
        {"kind": "drop_response", "operation": "SaveSalesReceiptGetBackTransactionID", "count": 1},
        {"kind": "drop_response", "operation": "AllocateTransactions", "count": 1},
    )
    assert run(demo_blocks)["allocated"] == 1
    assert len([d for d in sandbox.documents(external_reference="R-41") if d["type_code"] == "SR"]) == 1
    assert left(gateway, 701) == 0 and sandbox.calls()["AllocateTransactions"] == 1
    assert not check(charge, {"CORAL03": credit_position()})  # paid: the credit check clears it
    [statement] = gateway.customer_statements(datetime(2026, 11, 20), ["CORAL03"])
    assert statement.overdue == 0 and all(
        line.ExternalReference != "S-701" for line in statement.transactions
    )
    gateway.close()
