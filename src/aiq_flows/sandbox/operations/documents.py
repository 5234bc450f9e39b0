"""Posted documents: batch sales and purchase invoices (single and bulk), general journals, and
reading transactions back. Every posting balances to zero in document and base currency."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from aiq_flows.sandbox.service import (
    CODE_MAX,
    DESCRIPTION_MAX,
    Call,
    Refused,
    Reply,
    SandboxService,
    blank,
    cents,
    check_code,
    check_description,
    handles,
    items,
    money,
    today,
)


@dataclass(frozen=True)
class Posting:
    gl_code: str
    description: str
    department: str | None
    tax_code: str | None
    amount: Decimal  # signed: debit positive, credit negative
    kind: str  # RType: Net, Vat, Control


@dataclass(frozen=True)
class BatchLedger:
    """How a batch invoice posts on one ledger."""

    ledger: str
    account_field: str
    line_item: str
    vat_control: str
    sign: int  # the sign of the net and VAT lines; the control line takes the opposite
    type_name: str
    type_code: str


SALES = BatchLedger(
    "Sales", "CustomerCode", "BatchSalesInvoiceLine", "sales_vat", -1, "SalesBatchInvoice", "SI"
)
PURCHASES = BatchLedger(
    "Purchases", "SupplierCode", "BatchPurchasesInvoiceLine", "purchase_vat", 1, "PurchasesInvoice", "PI"
)


def store_transaction(
    svc: SandboxService,
    entity: str,
    header: dict[str, Any],
    postings: list[Posting],
    rate: Decimal,
    then: Callable[[sqlite3.Connection, int], None] | None = None,
) -> int:
    """Write a transaction and its lines in one database transaction; the last posting is the one
    that balances, in base currency too (it absorbs the rounding of the converted lines). ``then``
    runs inside the same database transaction (a draft becoming posted commits with its posting)."""
    with svc.ledger.transaction() as db:
        columns = ", ".join(header)
        cursor = db.execute(
            f"INSERT INTO transactions ({columns}) VALUES ({', '.join('?' * len(header))})",
            tuple(header.values()),
        )
        transaction_id = int(cursor.lastrowid or 0)
        base_total = Decimal(0)
        for number, posting in enumerate(postings, start=1):
            base = cents(posting.amount / rate) if number < len(postings) else -base_total
            base_total += base
            db.execute(
                "INSERT INTO transaction_lines (transaction_id, gl_code, description, department_id, "
                "tax_code, amount, bc_amount, broad_type, is_control) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    transaction_id,
                    posting.gl_code,
                    posting.description,
                    posting.department,
                    posting.tax_code,
                    str(posting.amount),
                    str(base),
                    posting.kind,
                    int(posting.kind == "Control"),
                ),
            )
        if then is not None:
            then(db, transaction_id)
    return transaction_id


# --- outstanding amounts ----------------------------------------------------------------------------


def control_amount(svc: SandboxService, transaction_id: int) -> Decimal:
    """The signed amount on the account's control line: a debit (invoice) positive, a credit
    (receipt, credit note) negative."""
    row = svc.ledger.query_one(
        "SELECT amount FROM transaction_lines WHERE transaction_id = ? AND is_control = 1", transaction_id
    )
    return Decimal(row["amount"]) if row else Decimal(0)


def allocated(svc: SandboxService, entity: str, transaction_ids: list[int]) -> dict[int, Decimal]:
    """What allocations have settled on each of these transactions, a query per 900 of them."""
    settled: dict[int, Decimal] = {}
    for start in range(0, len(transaction_ids), 900):  # under SQLite's oldest bound-parameter limit
        chunk = transaction_ids[start : start + 900]
        rows = svc.ledger.query(
            "SELECT transaction_id, amount FROM allocations "
            f"WHERE entity = ? AND transaction_id IN ({', '.join('?' * len(chunk))})",
            entity,
            *chunk,
        )
        for row in rows:
            settled[row["transaction_id"]] = settled.get(row["transaction_id"], Decimal(0)) + Decimal(
                row["amount"]
            )
    return settled


def left_to_settle(control: Decimal, settled: Decimal) -> Decimal:
    """What is left of a control amount once `settled` is allocated, signed like it."""
    return control - settled if control >= 0 else control + settled


def outstanding(
    svc: SandboxService, entity: str, transaction_id: int, control: Decimal | None = None
) -> Decimal:
    """What is left to settle, signed like the control line (0 once fully allocated); `control`
    when the caller has read the control line already."""
    control = control_amount(svc, transaction_id) if control is None else control
    return left_to_settle(control, allocated(svc, entity, [transaction_id]).get(transaction_id, Decimal(0)))


def check_reference(reference: str | None) -> str:
    if reference is None:
        raise Refused("TRANSACTION_EXTERNAL_REFERENCE_IS_NULL", "ExternalReference is required.")
    if len(reference) > CODE_MAX:
        raise Refused(
            "TRANSACTION_EXTERNAL_REFERENCE_IS_TOO_LONG",
            f"ExternalReference is longer than {CODE_MAX} characters.",
        )
    return reference


def _batch_line_postings(
    svc: SandboxService, entity: str, kind: BatchLedger, number: int, line: dict[str, Any]
) -> tuple[list[Posting], Decimal]:
    gl_code = line.get("GLAccountCode")
    if not gl_code:
        raise Refused("BATCH_INVOICE_LINE_MISSING_GL_ACCOUNT", f"Line {number} has no GL account.")
    check_code(gl_code, "GLACCOUNT_CODE", f"Line {number}: GL account")
    gl = svc.ledger.gl_account(entity, gl_code)
    if gl is None or gl["kind"] != "posting":
        raise Refused(
            "GLACCOUNT_IS_NOT_POSTING_OR_DOES_NOT_EXIST",
            f"Line {number}: GL account '{gl_code}' is not a posting account or does not exist.",
        )
    if not line.get("Description"):  # AIQ's batch code for a line without one
        raise Refused("BATCH_INVOICE_LINE_MISSING_DESCRIPTION", f"Line {number} has no description.")
    description = check_description(line["Description"], f"Line {number}")
    tax_code = line.get("TaxCode")
    check_code(tax_code, "TAX_CODE", f"Line {number}: tax code")
    if not svc.exists("tax_codes", entity, tax_code):
        raise Refused("TAX_CODE_DOES_NOT_EXIST", f"Line {number}: tax code '{tax_code}' does not exist.")
    department = line.get("DepartmentID")
    svc.check_department(entity, department, f"Line {number}", gl_code)
    # A rate is a fraction (0.2 is 20%); AIQ: it "cannot be more than 1 (i.e. 100%)".
    tax_rate = Decimal(str(line.get("TaxRate") or 0))
    if tax_rate < 0:
        raise Refused("TAX_RATE_IS_NEGATIVE", f"Line {number}: tax rate is negative.")
    if tax_rate > 1:
        raise Refused(
            "TAX_RATE_IS_MORE_THAN_100_PERCENT",
            f"Line {number}: tax rate {line.get('TaxRate')} is more than 1 (100%); send it as a fraction.",
        )
    net = money(line.get("NetAmount"))
    # A supplied TaxAmount is the source system's VAT, used as given (AIQ's advice for batch invoices).
    tax = money(line["TaxAmount"]) if line.get("TaxAmount") is not None else cents(net * tax_rate)
    if net < 0 or tax < 0:
        raise Refused(
            "BATCH_INVOICE_TOTAL_GROSS_AMT_NEGATIVE",
            f"Line {number}: amounts must not be negative; use a credit note.",
        )
    vat_control = svc.ledger.entity_settings(entity)["control_accounts"][kind.vat_control]
    postings = [Posting(gl_code, description, department, tax_code, kind.sign * net, "Net")]
    if tax:
        postings.append(Posting(vat_control, description, department, tax_code, kind.sign * tax, "Vat"))
    return postings, net + tax


def post_batch_invoice(svc: SandboxService, entity: str, kind: BatchLedger, inv: dict[str, Any]) -> int:
    """Validate and post one batch invoice: net to each line's GL, VAT to the VAT control, the
    gross to the account's control (debtors or creditors)."""
    account = svc.account(entity, kind.ledger, inv.get(kind.account_field))
    reference = check_reference(inv.get("ExternalReference"))
    rate = money(inv.get("ExchangeRate"))
    if rate <= 0:
        raise Refused("EXCHANGE_RATE_IS_NEGATIVE_OR_ZERO", "ExchangeRate must be greater than 0.")
    lines = items(inv.get("Lines"), kind.line_item)
    if not lines:
        raise Refused("BATCH_INVOICE_WITH_NO_INVOICE_LINES", "A batch invoice needs at least one line.")
    postings: list[Posting] = []
    gross = Decimal(0)
    for number, line in enumerate(lines, start=1):
        line_postings, line_gross = _batch_line_postings(svc, entity, kind, number, line)
        postings += line_postings
        gross += line_gross
    invoice_date = inv.get("InvoiceDate") or datetime(1, 1, 1)
    period_id = svc.open_period(entity, kind.ledger, invoice_date)
    settings = svc.ledger.entity_settings(entity)
    control = account.get("ControlGLAccountCode")
    # The header's description is the debtors (creditors) control line's, so it follows a
    # transaction line's rule: AIQ documents it "cannot be null".
    description = check_description(inv.get("Description"), "The invoice")
    postings.append(Posting(control, description, None, None, -kind.sign * gross, "Control"))
    due = inv.get("DueDate") or svc.due_date(entity, account.get("CreditTermID"), invoice_date)
    header = {
        "entity": entity,
        "type": kind.type_name,
        "type_code": kind.type_code,
        "ledger": kind.ledger,
        "is_batch": 1,
        "account_id": account["AccountID"],
        "account_code": account["Code"],
        "account_name": account["Name"],
        "external_reference": reference,
        "description": description,
        "transaction_date": invoice_date.isoformat(),
        "creation_date": datetime.now().replace(microsecond=0).isoformat(),
        "due_date": due.isoformat(),
        "currency": account.get("CurrencyCode") or settings["base_currency"],
        "exchange_rate": str(rate),
        "control_amount": str(gross),
        "period_id": period_id,
    }
    return store_transaction(svc, entity, header, postings, rate)


