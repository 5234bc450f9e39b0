"""Item invoices and credit notes: a template from the account's defaults, a saved draft
(``Processed``), then posting to a transaction (``Posted``, irreversible) or cancelling the draft
(``Cancelled``). AIQ recalculates every line from quantity, price, discount and the tax code's
rate, so the draft's totals are the server's, not the caller's (API-NOTES §4.4, §4.5).

One implementation serves sales and purchase invoices and credit (debit) notes: the kind of a
document is its ``Ledger`` and ``Type``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from aiq_flows.sandbox.ledger import dump_account
from aiq_flows.sandbox.operations.documents import Posting, row_status, store_transaction
from aiq_flows.sandbox.service import (
    ACCOUNT_KINDS,
    CODE_MAX,
    DESCRIPTION_MAX,
    Call,
    Refused,
    Reply,
    SandboxService,
    blank,
    cents,
    check_code,
    handles,
    items,
    money,
    today,
)

NOTES_MAX = 2000
# The invoice's copy of the account's address; each line at most 50 characters, like the account's.
ADDRESS_LINES = (
    "AccountAddress1",
    "AccountAddress2",
    "City",
    "County_State",
    "Country",
    "PostCode",
    "DeliveryAccountName",
    "DeliveryAccountAddress1",
    "DeliveryAccountAddress2",
    "DeliveryCity",
    "DeliveryCounty_State",
    "DeliveryCountry",
    "DeliveryPostCode",
)


@dataclass(frozen=True)
class ItemKind:
    ledger: str
    type: str  # InvoiceType: Invoice or Note
    type_name: str  # the posted transaction's Type
    type_code: str
    sign: int  # sign of the net and VAT lines; the account's control line takes the opposite
    vat_control: str

    @property
    def schema_type(self) -> str:
        return "Invoice" if self.type == "Invoice" else "CreditNote"


KINDS = {
    ("Sales", "Invoice"): ItemKind("Sales", "Invoice", "SalesInvoice", "SI", -1, "sales_vat"),
    ("Sales", "Note"): ItemKind("Sales", "Note", "SalesCreditNote", "SC", 1, "sales_vat"),
    ("Purchases", "Invoice"): ItemKind("Purchases", "Invoice", "PurchasesInvoice", "PI", 1, "purchase_vat"),
    ("Purchases", "Note"): ItemKind("Purchases", "Note", "PurchasesDebitNote", "PD", -1, "purchase_vat"),
}


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


def template(svc: SandboxService, entity: str, kind: ItemKind, code: str | None) -> dict[str, Any]:
    """A new, unsaved document filled from the account's defaults; lines empty."""
    account = svc.account(entity, kind.ledger, code)
    currency = account.get("CurrencyCode") or svc.ledger.entity_settings(entity)["base_currency"]
    values = {
        **blank(kind.schema_type),
        "AccountID": account["AccountID"],
        "AreaID": account.get("AreaID"),
        "CurrencyCode": currency,
        "CurrrencyCode": currency,
        "AccountTaxCode": account.get("DefaultTaxCode"),
        "UseAccountTaxCode": bool(account.get("UseAccountTaxCode")),
        "PaymentMethodID": account.get("PaymentMethodID"),
        "CreationDate": _now(),
        "InvoiceDate": today(),
        "DeliveryDate": today(),
        "Status": "Processed",
        "AccountName": account.get("Name"),
        "AccountAddress1": account.get("Address1"),
        "AccountAddress2": account.get("Address2"),
        "City": account.get("City"),
        "County_State": account.get("County_State"),
        "Country": account.get("Country"),
        "PostCode": account.get("PostCode"),
        "Contact": account.get("Contact"),
        "Phone": account.get("Phone"),
        "DiscountRate": money(account.get("DiscountRate")),
        "ExchangeRate": svc.exchange_rate(entity, currency),
        "Ledger": kind.ledger,
        "Type": kind.type,
        "DueDate": svc.due_date(entity, account.get("CreditTermID"), today()),
    }
    if kind.schema_type == "Invoice":
        values["AccountCode"] = account["Code"]
    return values


