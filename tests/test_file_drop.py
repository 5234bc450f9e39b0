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


def test_a_messy_export_quarantines_each_bad_sale_and_posts_the_rest(
    sandbox: Sandbox, demo_blocks: DemoBlocks, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    incoming = folder / "incoming"
    incoming.mkdir(parents=True)
    lines = rows(7001, 8)
    spoil = {
        "7002": {"sale_date": "yesterday"},
        "7003": {"net_amount": "£12.00"},
        "7004": {"line_description": "Wid\x0bgets"},
        "7005": {"sale_id": "70\x0705"},  # a control character in the id
        "7006": {"sale_date": "20/11/2026"},  # only written differently: posted, dated the 20th
        "7007": {"service_months": "12"},  # months without a start
    }
    for line in lines:
        line.update(spoil.get(line["sale_id"], {}))
    lines.append({**lines[0], "sale_id": "", "reference": "NO-ID"})  # a row without a sale id
    pd.DataFrame(lines).to_csv(incoming / "messy.csv", index=False)

    summary = file_drop_sales_sync(
        folder=str(folder), aiq_connection=demo_blocks.aiq, state_store=demo_blocks.store
    )

    assert summary["rejected_files"] == 0  # bad cells refuse their sale, never the file
    assert (summary["input"], summary["created"], summary["quarantined"]) == (9, 3, 6)
    [results_file] = (folder / "archive").glob("*-messy.results.csv")
    results = pd.read_csv(results_file, dtype=str, keep_default_na=False).set_index("sale_id")
    assert results.loc["7002", "message"].endswith(
        "sale_date: 'yesterday' is not a date (expected YYYY-MM-DD, DD/MM/YYYY or a timestamp)"
    )
    assert "lines[1].net_amount: '£12.00' is not a number" in results.loc["7003", "message"]
    assert "lines[1].description: character U+000B" in results.loc["7004", "message"]
    assert (
        "sale_id: character U+0007 (a control character) at position 3" in results.loc["70\x0705", "message"]
    )
    assert "service_start: is missing: service_months is given" in results.loc["7007", "message"]
    assert "sale_id: is missing" in results.loc["messy.csv row 18", "message"]
    assert set(results.loc[["7001", "7006", "7008"], "outcome"]) == {"created"}
    documents = {d["external_reference"]: d for d in sandbox.documents()}
    assert set(documents) == {"S-7001", "S-7006", "S-7008"}
    assert documents["S-7006"]["transaction_date"].startswith("2026-11-20")


EXPORT_MAPPING = """
version: 1
reference_prefix: "INV-"
sales:
  id: Invoice No
  columns:
    reference: Invoice No
    customer: Account
    date: Invoice Date
    currency: {value: GBP}
    description: Project
lines:
  columns:
    description: Item
    quantity: Qty
    unit_price: Unit Price
    tax_code: VAT Code
    gl_code: {value: "4100"}
customers:
  code_from: Account
  columns: {name: Account Name}
"""


def own_export(first: int, count: int, price: str = "75.50") -> pd.DataFrame:
    """An accounting export with its own headers, one row per line, no VAT amounts kept."""
    return pd.DataFrame(
        [
            {
                "Invoice No": str(number),
                "Account": "northwind",
                "Account Name": "Northwind Traders",
                "Invoice Date": "24/11/2026",
                "Project": f"Project {number}",
                "Item": item,
                "Qty": "2",
                "Unit Price": price,
                "VAT Code": "T1",
            }
            for number in range(first, first + count)
            for item in ("Design", "Build")
        ]
    )


def test_an_export_with_its_own_headers_posts_once_through_its_mapping(
    sandbox: Sandbox, demo_blocks: DemoBlocks, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    incoming = folder / "incoming"
    incoming.mkdir(parents=True)
    own_export(801, 3).to_csv(incoming / "invoices.csv", index=False)

    def drop(mapping: str = EXPORT_MAPPING, **parameters: object) -> object:
        return file_drop_sales_sync(
            folder=str(folder),
            aiq_connection=demo_blocks.aiq,
            state_store=demo_blocks.store,
            mapping=mapping,
            **parameters,
        )

    # A mapping that is not one: the run stops before anything is read or written.
    failed = drop(
        EXPORT_MAPPING.replace("  columns:\n    reference", "  colums:\n    reference"), return_state=True
    )
    assert failed.is_failed()  # type: ignore[attr-defined]
    assert "mapping: sales.columns: is required (found 'colums' instead: a typo?)" in str(failed.message)  # type: ignore[attr-defined]
    assert (incoming / "invoices.csv").exists() and sandbox.documents() == []
    # One naming a header this export calls otherwise: the file is set aside, saying which.
    summary = drop(EXPORT_MAPPING.replace("  id: Invoice No", "  id: Invoice Number"))
    assert summary["rejected_files"] == 1 and sandbox.documents() == []  # type: ignore[index]
    rejected = pd.read_csv(next((folder / "rejected").glob("*-invoices.results.csv")))
    assert "missing columns 'Invoice Number' (sales.id)" in rejected["message"][0]
    shutil.copy(next((folder / "rejected").glob("*-invoices.csv")), incoming / "invoices.csv")

    summary = drop()
    assert (summary["input"], summary["created"]) == (3, 3)  # type: ignore[index]
    documents = {d["external_reference"]: d for d in sandbox.documents()}
    assert set(documents) == {"INV-801", "INV-802", "INV-803"}
    # 2 x 75.50 twice, with VAT at T1's 20% as AIQ computes it.
    assert {d["control_amount"] for d in documents.values()} == {"362.40"}
    [results] = (folder / "archive").glob("*-invoices.results.csv")
    table = pd.read_csv(results, dtype=str).drop_duplicates("sale_id").set_index("sale_id")
    assert {k: int(v) for k, v in table["aiq_transaction_id"].items()} == {
        ref.removeprefix("INV-"): d["transaction_id"] for ref, d in documents.items()
    }

    # The same export again creates nothing; one invoice changed since is reported, left alone.
    export = own_export(801, 3)
    export.loc[export["Invoice No"] == "802", "Unit Price"] = "80.00"
    export.to_csv(incoming / "invoices-again.csv", index=False)
    again = drop()
    assert (again["created"], again["already_present"]) == (0, 3)  # type: ignore[index]
    [results] = (folder / "archive").glob("*-invoices-again.results.csv")
    changed = pd.read_csv(results, dtype=str, keep_default_na=False).drop_duplicates("sale_id")
    assert list(changed.loc[changed["error_code"] != "", "sale_id"]) == ["802"]
    assert len(sandbox.documents()) == 3