def new_batch_invoice(svc: SandboxService, call: Call, kind: BatchLedger, code_param: str) -> Reply:
    account = svc.account(call.entity, kind.ledger, call.params.get(code_param))
    return Reply(
        {
            kind.account_field: account["Code"],
            "InvoiceDate": today(),
            "ExternalReference": None,
            "Description": None,
            "Lines": None,
            "ExchangeRate": svc.exchange_rate(call.entity, account.get("CurrencyCode")),
            "DueDate": svc.due_date(call.entity, account.get("CreditTermID"), today()),
        }
    )


@handles("GetNewBatchSalesInvoice")
def get_new_batch_sales_invoice(svc: SandboxService, call: Call) -> Reply:
    return new_batch_invoice(svc, call, SALES, "customerCode")


@handles("GetNewBatchPurchasesInvoice")
def get_new_batch_purchases_invoice(svc: SandboxService, call: Call) -> Reply:
    return new_batch_invoice(svc, call, PURCHASES, "supplierCode")


@handles("CreateBatchSalesInvoiceGetBackTransactionID")
def create_batch_sales_invoice_get_id(svc: SandboxService, call: Call) -> Reply:
    transaction_id = post_batch_invoice(svc, call.entity, SALES, call.params.get("inv") or {})
    return Reply(str(transaction_id), {"transactionID": transaction_id})


