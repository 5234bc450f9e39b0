"""Attachments (`AttachDocument`) and invoice PDFs (`GetInvoicePDFByTransactionID`).

AIQ does not publish its extension whitelist or size limit (API-NOTES §4.6); the sandbox uses
common office and image formats and 5 MiB (its base64 text stays under libxml2's 10 MB limit for
one text node), and says so in its refusals.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from aiq_flows.sandbox.pdf import render_pdf
from aiq_flows.sandbox.service import Call, Refused, Reply, SandboxService, handles

ALLOWED_EXTENSIONS = frozenset(
    {
        "pdf",
        "csv",
        "xls",
        "xlsx",
        "doc",
        "docx",
        "txt",
        "rtf",
        "odt",
        "ods",
        "xml",
        "png",
        "jpg",
        "jpeg",
        "gif",
        "tif",
        "tiff",
        "msg",
        "eml",
        "zip",
    }
)
MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
FILENAME_MAX = 100
COMMENT_MAX = 500
UNSAFE_FILENAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]')
# Where each master type's MasterID is looked up, and what it is called there.
MASTERS = {
    "Transaction": ("SELECT 1 FROM transactions WHERE entity = ? AND transaction_id = ?", "transaction"),
    "SalesInvoice": (
        "SELECT 1 FROM invoices WHERE entity = ? AND invoice_id = ? AND ledger = 'Sales'",
        "sales invoice",
    ),
    "PurchaseInvoice": (
        "SELECT 1 FROM invoices WHERE entity = ? AND invoice_id = ? AND ledger = 'Purchases'",
        "purchase invoice",
    ),
    "Customer": (
        "SELECT 1 FROM accounts WHERE entity = ? AND account_id = ? AND ledger = 'Sales'",
        "customer",
    ),
    "Supplier": (
        "SELECT 1 FROM accounts WHERE entity = ? AND account_id = ? AND ledger = 'Purchases'",
        "supplier",
    ),
}
SALES_INVOICE_TYPES = ("SalesInvoice", "SalesBatchInvoice")


def _check_filename(filename: str | None) -> str:
    if not filename or not filename.strip() or UNSAFE_FILENAME.search(filename) or "." not in filename:
        raise Refused("DOCUMENT_NAME_IS_INVALID", f"File name {filename!r} is not a valid file name.")
    if len(filename) > FILENAME_MAX:
        raise Refused("DOCUMENT_NAME_IS_TOO_LONG", f"File name is longer than {FILENAME_MAX} characters.")
    extension = filename.rsplit(".", 1)[1].lower()
    if extension not in ALLOWED_EXTENSIONS:
        raise Refused(
            "INVALID_DOCUMENT_EXTENSION",
            f"'.{extension}' files cannot be attached; allowed: {', '.join(sorted(ALLOWED_EXTENSIONS))}.",
        )
    return filename


def _check_master(svc: SandboxService, entity: str, master_type: str, master_id: str | None) -> str:
    if master_type not in MASTERS:
        raise Refused(
            "UNABLE_TO_DETERMINE_DOCUMENT_MASTER",
            f"The sandbox attaches documents to {', '.join(MASTERS)}; not to {master_type}.",
        )
    if not (master_id or "").isdigit() or int(master_id or 0) <= 0:
        raise Refused(
            "DOCUMENT_MASTER_ID_MUST_BE_POSITIVE", f"MasterID {master_id!r} must be a positive number."
        )
    sql, name = MASTERS[master_type]
    if svc.ledger.query_one(sql, entity, int(master_id or 0)) is None:
        raise Refused("UNABLE_TO_DETERMINE_DOCUMENT_MASTER", f"There is no {name} {master_id}.")
    return str(int(master_id or 0))


@handles("AttachDocument")
def attach_document(svc: SandboxService, call: Call) -> Reply:
    document = call.params.get("document") or {}
    header: dict[str, Any] = document.get("Header") or {}
    body: dict[str, Any] = document.get("Content") or {}
    master_type = header.get("MasterType") or "Transaction"
    master_id = _check_master(svc, call.entity, master_type, header.get("MasterID"))
    filename = _check_filename(header.get("Filename"))
    comments = body.get("Comments")
    if comments and len(comments) > COMMENT_MAX:
        raise Refused("DOCUMENT_COMMENT_IS_TOO_LONG", f"Comments are longer than {COMMENT_MAX} characters.")
    content: bytes = body.get("Content") or b""
    if not content:
        raise Refused("DOCUMENT_CONTENT_IS_NULL_OR_EMPTY", "The document has no content.")
    if len(content) > MAX_DOCUMENT_BYTES:
        raise Refused(
            "INVALID_STATE_ERROR_WHILE_UPLOADING_DOCUMENT",
            f"The document is {len(content)} bytes; the limit is {MAX_DOCUMENT_BYTES}.",
        )
    with svc.ledger.transaction() as db:
        taken = db.execute(
            "SELECT 1 FROM attachments WHERE entity = ? AND master_type = ? AND master_id = ? "
            "AND lower(filename) = lower(?)",
            (call.entity, master_type, master_id, filename),
        ).fetchone()
        if taken:
            raise Refused(
                "DOCUMENT_CANNOT_BE_SAVED_NAME_NOT_UNIQUE",
                f"{master_type} {master_id} already has a document named {filename!r}.",
            )
        db.execute(
            "INSERT INTO attachments (entity, master_type, master_id, filename, comments, content) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (call.entity, master_type, master_id, filename, comments, content),
        )
    return Reply()


def _money(amount: Decimal, currency: str) -> str:
    return f"{currency} {amount:,.2f}"


@handles("GetInvoicePDFByTransactionID")
def get_invoice_pdf(svc: SandboxService, call: Call) -> Reply:
    """A one-page PDF of a posted sales invoice, item or batch, rendered from the ledger."""
    transaction_id = int(call.params.get("transactionID") or 0)
    row = svc.ledger.query_one(
        "SELECT * FROM transactions WHERE entity = ? AND transaction_id = ?", call.entity, transaction_id
    )
    if row is None:
        raise Refused("TRANSACTION_NOT_FOUND", f"Transaction {transaction_id} does not exist.")
    if row["type"] not in SALES_INVOICE_TYPES:
        raise Refused("INVOICE_TYPE_INCORRECT", f"Transaction {transaction_id} is not a sales invoice.")
    company = svc.ledger.entity_settings(call.entity)["name"]
    currency = row["currency"]
    lines = svc.ledger.lines(transaction_id)
    net = -sum((Decimal(line["amount"]) for line in lines if line["broad_type"] == "Net"), Decimal(0))
    vat = -sum((Decimal(line["amount"]) for line in lines if line["broad_type"] == "Vat"), Decimal(0))
    when = datetime.fromisoformat(row["transaction_date"])
    due = datetime.fromisoformat(row["due_date"]) if row["due_date"] else when
    text = [
        company,
        "",
        "SALES INVOICE",
        f"Transaction: {transaction_id}    Reference: {row['external_reference'] or ''}",
        f"Date: {when:%d %b %Y}    Due: {due:%d %b %Y}",
        f"Customer: {row['account_name']} ({row['account_code']})",
        "",
    ]
    for line in lines:
        if line["broad_type"] == "Net":
            amount = _money(-Decimal(line["amount"]), currency)
            text.append(f"{line['description'] or ''}  [{line['tax_code'] or ''}]  {amount}")
    text += ["", f"Net: {_money(net, currency)}", f"VAT: {_money(vat, currency)}"]
    text += [f"Total: {_money(net + vat, currency)}"]
    return Reply(render_pdf(text, title=f"Invoice {row['external_reference'] or transaction_id}"))