def _stock_item(svc: SandboxService, entity: str, code: str) -> dict[str, Any]:
    row = svc.ledger.query_one("SELECT data FROM stock_items WHERE entity = ? AND code = ?", entity, code)
    if row is None:
        raise Refused("STOCKITEM_ID_DOES_NOT_EXIST", f"Stock item '{code}' does not exist.")
    item: dict[str, Any] = json.loads(row["data"])
    return item


def _line(
    svc: SandboxService,
    entity: str,
    kind: ItemKind,
    account: dict[str, Any],
    header: dict[str, Any],
    number: int,
    line: dict[str, Any],
) -> dict[str, Any]:
    """Validate a line and recalculate it as AIQ does: net from quantity, price and discount; VAT
    from the tax code's rate; each rounded to the cent."""
    where = f"Line {number}"
    item = _stock_item(svc, entity, line["StockItemID"]) if line.get("StockItemID") else {}
    sales = kind.ledger == "Sales"
    description = line.get("StockItemDescription") or item.get("SalesDescription" if sales else "Description")
    if description and len(description) > DESCRIPTION_MAX:
        raise Refused(
            "TRANSACTION_LINE_DESCRIPTION_IS_TOO_LONG",
            f"{where}: description is longer than {DESCRIPTION_MAX} characters.",
        )
    if len(line.get("Notes") or "") > NOTES_MAX:
        raise Refused("INVOICE_NOTES_IS_TOO_LONG", f"{where}: notes are longer than {NOTES_MAX} characters.")
    # Codes the caller sends must be well formed; absent ones come from the item or the account.
    for given, subject, label in (
        (line.get("GLAccountCode"), "GLACCOUNT_CODE", "GL account"),
        (line.get("TaxCode"), "TAX_CODE", "tax code"),
    ):
        check_code(given, subject, f"{where}: {label}", nullable=True)
    gl_code = (
        line.get("GLAccountCode")
        or item.get("DefaultSalesGLAccountCode" if sales else "DefaultPurchasesGLAccountCode")
        or account.get("DefaultGLAccountCode")
    )
    gl = svc.ledger.gl_account(entity, gl_code or "")
    if gl is None or gl["kind"] != "posting":
        raise Refused(
            "GLACCOUNT_IS_NOT_POSTING_OR_DOES_NOT_EXIST",
            f"{where}: GL account '{gl_code}' is not a posting account or does not exist.",
        )
    tax_code = line.get("TaxCode") or (
        header.get("AccountTaxCode") if header.get("UseAccountTaxCode") else None
    )
    tax_code = tax_code or item.get("TaxCode") or account.get("DefaultTaxCode")
    tax = svc.ledger.query_one("SELECT rate FROM tax_codes WHERE entity = ? AND code = ?", entity, tax_code)
    if tax is None:
        raise Refused("TAX_CODE_DOES_NOT_EXIST", f"{where}: tax code '{tax_code}' does not exist.")
    quantity = money(line.get("InvoicedQuantity"))
    if quantity < 0:
        raise Refused("INVOICED_QUANTITY_IS_NEGATIVE", f"{where}: quantity is negative; use a credit note.")
    discount = money(line.get("DiscountRate"))
    if discount < 0:
        raise Refused("DISCOUNT_RATE_IS_NEGATIVE", f"{where}: discount rate is negative.")
    if discount >= 1:
        raise Refused("DISCOUNT_RATE_IS_100_PERCENT_OR_MORE", f"{where}: discount rate must be below 1.")
    price = money(line.get("StockItemPrice")) or money(item.get("ItemPrice"))
    if price < 0:
        raise Refused("STOCKITEM_PRICE_IS_NEGATIVE", f"{where}: price is negative.")
    department = line.get("DepartmentID") or header.get("DepartmentID")
    svc.check_department(entity, department, where, gl_code)
    rate = Decimal(tax["rate"])
    actual = price * (1 - discount)
    net = cents(quantity * actual)
    vat = cents(net * rate)
    return {
        **blank("InvoiceLine"),
        **{k: v for k, v in line.items() if v is not None},
        "StockItemDescription": description,
        "GLAccountCode": gl_code,
        "TaxCode": tax_code,
        "TaxRate": rate,
        "InvoicedQuantity": quantity,
        "StockItemPrice": price,
        "DiscountRate": discount,
        "ActualPrice": actual,
        "NetAmount": net,
        "TaxAmount": vat,
        "GrossAmount": net + vat,
        "DepartmentID": department,
        "CreationDate": line.get("CreationDate") or _now(),
    }