@handles("CreateBatchSalesInvoice")
def create_batch_sales_invoice(svc: SandboxService, call: Call) -> Reply:
    return Reply(str(post_batch_invoice(svc, call.entity, SALES, call.params.get("inv") or {})))


@handles("CreateBatchPurchasesInvoiceGetBackTransactionID")
def create_batch_purchases_invoice_get_id(svc: SandboxService, call: Call) -> Reply:
    transaction_id = post_batch_invoice(svc, call.entity, PURCHASES, call.params.get("inv") or {})
    return Reply(str(transaction_id), {"transactionID": transaction_id})


def row_status(status: str, code: str, message: str | None) -> dict[str, Any]:
    return {"Status": status, "ErrorCode": code, "ErrorMessage": message, "HasExpired": False}


@handles("CreateBatchSalesInvoiceBulkGetBackTransactionIDs")
def create_batch_sales_invoices_bulk(svc: SandboxService, call: Call) -> Reply:
    """One status and one transaction ID per row, in order; each row commits on its own, so one
    bad row never sinks the others."""
    statuses, ids = [], []
    for inv in items(call.params.get("invoices"), "BatchSalesInvoice"):
        try:
            ids.append(post_batch_invoice(svc, call.entity, SALES, inv or {}))
            statuses.append(row_status("Success", "SUCCESS", None))
        except Refused as refusal:
            ids.append(-1)
            statuses.append(row_status(refusal.status, refusal.code, refusal.message))
    return Reply({"WSResultStatus": statuses}, {"transactionIDs": {"int": ids}})


