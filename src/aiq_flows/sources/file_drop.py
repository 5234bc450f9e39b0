"""A drop folder of CRM exports (CSV or Excel), one row per sale line, as a second source of
sales beside the SQL CRM.

``<folder>/incoming/`` holds the files to process. Each file becomes plain sale records for the
domain to validate (the same shape every source gives), read through an export mapping: the
columns sections of a source mapping, naming the file's own headers
(`aiq_flows.sources.mapping.ExportMapping`). Without one, the file drop's own headers: sale_id,
reference, sale_date, currency, description, customer_key, customer_name, line_description,
gl_account_code, tax_code, net_amount, tax_amount; optional: customer_email/phone/address1/city/
postcode/country, department_id, service_start, service_end, service_months. A row whose line
columns are all empty is a sale without a line. Once a run is done with a file, the file
moves to ``<folder>/archive/`` with a results file beside it (one row per sale: outcome, AIQ
transaction ID, message). A file that cannot be read at all (no such columns, not a spreadsheet)
moves to ``<folder>/rejected/`` with a results file saying why, and the other files go on.

Every cell is read as text and parsed by the domain, per sale: amounts become `Decimal` exactly as
written (never float), and a cell that cannot be read refuses its sale, never the file.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from aiq_flows.domain.fields import RECORD_LABEL
from aiq_flows.domain.outcomes import SaleOutcome
from aiq_flows.domain.values import ValueRefused, whole_number
from aiq_flows.sources.fields import customer_fields, line_fields, sale_fields
from aiq_flows.sources.mapping import DEFAULT_EXPORT, ExportMapping

PATTERNS = ("*.csv", "*.xlsx")


@dataclass
class DroppedFile:
    path: Path
    sale_ids: list[int | str] = field(default_factory=list)
    problem: str | None = None  # the whole file could not be read


@dataclass
class DropBatch:
    records: list[dict[str, Any]] = field(default_factory=list)
    files: list[DroppedFile] = field(default_factory=list)


def _cell(row: dict[str, Any], column: str) -> str | None:
    """A cell as text (every column is read as text), None when the column is absent or empty."""
    value = row.get(column)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _id_text(value: int | str | None) -> str:
    return "" if value is None else str(value)  # not a float column with NaN for the missing ones


def _read(path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.read_excel(path, dtype=str, keep_default_na=False)


def _records(frame: pd.DataFrame, file: DroppedFile, mapping: ExportMapping) -> list[dict[str, Any]]:
    """One record per sale id, its rows' lines in file order. Values stay as the file spells them:
    the domain parses each and refuses the sale that has a bad one, naming the field; a row
    without a sale id is a record of its own, named by its row number."""
    changed = datetime.fromtimestamp(file.path.stat().st_mtime, UTC).replace(tzinfo=None)
    sales, lines, customers = mapping.sales.columns, mapping.lines.columns, mapping.customers.columns
    key_column = mapping.customers.code_from or sales.customer
    records: dict[int | str, dict[str, Any]] = {}
    for number, row in enumerate(frame.to_dict(orient="records"), start=2):  # row 1: the headers
        text = _cell(row, mapping.sales.id)
        sale_id: int | str = f"{file.path.name} row {number}"  # a row without one is named by its place
        if text is not None:
            try:
                sale_id = whole_number(text) or text
            except ValueRefused:
                sale_id = text
        record = records.get(sale_id)

        def cell(key: str, column: str, row: dict[str, Any] = row) -> Any:
            return _cell(row, column)

        if record is None:
            key = _cell(row, key_column) if isinstance(key_column, str) else None
            record = records[sale_id] = {
                "sale_id": None if text is None else sale_id,
                RECORD_LABEL: sale_id,
                "reference_prefix": mapping.reference_prefix,
                "updated_at": changed,
                **sale_fields(sales, cell),
                "customer": None if key is None else customer_fields(customers, key, cell),
                "lines": [],
            }
            file.sale_ids.append(sale_id)
        line = line_fields(lines, len(record["lines"]) + 1, cell)
        if all(value is None for name, value in line.items() if name != "line_no"):
            continue  # a sale row without a line: the domain refuses a sale with no lines
        record["lines"].append(line)
    return list(records.values())


class DropFolder:
    def __init__(self, folder: str | Path) -> None:
        self.root = Path(folder)
        self.incoming, self.archive, self.rejected = (
            self.root / n for n in ("incoming", "archive", "rejected")
        )
        for directory in (self.incoming, self.archive, self.rejected):
            directory.mkdir(parents=True, exist_ok=True)

    def read(self, mapping: ExportMapping = DEFAULT_EXPORT) -> DropBatch:
        """Every file waiting in ``incoming/``, oldest first, read through the mapping of its
        headers (the file drop's own, by default)."""
        batch = DropBatch()
        for path in self.waiting():
            file = DroppedFile(path)
            batch.files.append(file)
            try:
                frame = _read(path)
                needed = mapping.required_headers
                missing = [
                    f"{header!r} ({key})" for header, key in needed.items() if header not in frame.columns
                ]
                if missing:
                    raise ValueError(f"missing columns {', '.join(missing)}")
                batch.records += _records(frame, file, mapping)
            except Exception as error:
                file.problem = f"{path.name} cannot be read: {error}"
                file.sale_ids.clear()
        return batch

    def settle(self, batch: DropBatch, outcomes: list[SaleOutcome]) -> list[Path]:
        """Move each file out of ``incoming/`` with its results file beside it."""
        by_sale = {o.sale_id: o for o in outcomes}
        return self.archive_with_results(
            batch.files,
            lambda file: [_result_row(sale_id, by_sale.get(sale_id)) for sale_id in file.sale_ids],
        )

    def waiting(self) -> list[Path]:
        """The files in ``incoming/``, oldest first."""
        return sorted(
            (p for pattern in PATTERNS for p in self.incoming.glob(pattern)), key=lambda p: p.stat().st_mtime
        )

    def archive_with_results(
        self, files: list[DroppedFile], rows_of: Callable[[DroppedFile], list[dict[str, Any]]]
    ) -> list[Path]:
        """Move each file out of ``incoming/`` (to ``archive/``, or ``rejected/`` when it could not
        be read) with its results file beside it."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        written = []
        for file in files:
            target = (self.rejected if file.problem else self.archive) / f"{stamp}-{file.path.name}"
            rows = (
                [{"file": file.path.name, "outcome": "rejected", "message": file.problem}]
                if file.problem
                else rows_of(file)
            )
            results = target.with_name(f"{target.stem}.results.csv")
            pd.DataFrame(rows).to_csv(results, index=False)
            shutil.move(str(file.path), target)
            written.append(results)
        return written


def _result_row(sale_id: Any, outcome: SaleOutcome | None) -> dict[str, Any]:
    """One sale's line in its file's results: what happened, AIQ's transaction ID, the error code
    (CHANGED_AFTER_POSTING for an export changed since its invoice was posted) and why."""
    if outcome is None:
        return {
            "sale_id": sale_id,
            "reference": "",
            "outcome": "not processed",
            "aiq_transaction_id": "",
            "error_code": "",
            "message": "",
        }
    return {
        "sale_id": sale_id,
        "reference": outcome.reference or "",
        "outcome": outcome.outcome.value,
        "aiq_transaction_id": _id_text(outcome.transaction_id),
        "error_code": outcome.error_code or "",
        "message": outcome.reason or "",
    }


# --- payments: a drop folder of payment exports (a payment provider's, a bank's) ------------------

PAYMENT_HEADERS = ("payment_id", "customer", "paid_on", "amount")  # required
PAYMENT_OPTIONAL = ("currency", "bank_account", "invoices", "kind", "refund_of")


@dataclass
class PaymentDrop:
    records: list[dict[str, Any]] = field(default_factory=list)
    files: list[DroppedFile] = field(default_factory=list)


class PaymentDropFolder(DropFolder):
    """Payment exports, one row per payment, with the headers ``payment_id, customer, paid_on,
    amount`` and optionally ``currency, bank_account, invoices, kind, refund_of`` (as the mapping's
    ``payments`` columns); each file archived with a results file once its payments are done."""

    def read_payments(self) -> PaymentDrop:
        batch = PaymentDrop()
        for path in self.waiting():
            file = DroppedFile(path)
            batch.files.append(file)
            try:
                frame = _read(path)
                missing = [header for header in PAYMENT_HEADERS if header not in frame.columns]
                if missing:
                    raise ValueError(f"missing columns {', '.join(repr(m) for m in missing)}")
                for number, row in enumerate(frame.to_dict(orient="records"), start=2):
                    payment_id = _cell(row, "payment_id")
                    record = {name: _cell(row, name) for name in PAYMENT_HEADERS + PAYMENT_OPTIONAL}
                    record[RECORD_LABEL] = f"{path.name} row {number}"
                    batch.records.append(record)
                    file.sale_ids.append(payment_id or f"{path.name} row {number}")
            except Exception as error:
                file.problem = f"{path.name} cannot be read: {error}"
                file.sale_ids.clear()
        return batch

    def settle_payments(self, batch: PaymentDrop, results: dict[str, dict[str, Any]]) -> list[Path]:
        """Move each file out of ``incoming/`` with its results (one row per payment) beside it."""
        return self.archive_with_results(
            batch.files,
            lambda file: [
                results.get(str(pid), {"payment_id": pid, "status": "not processed"}) for pid in file.sale_ids
            ],
        )