def _normalised(svc: SandboxService, entity: str, kind: ItemKind, doc: dict[str, Any]) -> dict[str, Any]:
    """The draft as AIQ stores it: validated, defaults applied, totals recalculated."""
    account = svc.account_by_id(entity, kind.ledger, doc.get("AccountID"))
    name = doc.get("AccountName")
    if name is not None and len(name) > CODE_MAX:
        raise Refused("ACCOUNT_NAME_IS_TOO_LONG", f"AccountName is longer than {CODE_MAX} characters.")
    for address_line in ADDRESS_LINES:
        if len(doc.get(address_line) or "") > CODE_MAX:
            raise Refused(
                "ACCOUNT_ADDRESS_IS_TOO_LONG", f"{address_line} is longer than {CODE_MAX} characters."
            )
    reference = doc.get("ExternalReference")
    if reference and len(reference) > CODE_MAX:
        raise Refused(
            "INVOICE_EXTERNAL_REFERENCE_IS_TOO_LONG",
            f"ExternalReference is longer than {CODE_MAX} characters.",
        )
    if len(doc.get("Notes") or "") > NOTES_MAX:
        raise Refused("INVOICE_NOTES_IS_TOO_LONG", f"Notes are longer than {NOTES_MAX} characters.")
    currency = doc.get("CurrencyCode") or doc.get("CurrrencyCode") or account.get("CurrencyCode")
    if not svc.exists("currencies", entity, currency):
        prefix = ACCOUNT_KINDS[kind.ledger][1]
        raise Refused(f"{prefix}_CURRENCY_CODE_NOT_FOUND", f"Currency '{currency}' does not exist.")
    rate = money(doc.get("ExchangeRate"))
    if rate <= 0:
        raise Refused("EXCHANGE_RATE_IS_NEGATIVE_OR_ZERO", "ExchangeRate must be greater than 0.")
    svc.check_department(entity, doc.get("DepartmentID"), "Header")
    lines = [
        _line(svc, entity, kind, account, doc, number, line)
        for number, line in enumerate(items(doc.get("Lines"), "InvoiceLine"), start=1)
    ]
    net = sum((line["NetAmount"] for line in lines), Decimal(0))
    vat = sum((line["TaxAmount"] for line in lines), Decimal(0))
    invoice_date = doc.get("InvoiceDate") or today()
    draft = {
        **blank(kind.schema_type),
        **{k: v for k, v in doc.items() if v is not None},
        "AccountName": doc.get("AccountName") or account.get("Name"),
        "CurrencyCode": currency,
        "CurrrencyCode": currency,
        "Ledger": kind.ledger,
        "Type": kind.type,
        "Status": "Processed",
        "Lines": {"InvoiceLine": lines} if lines else None,
        "NetAmount": net,
        "TaxAmount": vat,
        "GrossAmount": net + vat,
        "BCNetAmount": cents(net / rate),
        "BCTaxAmount": cents(vat / rate),
        "BCGrossAmount": cents((net + vat) / rate),
        "LastModifiedUTC": _now(),
        "DueDate": doc.get("DueDate") or svc.due_date(entity, account.get("CreditTermID"), invoice_date),
    }
    if kind.schema_type == "Invoice":
        draft["AccountCode"] = account["Code"]
    return draft


def _load(svc: SandboxService, entity: str, document_id: int) -> sqlite3.Row:
    row = svc.ledger.query_one(
        "SELECT * FROM invoices WHERE entity = ? AND invoice_id = ?", entity, document_id
    )
    if row is None:
        raise Refused("INVOICE_ID_DOES_NOT_EXIST", f"Invoice {document_id} does not exist.")
    return row


def _check_type(row: sqlite3.Row, invoice_type: str) -> None:
    if row["type"] != invoice_type:
        wanted = "an invoice" if invoice_type == "Invoice" else "a credit note"
        raise Refused("INVOICE_TYPE_INCORRECT", f"Document {row['invoice_id']} is not {wanted}.")


