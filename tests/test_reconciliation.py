"""Reconciliation under a real Prefect API: a clean sync reconciles to nothing; each kind of
difference planted afterwards is found, named, and fails the run."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from aiq_flows.sources.crm_sql import CrmSale, CrmSaleLine
from flows.reconciliation import reconciliation
from tasks.reconciliation import ReconciliationDifferences
from tests.conftest import DemoBlocks
from tests.support.artifacts import latest_table
from tests.support.processes import Sandbox
from tests.test_gateway_sandbox import gateway_for, invoice, line
from tests.test_nightly_sales_sync import crm_sales, run_sync, seed

RANGE = {"from_date": date(2026, 10, 1), "to_date": date(2026, 11, 25)}


def test_a_clean_sync_reconciles_and_each_planted_difference_is_found(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    crm = seed(demo_blocks, sales=30)
    run_sync(demo_blocks)
    assert (
        reconciliation(
            aiq_connection=demo_blocks.aiq,
            crm_database=demo_blocks.crm,
            state_store=demo_blocks.store,
            **RANGE,
        )["differences"]
        == 0
    )

    posted = sorted(i for i, s in crm_sales(crm).items() if s.aiq_status == "posted")
    missing, amount, customer, duplicate, bad_id = posted[:5]
    gateway = gateway_for(sandbox)
    stray = invoice("S-90001", line("5.00", "1.00")).model_copy(update={"InvoiceDate": datetime(2026, 11, 2)})
    gateway.create_batch_sales_invoice(stray)  # an AIQ document no CRM sale knows
    [original] = sandbox.documents(external_reference=f"S-{duplicate}")
    again = invoice(f"S-{duplicate}", line("1.00", "0.20")).model_copy(
        update={"InvoiceDate": datetime.fromisoformat(original["transaction_date"])}
    )
    gateway.create_batch_sales_invoice(again)  # the same reference posted twice
    gateway.close()
    with Session(crm.engine) as session, session.begin():
        session.add(  # a "posted" sale that never reached AIQ
            CrmSale(
                id=missing + 1000,
                reference="SO-GHOST",
                customer_id=1,
                sale_date=date(2026, 11, 10),
                currency="GBP",
                description="never sent",
                updated_at=datetime(2026, 11, 10),
                aiq_status="posted",
                lines=[
                    CrmSaleLine(
                        line_no=1,
                        description="x",
                        gl_account_code="4000",
                        tax_code="T1",
                        net_amount=Decimal(1),
                        tax_amount=Decimal("0.20"),
                    )
                ],
            )
        )
        session.execute(  # the CRM's amount changed after posting
            update(CrmSaleLine)
            .where(CrmSaleLine.sale_id == amount, CrmSaleLine.line_no == 1)
            .values(net_amount=CrmSaleLine.net_amount + 1)
        )
        sale = session.get(CrmSale, customer)
        assert sale is not None
        sale.customer_id = 2 if sale.customer_id != 2 else 3  # and another sale's customer
        session.execute(update(CrmSale).where(CrmSale.id == bad_id).values(aiq_transaction_id=987_654))

    with pytest.raises(ReconciliationDifferences, match=r"[67] differences"):
        reconciliation(
            aiq_connection=demo_blocks.aiq,
            crm_database=demo_blocks.crm,
            state_store=demo_blocks.store,
            **RANGE,
        )
    found = {(row["difference"], row["reference"]) for row in latest_table("reconciliation-differences")}
    assert {
        ("sale without an AIQ document", f"S-{missing + 1000}"),
        ("AIQ document without a CRM sale", "S-90001"),
        ("amount differs", f"S-{amount}"),
        ("customer differs", f"S-{customer}"),
        ("duplicate external reference in AIQ", f"S-{duplicate}"),
        ("written-back transaction ID does not exist", f"S-{bad_id}"),
    } <= found
