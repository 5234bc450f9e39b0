"""The file-drop source: CSV and Excel exports in, invoices posted exactly once, each file
archived with its results beside it; an unreadable file set aside without stopping the others."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from flows.file_drop_sync import file_drop_sales_sync
from tests.conftest import DemoBlocks
from tests.support.processes import Sandbox


def rows(first_id: int, count: int) -> list[dict[str, str]]:
    lines = []
    for sale_id in range(first_id, first_id + count):
        for line_no in (1, 2):
            lines.append(
                {
                    "sale_id": str(sale_id),
                    "reference": f"EXP-{sale_id}",
                    "sale_date": "2026-11-20",
                    "currency": "GBP",
                    "description": f"Export order {sale_id}",
                    "customer_key": "acme01",
                    "customer_name": "Acme Industries plc",
                    "line_no": str(line_no),
                    "line_description": "Widgets",
                    "gl_account_code": "4000",
                    "tax_code": "T1",
                    "net_amount": "100.10",
                    "tax_amount": "20.02",
                }
            )
    return lines


def test_exports_are_posted_once_and_archived_with_results(
    sandbox: Sandbox, demo_blocks: DemoBlocks, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    incoming = folder / "incoming"
    incoming.mkdir(parents=True)
    csv_rows = rows(5001, 3)
    csv_rows[-1]["tax_code"] = "ZZ"  # one bad sale: quarantined, the others go on
    pd.DataFrame(csv_rows).to_csv(incoming / "monday.csv", index=False)
    pd.DataFrame(rows(6001, 2)).to_excel(incoming / "tuesday.xlsx", index=False)
    pd.DataFrame([{"order": "1", "amount": "9"}]).to_csv(incoming / "garbled.csv", index=False)

    summary = file_drop_sales_sync(
        folder=str(folder), aiq_connection=demo_blocks.aiq, state_store=demo_blocks.store
    )
    assert (summary["input"], summary["created"], summary["quarantined"], summary["rejected_files"]) == (
        5,
        4,
        1,
        1,
    )
    assert list(incoming.iterdir()) == []
    [monday] = (folder / "archive").glob("*-monday.results.csv")
    results = pd.read_csv(monday, dtype=str)
    assert list(results["outcome"]) == ["created", "created", "quarantined"]
    documents = {d["external_reference"]: d["transaction_id"] for d in sandbox.documents()}
    assert list(results["aiq_transaction_id"][:2].astype(int)) == [documents["S-5001"], documents["S-5002"]]
    assert "'ZZ' is not an AccountsIQ tax code" in results["message"][2]
    [garbled] = (folder / "rejected").glob("*-garbled.results.csv")
    assert "missing columns" in pd.read_csv(garbled)["message"][0]
    assert (folder / "archive").joinpath(monday.name.replace(".results.csv", ".csv")).exists()

    # The same export dropped again: nothing is posted twice.
    archived = next((folder / "archive").glob("*-tuesday.xlsx"))
    shutil.copy(archived, incoming / "tuesday-again.xlsx")
    again = file_drop_sales_sync(
        folder=str(folder), aiq_connection=demo_blocks.aiq, state_store=demo_blocks.store
    )
    assert (again["created"], again["already_present"]) == (0, 2)
    assert len(sandbox.documents()) == 4