def _document(row: sqlite3.Row) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(row["data"])
    return data


def save(
    svc: SandboxService, entity: str, invoice_type: str, doc: dict[str, Any], *, create: bool
) -> tuple[int, str]:
    """Create or update a draft; returns (document id, Status). An update must carry the
    RowVersionNumber of the draft it read; posted and cancelled documents cannot change."""
    kind = KINDS.get((doc.get("Ledger") or "Sales", invoice_type))
    if kind is None:
        raise Refused("INVOICE_TYPE_INCORRECT", f"Ledger {doc.get('Ledger')!r} has no {invoice_type}.")
    document_id = int(doc.get("InvoiceID") or 0)
    existing = (
        svc.ledger.query_one(
            "SELECT * FROM invoices WHERE entity = ? AND invoice_id = ?", entity, document_id
        )
        if document_id > 0
        else None
    )
    if existing is None and not create:
        raise Refused(
            "INVOICE_ID_DOES_NOT_EXIST", f"Invoice {document_id} does not exist.", status="NotCreated"
        )
    if existing is not None:
        _check_type(existing, invoice_type)
        if existing["status"] != "Processed":
            raise Refused(
                "INVOICE_CANNOT_BE_UNPOSTED",
                f"Document {document_id} is {existing['status']}; only a draft can be changed.",
            )
        if str(doc.get("RowVersionNumber") or "") != str(existing["row_version"]):
            raise Refused(
                "OUTDATED_RECORD",
                f"Document {document_id} was changed since it was read (row version "
                f"{doc.get('RowVersionNumber')!r}, now {existing['row_version']}).",
                status="Conflicted",
            )
    draft = _normalised(svc, entity, kind, doc)
    with svc.ledger.transaction() as db:
        if existing is None:
            cursor = db.execute(
                "INSERT INTO invoices (entity, ledger, type, status, row_version, external_reference, data) "
                "VALUES (?, ?, ?, 'Processed', 1, ?, '{}')",
                (entity, kind.ledger, kind.type, draft.get("ExternalReference")),
            )
            document_id, version, status = int(cursor.lastrowid or 0), 1, "Created"
            draft["CreationDate"] = _now()
        else:
            version, status = existing["row_version"] + 1, "Success"
        draft["InvoiceID"] = document_id
        draft["RowVersionNumber"] = str(version)
        for number, line in enumerate((draft.get("Lines") or {}).get("InvoiceLine", []), start=1):
            line.update(InvoiceID=document_id, InvoiceItemID=document_id * 1000 + number)
        db.execute(
            "UPDATE invoices SET row_version = ?, external_reference = ?, data = ? WHERE invoice_id = ?",
            (version, draft.get("ExternalReference"), dump_account(draft), document_id),
        )
    return document_id, status