# --- general journals -----------------------------------------------------------------------------


def _journal_postings(svc: SandboxService, entity: str, lines: list[dict[str, Any]]) -> list[Posting]:
    postings = []
    for number, line in enumerate(lines, start=1):
        gl_code = line.get("GLAccountCode")
        check_code(gl_code, "GLACCOUNT_CODE", f"Line {number}: GL account")
        gl = svc.ledger.gl_account(entity, gl_code or "")
        if gl is not None and gl["kind"] == "control":
            raise Refused(
                "JOURNAL_ENTRY_CANNOT_POST_TO_CONTROL_ACCOUNT",
                f"Line {number}: '{gl_code}' is a control account; journals cannot post to it.",
            )
        foreign_banks = svc.ledger.entity_settings(entity).get("foreign_bank_accounts", {})
        if gl is not None and gl["kind"] == "bank" and gl_code in foreign_banks:
            raise Refused(
                "JOURNAL_ENTRY_CANNOT_POST_TO_FOREIGN_BANK_ACCOUNT",
                f"Line {number}: '{gl_code}' is a {foreign_banks[gl_code]} bank account; "
                "journals cannot post to a foreign-currency bank.",
            )
        if gl is None or gl["kind"] not in ("posting", "bank"):
            raise Refused(
                "GLACCOUNT_IS_NOT_POSTING_OR_DOES_NOT_EXIST",
                f"Line {number}: GL account '{gl_code}' is not a posting account or does not exist.",
            )
        description = line.get("Description")
        if description is not None and len(description) > DESCRIPTION_MAX:
            raise Refused(
                "JOURNAL_ENTRY_LINE_DESCRIPTION_IS_TOO_LONG",
                f"Line {number}: description is longer than {DESCRIPTION_MAX} characters.",
            )
        description = check_description(
            description, f"Line {number}", empty_code="TRANSACTION_LINE_DESCRIPTION_IS_EMPTY"
        )
        debit, credit, amount = money(line.get("Debit")), money(line.get("Credit")), money(line.get("Amount"))
        if debit < 0 or credit < 0:
            raise Refused(
                "JOURNAL_ENTRY_CANNOT_HAVE_NEGATIVE_AMOUNTS", f"Line {number}: negative debit/credit."
            )
        department = line.get("DepartmentID")
        svc.check_department(entity, department, f"Line {number}", gl_code)
        # The signed Amount is current; Debit/Credit are the older form, honoured when Amount is 0.
        signed = amount if amount else debit - credit
        postings.append(Posting(gl_code, description, department, None, signed, "Net"))
    return postings


def post_journal(svc: SandboxService, entity: str, journal: dict[str, Any]) -> int:
    internal, external = journal.get("InternalReference"), journal.get("ExternalReference")
    if not internal or not external:
        raise Refused("JOURNAL_ENTRY_MUST_HAVE_A_REFERENCE", "Internal and external references are required.")
    if len(internal) > CODE_MAX or len(external) > CODE_MAX:
        raise Refused(
            "JOURNAL_ENTRY_REFERENCE_IS_TOO_LONG", f"References are limited to {CODE_MAX} characters."
        )
    lines = items(journal.get("Lines"), "GeneralJournalLine")
    if len(lines) < 2:
        raise Refused("JOURNAL_ENTRY_MUST_HAVE_MORE_THEN_ONE_ROW", "A journal needs at least two lines.")
    postings = _journal_postings(svc, entity, lines)
    total = sum((p.amount for p in postings), Decimal(0))
    if total != 0:
        raise Refused("JOURNAL_ENTRY_LINES_ARE_NOT_BALANCED", f"The lines do not balance (off by {total}).")
    when = journal.get("TransactionDate") or datetime(1, 1, 1)
    period_id = svc.open_period(entity, "General", when)
    settings = svc.ledger.entity_settings(entity)
    header = {
        "entity": entity,
        "type": "GeneralJournal",
        "type_code": "GD",
        "ledger": "General",
        "is_batch": 0,
        "account_id": None,
        "account_code": None,
        "account_name": None,
        "external_reference": external,
        "description": internal,
        "transaction_date": when.isoformat(),
        "creation_date": datetime.now().replace(microsecond=0).isoformat(),
        "due_date": None,
        "currency": settings["base_currency"],
        "exchange_rate": "1",
        "control_amount": str(sum((p.amount for p in postings if p.amount > 0), Decimal(0))),
        "period_id": period_id,
    }
    return store_transaction(svc, entity, header, postings, Decimal(1))


