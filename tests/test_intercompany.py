"""Intercompany pairing under a real Prefect API against the sandbox over HTTP, on API 1.1 (a
login per entity) and 2.0 (one integration, the entity in the header): same-currency and
cross-currency pairs, a missing connection, a lost answer on the second leg, a half pair completed
by the next run, and a parity mismatch planted in AIQ and reported."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from aiq_flows.gateway.models import InvoiceLine
from aiq_flows.sources.demo_intercompany import seed_demo_charges
from aiq_flows.sources.intercompany_sql import ChargeLineRow, ChargeRow, SqlCharges
from blocks import AiqConnection, ChargesDatabase
from flows.intercompany_pairing import intercompany_pairing
from tasks.intercompany import IntercompanyNotSettled
from tests.conftest import DemoBlocks
from tests.support.artifacts import latest_table
from tests.support.processes import Sandbox
from tests.test_gateway_sandbox import gateway_for

ENTITIES = ("DEMO_UK", "DEMO_IE", "DEMO_UK2")


def connection_blocks(sandbox: Sandbox, version: str) -> list[str]:
    names = []
    for entity in ENTITIES:
        name = f"aiq-{entity.lower().replace('_', '-')}-{uuid.uuid4().hex[:6]}"
        if version == "1.1":
            block = AiqConnection(
                endpoint_url=sandbox.url,
                company_id=entity,
                partner_key=SecretStr(sandbox.credentials["partner_key"]),
                user_key=SecretStr(sandbox.entity(entity)["user_key"]),
                timeout_seconds=10,
            )
        else:
            app = sandbox.app()
            block = AiqConnection(
                api_version="2.0",
                endpoint_url=sandbox.url_2_0,
                company_id=entity,
                client_id=app["client_id"],
                client_secret=SecretStr(app["client_secret"]),
                timeout_seconds=10,
            )
        block.save(name)
        names.append(name)
    return names


@pytest.fixture
def charges(tmp_path: Any) -> tuple[str, SqlCharges]:
    url = f"sqlite:///{tmp_path / 'charges.db'}"
    name = f"charges-{uuid.uuid4().hex[:8]}"
    ChargesDatabase(url=SecretStr(url)).save(name)
    return name, SqlCharges(url)


def run(
    sandbox: Sandbox, blocks: DemoBlocks, charges: tuple[str, SqlCharges], version: str = "1.1"
) -> dict[str, Any]:
    return intercompany_pairing(
        aiq_connections=connection_blocks(sandbox, version),
        charges_database=charges[0],
        state_store=blocks.store,
    )


def add_charge(charges: SqlCharges, seller: str = "DEMO_UK", buyer: str = "DEMO_IE", **fields: Any) -> int:
    values: dict[str, Any] = {
        "reference": f"ICT-{uuid.uuid4().hex[:6]}",
        "from_entity": seller,
        "to_entity": buyer,
        "charge_date": date(2026, 11, 20),
        "currency": "GBP",
        "description": "Management fee",
        "updated_at": datetime(2026, 11, 20, 9),
        "lines": [ChargeLineRow(line_no=1, description="Management fee", amount=Decimal("1000.00"))],
        **fields,
    }
    return charges.add(ChargeRow(**values))


def documents(sandbox: Sandbox, charge_id: int, seller: str, buyer: str) -> tuple[list[Any], list[Any]]:
    return (
        sandbox.documents(seller, f"IC-{charge_id}-S"),
        sandbox.documents(buyer, f"IC-{charge_id}-P"),
    )


def report_rows() -> dict[int, dict[str, Any]]:
    return {row["charge_id"]: row for row in latest_table("intercompany-pairs")}


def balanced(sandbox: Sandbox) -> bool:
    return all(sum(Decimal(v) for v in sandbox.trial_balance(e).values()) == 0 for e in ENTITIES)


def test_demo_charges_pair_across_three_entities_with_parity(
    sandbox: Sandbox, demo_blocks: DemoBlocks, charges: tuple[str, SqlCharges]
) -> None:
    seeded = seed_demo_charges(charges[1], today=date(2026, 11, 20))
    summary = run(sandbox, demo_blocks, charges)
    assert (summary["input"], summary["created"], summary["quarantined"]) == (10, 9, 1)
    assert (summary["half_pairs"], summary["parity_mismatches"]) == (0, 0)
    rows = report_rows()
    for charge_id in seeded.charge_ids:
        row = rows[charge_id]
        if charge_id in seeded.unconnected:
            assert row["outcome"] == "quarantined"
            assert "no valid intercompany connection from DEMO_IE to DEMO_UK2" in row["reason"]
            continue
        sales, purchase = documents(sandbox, charge_id, row["seller"], row["buyer"])
        assert (len(sales), len(purchase)) == (1, 1)
        assert sales[0]["currency"] == purchase[0]["currency"] == row["currency"]
        assert sales[0]["transaction_date"] == purchase[0]["transaction_date"]
        assert (row["parity"], Decimal(row["difference"])) == ("ok", 0)
        assert row["sales_net"] == row["purchase_net"]
    kinds = Counter(
        (r["seller"], r["buyer"], r["currency"]) for r in rows.values() if r["outcome"] == "posted"
    )
    assert kinds == {
        ("DEMO_UK", "DEMO_IE", "GBP"): 3,
        ("DEMO_IE", "DEMO_UK", "EUR"): 3,
        ("DEMO_UK", "DEMO_UK2", "GBP"): 3,
    }
    # cross-currency: the buyer's base amount converts at its own rate (IE: 0.87 GBP per EUR)
    cross = next(r for r in rows.values() if r["buyer"] == "DEMO_IE" and r["parity"] == "ok")
    net = Decimal(cross["purchase_net"])
    assert cross["purchase_base_net"] == f"{(net / Decimal('0.87')).quantize(Decimal('0.01'))} EUR"
    assert cross["sales_base_net"] == f"{net} GBP"
    same = next(r for r in rows.values() if r["buyer"] == "DEMO_UK2")
    assert same["sales_base_net"] == same["purchase_base_net"]  # same base currency: no difference
    statuses = Counter(charges[1].get(c).aiq_status for c in seeded.charge_ids)  # type: ignore[union-attr]
    assert statuses == {"posted": 9, "quarantined": 1}
    assert balanced(sandbox)


def test_the_same_pairing_over_api_2_0_switches_entity_by_header(
    sandbox: Sandbox, demo_blocks: DemoBlocks, charges: tuple[str, SqlCharges]
) -> None:
    ids = [add_charge(charges[1]), add_charge(charges[1], "DEMO_IE", "DEMO_UK", currency="EUR")]
    summary = run(sandbox, demo_blocks, charges, version="2.0")
    assert summary["created"] == 2 and summary["parity_mismatches"] == 0
    assert [len(d) for d in documents(sandbox, ids[0], "DEMO_UK", "DEMO_IE")] == [1, 1]
    assert [len(d) for d in documents(sandbox, ids[1], "DEMO_IE", "DEMO_UK")] == [1, 1]
    calls = sandbox.calls()
    assert "Login" not in calls and calls["TokenGet"] == 1  # one integration token for all three entities


def test_a_lost_answer_on_the_second_leg_is_read_back_and_each_leg_exists_once(
    sandbox: Sandbox, demo_blocks: DemoBlocks, charges: tuple[str, SqlCharges]
) -> None:
    charge_id = add_charge(charges[1])
    sandbox.faults(
        {"kind": "drop_response", "operation": "PostInvoiceGetBackTransactionID", "skip": 1, "count": 1}
    )
    assert run(sandbox, demo_blocks, charges)["created"] == 1
    sales, purchase = documents(sandbox, charge_id, "DEMO_UK", "DEMO_IE")
    assert (len(sales), len(purchase)) == (1, 1)
    again = run(sandbox, demo_blocks, charges)
    assert again["input"] == 0
    assert [len(d) for d in documents(sandbox, charge_id, "DEMO_UK", "DEMO_IE")] == [1, 1]


def test_an_outage_on_the_second_leg_leaves_a_half_pair_the_next_run_completes(
    sandbox: Sandbox, demo_blocks: DemoBlocks, charges: tuple[str, SqlCharges]
) -> None:
    charge_id = add_charge(charges[1], "DEMO_IE", "DEMO_UK", currency="EUR")
    sandbox.faults(
        {"kind": "http_error", "operation": "PostInvoiceGetBackTransactionID", "skip": 1, "count": 1}
    )
    with pytest.raises(IntercompanyNotSettled):
        run(sandbox, demo_blocks, charges)
    assert [len(d) for d in documents(sandbox, charge_id, "DEMO_IE", "DEMO_UK")] == [1, 0]
    assert charges[1].get(charge_id).aiq_status == "half"  # type: ignore[union-attr]
    sandbox.clear_faults()
    assert run(sandbox, demo_blocks, charges)["created"] == 1
    assert [len(d) for d in documents(sandbox, charge_id, "DEMO_IE", "DEMO_UK")] == [1, 1]
    uk = gateway_for(sandbox, "DEMO_UK")
    assert [i.Status for i in uk.invoices_by_external_reference(f"IC-{charge_id}-P")] == ["Posted"]
    uk.close()


def test_a_parity_mismatch_planted_in_aiq_is_reported_and_fails_the_run(
    sandbox: Sandbox, demo_blocks: DemoBlocks, charges: tuple[str, SqlCharges]
) -> None:
    charge_id = add_charge(charges[1])
    # Someone keyed the buyer's purchase invoice by hand, for the wrong amount.
    ie = gateway_for(sandbox, "DEMO_IE")
    template = ie.new_purchases_invoice("IC-UK")
    template.ExternalReference, template.InvoiceDate = f"IC-{charge_id}-P", datetime(2026, 11, 20)
    template.Lines = [
        InvoiceLine(
            InvoicedQuantity=Decimal(1), StockItemPrice=Decimal("990.00"), TaxCode="Z0", GLAccountCode="5000"
        )
    ]
    ie.post_invoice(ie.save_invoice(template))
    ie.close()
    with pytest.raises(IntercompanyNotSettled, match="1 parity mismatches"):
        run(sandbox, demo_blocks, charges)
    row = report_rows()[charge_id]
    assert (row["parity"], Decimal(row["difference"])) == ("MISMATCH", Decimal("10.00"))
    assert "parity check failed" in row["reason"] and row["outcome"] == "mismatch"
    sales, purchase = documents(sandbox, charge_id, "DEMO_UK", "DEMO_IE")
    assert (len(sales), len(purchase)) == (1, 1)  # the hand-keyed leg was found, not duplicated
    assert charges[1].get(charge_id).aiq_status == "mismatch"  # type: ignore[union-attr]