def post(svc: SandboxService, entity: str, invoice_type: str, document_id: int) -> int:
    """Post a draft: net to each line's GL, VAT to the VAT control, gross to the account's control;
    the draft becomes ``Posted`` in the same database transaction."""
    row = _load(svc, entity, document_id)
    _check_type(row, invoice_type)
    if row["status"] == "Cancelled":
        raise Refused(
            "INVOICE_CANNOT_BE_POSTED_SINCE_IT_IS_CANCELLED", f"Document {document_id} is cancelled."
        )
    if row["status"] == "Posted":
        raise Refused(
            "INVOICE_CANNOT_BE_POSTED",
            f"Document {document_id} is already posted as transaction {row['transaction_id']}.",
        )
    kind = KINDS[(row["ledger"], row["type"])]
    doc = _document(row)
    lines = items(doc.get("Lines"), "InvoiceLine")
    if not lines:
        raise Refused("INVOICE_CANNOT_BE_POSTED", f"Document {document_id} has no lines.")
    invoice_date = datetime.fromisoformat(doc["InvoiceDate"]).replace(tzinfo=None)
    period_id = svc.open_period(entity, kind.ledger, invoice_date)
    account = svc.account_by_id(entity, kind.ledger, doc["AccountID"])
    vat_control = svc.ledger.entity_settings(entity)["control_accounts"][kind.vat_control]
    postings: list[Posting] = []
    for line in lines:
        description = line.get("StockItemDescription") or line.get("Notes") or ""
        department, tax_code = line.get("DepartmentID"), line.get("TaxCode")
        postings.append(
            Posting(
                line["GLAccountCode"],
                description,
                department,
                tax_code,
                kind.sign * money(line["NetAmount"]),
                "Net",
            )
        )
        if money(line["TaxAmount"]):
            postings.append(
                Posting(
                    vat_control,
                    description,
                    department,
                    tax_code,
                    kind.sign * money(line["TaxAmount"]),
                    "Vat",
                )
            )
    gross = money(doc["GrossAmount"])
    postings.append(
        Posting(
            account["ControlGLAccountCode"], doc.get("Notes") or "", None, None, -kind.sign * gross, "Control"
        )
    )
    header = {
        "entity": entity,
        "type": kind.type_name,
        "type_code": kind.type_code,
        "ledger": kind.ledger,
        "is_batch": 0,
        "account_id": account["AccountID"],
        "account_code": account["Code"],
        "account_name": account["Name"],
        "external_reference": doc.get("ExternalReference"),
        "description": doc.get("Notes") or "",
        "transaction_date": invoice_date.isoformat(),
        "creation_date": _now().isoformat(),
        "due_date": doc.get("DueDate"),
        "currency": doc["CurrencyCode"],
        "exchange_rate": str(doc["ExchangeRate"]),
        "control_amount": str(gross),
        "period_id": period_id,
        "invoice_id": document_id,
    }

    def mark_posted(db: sqlite3.Connection, transaction_id: int) -> None:
        posted = {**doc, "Status": "Posted", "RowVersionNumber": str(row["row_version"] + 1)}
        db.execute(
            "UPDATE invoices SET status = 'Posted', row_version = row_version + 1, transaction_id = ?, "
            "data = ? WHERE invoice_id = ?",
            (transaction_id, dump_account(posted), document_id),
        )

    return store_transaction(svc, entity, header, postings, money(doc["ExchangeRate"]), then=mark_posted)


def _by_reference(svc: SandboxService, call: Call, invoice_type: str) -> Reply:
    reference = call.params.get("externalReference")
    if not reference:
        raise Refused("INVALID_QUERY_MISSING_EXTERNAL_REFERENCE", "externalReference is required.")
    rows = svc.ledger.query(
        "SELECT * FROM invoices WHERE entity = ? AND external_reference = ? AND type = ? ORDER BY invoice_id",
        call.entity,
        reference,
        invoice_type,
    )
    found = [_document(row) for row in rows]
    item = "Invoice" if invoice_type == "Invoice" else "CreditNote"
    return Reply({item: found} if found else None)


@handles("GetNewSalesInvoice")
def get_new_sales_invoice(svc: SandboxService, call: Call) -> Reply:
    return Reply(template(svc, call.entity, KINDS[("Sales", "Invoice")], call.params.get("customerCode")))


@handles("GetNewPurchasesInvoice")
def get_new_purchases_invoice(svc: SandboxService, call: Call) -> Reply:
    return Reply(template(svc, call.entity, KINDS[("Purchases", "Invoice")], call.params.get("supplierCode")))


@handles("GetNewSalesCreditNote")
def get_new_sales_credit_note(svc: SandboxService, call: Call) -> Reply:
    return Reply(template(svc, call.entity, KINDS[("Sales", "Note")], call.params.get("customerCode")))


@handles("GetNewSalesInvoices")
def get_new_sales_invoices(svc: SandboxService, call: Call) -> Reply:
    """One template per code, in order. The result type has no per-row status, so a code that
    does not exist gets an empty template (AccountID 0) in its position (inferred: AIQ does not
    document this case)."""
    templates = []
    for code in items(call.params.get("customerCodes"), "string"):
        try:
            templates.append(template(svc, call.entity, KINDS[("Sales", "Invoice")], code))
        except Refused:
            templates.append(blank("Invoice"))  # AccountID 0: an empty template keeps the position
    return Reply({"Invoice": templates})


@handles("SaveInvoiceGetBackInvoiceID")
def save_invoice(svc: SandboxService, call: Call) -> Reply:
    invoice = call.params.get("invoice") or {}
    document_id, status = save(svc, call.entity, "Invoice", invoice, create=bool(call.params.get("create")))
    return Reply(out={"invoiceID": document_id}, status=status)