@handles("CreateGeneralJournal")
def create_general_journal(svc: SandboxService, call: Call) -> Reply:
    post_journal(svc, call.entity, call.params.get("journal") or {})
    return Reply()


@handles("CreateGeneralJournalGetBackTransactionID")
def create_general_journal_get_id(svc: SandboxService, call: Call) -> Reply:
    return Reply(out={"transactionID": post_journal(svc, call.entity, call.params.get("journal") or {})})


# --- reading transactions back ----------------------------------------------------------------------


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _summary(svc: SandboxService, row: dict[str, Any]) -> dict[str, Any]:
    period = svc.ledger.query_one("SELECT * FROM periods WHERE period_id = ?", row["period_id"])
    when = datetime.fromisoformat(row["transaction_date"])
    rate = Decimal(row["exchange_rate"])
    lines = svc.ledger.lines(row["transaction_id"])
    details = [
        {
            **blank("WSTransactionDetail"),
            "GLAccountCode": line["gl_code"],
            "IsControlLine": bool(line["is_control"]),
            "IsTaxLine": line["broad_type"] == "Vat",
            "Amount": Decimal(line["amount"]),
            "BCAmount": Decimal(line["bc_amount"]),
            "TaxID": line["tax_code"],
            "DepartmentID": line["department_id"],
            "CurrencyCode": row["currency"],
            "Description": line["description"],
            "TransactionDate": when,
            "PeriodDate": when,
            "ExchangeRate": rate,
        }
        for line in lines
    ]
    control = Decimal(row["control_amount"])
    control_line = next((Decimal(line["amount"]) for line in lines if line["is_control"]), Decimal(0))
    return {
        **blank("WSTransactionSummary"),
        "AccountID": row["account_id"] or 0,
        "AccountCode": row["account_code"],
        "InvoiceID": row["invoice_id"] or 0,
        "NumberOfAttachments": svc.attachment_count(row["entity"], str(row["transaction_id"])),
        "Ledger": row["ledger"],
        "TransactionType": row["type_code"],
        "TransactionID": row["transaction_id"],
        "IsBatchInvoiceOrNote": bool(row["is_batch"]),
        "ExternalReference": row["external_reference"],
        "ControlAmount": control,
        "OutstandingAmount": (
            abs(outstanding(svc, row["entity"], row["transaction_id"], control_line))
            if row["account_id"]
            else control
        ),
        "ControlBCAmount": cents(control / rate),
        "TransactionDate": when,
        "FinancialYear": period["year"] if period else when.year,
        "PeriodNumber": period["number"] if period else when.month,
        "PeriodName": f"{when:%b %Y}",
        "CreationDate": datetime.fromisoformat(row["creation_date"]),
        "LineDetails": {"WSTransactionDetail": details},
        "CurrencyCode": row["currency"],
        "PeriodDate": when,
        "AccountName": row["account_name"],
        "DueDate": _dt(row["due_date"]),
    }


@handles("GetTransactionsByExternalReference")
def get_transactions_by_reference(svc: SandboxService, call: Call) -> Reply:
    query = call.params.get("query") or {}
    reference = query.get("ExternalReference")
    if not reference:
        raise Refused("INVALID_QUERY_MISSING_EXTERNAL_REFERENCE", "ExternalReference is required.")
    start = (query.get("FromDate") or datetime(1, 1, 1)).replace(tzinfo=None)
    end = (query.get("ToDate") or datetime(9999, 12, 31)).replace(tzinfo=None)
    types = set(items(query.get("TypesFilter"), "string"))
    accounts = set(items(query.get("AccountIDsFilter"), "int"))
    found = [
        _summary(svc, row)
        for row in svc.ledger.documents(call.entity, reference)
        if start <= datetime.fromisoformat(row["transaction_date"]) <= end
        and (not types or row["type_code"] in types)
        and (not accounts or row["account_id"] in accounts)
    ]
    return Reply({"WSTransactionSummary": found} if found else None)


TRANSACTIONS_PAGE = 1000  # rows per GetTransactionsBy call; the caller pages with Skip
NO_DATE = datetime(1, 1, 1)


def _within(value: str | None, start: datetime | None, end: datetime | None) -> bool:
    """An unset bound (.NET's DateTime.MinValue, or nil) does not filter."""
    if value is None:
        return start in (None, NO_DATE) and end in (None, NO_DATE)
    when = datetime.fromisoformat(value)
    after = start in (None, NO_DATE) or when >= start.replace(tzinfo=None)  # type: ignore[union-attr]
    before = end in (None, NO_DATE) or when <= end.replace(tzinfo=None)  # type: ignore[union-attr]
    return after and before


@handles("GetTransactionsBy")
def get_transactions_by(svc: SandboxService, call: Call) -> Reply:
    """Transactions in a date range (transaction, creation, period and due dates), filtered by
    type, account, transaction and department, in transaction ID order, a page at a time."""
    query = call.params.get("query") or {}
    types = set(items(query.get("TypesFilter"), "string"))
    accounts = set(items(query.get("AccountIDsFilter"), "int"))
    ids = set(items(query.get("TransactionIDsFilter"), "int"))
    departments = set(items(query.get("DepartmentIDsFilter"), "string"))
    selected = []
    for row in svc.ledger.documents_dated(call.entity, query.get("FromDate"), query.get("ToDate"), types):
        if not (
            _within(row["transaction_date"], query.get("FromDate"), query.get("ToDate"))
            and _within(row["creation_date"], query.get("FromCreationDate"), query.get("ToCreationDate"))
            and _within(row["transaction_date"], query.get("FromPeriodDate"), query.get("ToPeriodDate"))
            and _within(row["due_date"], query.get("FromDueDate"), query.get("ToDueDate"))
            and (not types or row["type_code"] in types)
            and (not accounts or row["account_id"] in accounts)
            and (not ids or row["transaction_id"] in ids)
        ):
            continue
        if departments:
            tagged = {line["department_id"] for line in svc.ledger.lines(row["transaction_id"])}
            if not tagged & departments:
                continue
        selected.append(row)
    skip = max(int(query.get("Skip") or 0), 0)
    page = [_summary(svc, row) for row in selected[skip : skip + TRANSACTIONS_PAGE]]
    return Reply({"WSTransactionSummary": page} if page else None)


@handles("GetTransaction")
def get_transaction(svc: SandboxService, call: Call) -> Reply:
    transaction_id = int(call.params.get("transactionID") or 0)
    row = svc.ledger.query_one(
        "SELECT * FROM transactions WHERE entity = ? AND transaction_id = ?", call.entity, transaction_id
    )
    if row is None:
        raise Refused("TRANSACTION_NOT_FOUND", f"Transaction {transaction_id} does not exist.")
    when = datetime.fromisoformat(row["transaction_date"])
    lines = []
    for line in svc.ledger.lines(transaction_id):
        is_control = bool(line["is_control"])
        lines.append(
            {
                **blank("TransactionLine"),
                "TransactionLineID": line["line_id"],
                "TransactionID": transaction_id,
                "AccountID": row["account_id"] if is_control else None,
                "CurrencyCode": row["currency"],
                "TaxCode": line["tax_code"],
                "TransactionGroupNumber": transaction_id,
                "GLAccountCode": line["gl_code"],
                "TransactionLineType": line["broad_type"],
                "Description": line["description"],
                "ExternalReference": row["external_reference"],
                "CreationDate": datetime.fromisoformat(row["creation_date"]),
                "TransactionDate": when,
                "DueDate": _dt(row["due_date"]),
                "PeriodDate": when,
                "Amount": Decimal(line["amount"]),
                "BCAmount": Decimal(line["bc_amount"]),
                "ExchangeRate": Decimal(row["exchange_rate"]),
                "PeriodID": row["period_id"],
                "DepartmentID": line["department_id"],
                "BroadType": line["broad_type"],
                "IsAccountControlLine": is_control,
            }
        )
    return Reply(
        {"Lines": {"TransactionLine": lines}, "TransactionType": row["type"], "DueDate": _dt(row["due_date"])}
    )