@handles("SaveCreditNoteGetBackCreditNoteID")
def save_credit_note(svc: SandboxService, call: Call) -> Reply:
    note = call.params.get("creditNote") or {}
    document_id, status = save(svc, call.entity, "Note", note, create=bool(call.params.get("create")))
    return Reply(out={"creditNoteID": document_id}, status=status)


@handles("CreateInvoicesGetBackInvoiceIDs")
def create_invoices(svc: SandboxService, call: Call) -> Reply:
    """Save many drafts; one status and one id per row, each row on its own."""
    statuses, ids = [], []
    for invoice in items(call.params.get("invoices"), "Invoice"):
        try:
            document_id, status = save(svc, call.entity, "Invoice", invoice or {}, create=True)
            ids.append(document_id)
            statuses.append(row_status(status, "SUCCESS", None))
        except Refused as refusal:
            ids.append(-1)
            statuses.append(row_status(refusal.status, refusal.code, refusal.message))
    return Reply({"WSResultStatus": statuses}, {"invoiceIDs": {"int": ids}})


@handles("PostInvoiceGetBackTransactionID")
def post_invoice(svc: SandboxService, call: Call) -> Reply:
    return Reply(out={"transactionID": post(svc, call.entity, "Invoice", int(call.params["invoiceID"]))})


@handles("PostCreditNoteGetBackTransactionID")
def post_credit_note(svc: SandboxService, call: Call) -> Reply:
    return Reply(out={"transactionID": post(svc, call.entity, "Note", int(call.params["creditNoteID"]))})


@handles("PostInvoicesGetBackTransactionIDs")
def post_invoices(svc: SandboxService, call: Call) -> Reply:
    """Post many drafts; the answer is a bare array of statuses (no envelope) plus the ids."""
    statuses, ids = [], []
    for document_id in items(call.params.get("invoiceIDs"), "int"):
        try:
            ids.append(post(svc, call.entity, "Invoice", int(document_id)))
            statuses.append(row_status("Success", "SUCCESS", None))
        except Refused as refusal:
            ids.append(-1)
            statuses.append(row_status(refusal.status, refusal.code, refusal.message))
    return Reply({"WSResultStatus": statuses}, {"transactionIDs": {"int": ids}})


@handles("CancelInvoice")
def cancel_invoice(svc: SandboxService, call: Call) -> Reply:
    document_id = int(call.params.get("invoiceID") or 0)
    row = _load(svc, call.entity, document_id)
    if not (call.params.get("reason") or "").strip():
        raise Refused("INVOICE_CANNOT_BE_CANCELLED_NO_REASON_PROVIDED", "A reason is required.")
    if row["status"] != "Processed":
        raise Refused(
            "INVOICE_CANNOT_BE_CANCELLED_NOT_STATUS_PROCESSED",
            f"Document {document_id} is {row['status']}; only a draft can be cancelled.",
        )
    doc = {**_document(row), "Status": "Cancelled", "RowVersionNumber": str(row["row_version"] + 1)}
    doc["Notes"] = "\n".join(filter(None, [doc.get("Notes"), f"Cancelled: {call.params['reason']}"]))
    with svc.ledger.transaction() as db:
        db.execute(
            "UPDATE invoices SET status = 'Cancelled', row_version = row_version + 1, data = ? "
            "WHERE invoice_id = ?",
            (dump_account(doc), document_id),
        )
    return Reply()


@handles("GetInvoice")
def get_invoice(svc: SandboxService, call: Call) -> Reply:
    row = _load(svc, call.entity, int(call.params.get("invoiceID") or 0))
    _check_type(row, "Invoice")
    return Reply(_document(row))


@handles("GetInvoicesByExternalReference")
def get_invoices_by_reference(svc: SandboxService, call: Call) -> Reply:
    """Item invoices only (batch invoices are transactions, not invoices), every match."""
    return _by_reference(svc, call, "Invoice")


@handles("GetCreditNotesByExternalReference")
def get_credit_notes_by_reference(svc: SandboxService, call: Call) -> Reply:
    return _by_reference(svc, call, "Note")
