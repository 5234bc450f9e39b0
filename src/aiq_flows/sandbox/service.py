"""What each sandbox operation does, written to behave like AccountsIQ (API-NOTES §3, §4, §9).

Handlers receive the deserialised request body as plain dicts and return the ``Result`` value plus
any out-parameters; business refusals raise `Refused`, which the dispatcher turns into an in-band
``Failure`` envelope with the real ``ErrorCode`` name, as AIQ does (HTTP 200, never a fault).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aiq_flows.gateway.schema import SCHEMA
from aiq_flows.sandbox.ledger import Ledger, dump_account

CODE_MAX = 50
DESCRIPTION_MAX = 500
CENT = Decimal("0.01")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CODE_CHARACTERS = re.compile(r"^[A-Z0-9_.\-/&]+$")
_DEFAULTS: dict[str, Any] = {
    "int": 0,
    "long": 0,
    "short": 0,
    "decimal": Decimal(0),
    "double": 0.0,
    "boolean": False,
}


class Refused(Exception):
    """An in-band refusal: AIQ answers Status/ErrorCode/ErrorMessage with HTTP 200."""

    def __init__(self, code: str, message: str, status: str = "Failure") -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class TokenExpired(Exception):
    pass


def blank(type_name: str) -> dict[str, Any]:
    """A value of a complex type with every field present: what .NET serialises for a new object."""
    values: dict[str, Any] = {}
    for f in SCHEMA.all_fields(type_name):
        if f.type == "dateTime" and f.required and not f.nillable:
            values[f.name] = datetime(1, 1, 1)
        elif f.required and not f.nillable:
            values[f.name] = _DEFAULTS.get(
                f.type, {"LedgerType": "Sales", "RType": "None", "Type": "Unknown"}.get(f.type)
            )
        else:
            values[f.name] = None
    return values


def money(value: Any) -> Decimal:
    return Decimal(str(value if value is not None else 0))


@dataclass
class Reply:
    result: Any = None
    out: dict[str, Any] = field(default_factory=dict)
    status: str = "Success"


@dataclass
class Call:
    entity: str
    params: dict[str, Any]


Handler = Callable[["SandboxService", Call], Reply]
HANDLERS: dict[str, Handler] = {}
# Out-parameter values AIQ returns when a GetBack... operation fails.
FAILED_OUT: dict[str, dict[str, Any]] = {
    "CreateBatchSalesInvoiceGetBackTransactionID": {"transactionID": -1},
}


def handles(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


class SandboxService:
    def __init__(self, ledger: Ledger, token_ttl_seconds: float = 1200.0) -> None:
        self.ledger = ledger
        self.token_ttl_seconds = token_ttl_seconds

    # --- authentication --------------------------------------------------------------------------

    def login(self, company_id: str | None, partner_key: str | None, user_key: str | None) -> str | None:
        creds = self.ledger.credentials()
        for entity in creds["entities"]:
            if (
                entity["company_id"] == company_id
                and partner_key == creds["partner_key"]
                and secrets.compare_digest(entity["user_key"], user_key or "")
            ):
                token = secrets.token_urlsafe(32)
                with self.ledger.transaction() as db:
                    db.execute(
                        "INSERT INTO tokens VALUES (?, ?, ?)",
                        (token, company_id, time.time() + self.token_ttl_seconds),
                    )
                return token
        return None

    def entity_for(self, token: str | None) -> str:
        row = self.ledger.query_one("SELECT entity, expires_at FROM tokens WHERE token = ?", token or "")
        if row is None or row["expires_at"] <= time.time():
            raise TokenExpired()
        return str(row["entity"])

    def expire_tokens(self, token: str | None = None) -> None:
        with self.ledger.transaction() as db:
            if token is None:
                db.execute("UPDATE tokens SET expires_at = 0")
            else:
                db.execute("UPDATE tokens SET expires_at = 0 WHERE token = ?", (token,))

    def handle(self, operation: str, entity: str, params: dict[str, Any]) -> Reply:
        return HANDLERS[operation](self, Call(entity, params))

    # --- helpers ---------------------------------------------------------------------------------

    def customer(self, entity: str, code: str | None) -> dict[str, Any]:
        found = self.ledger.account(entity, "Sales", code or "")
        if found is None:
            raise Refused("CUSTOMER_CODE_DOES_NOT_EXIST", f"Customer code '{code}' does not exist.")
        return found

    def due_date(self, entity: str, credit_term: str | None, invoice_date: datetime) -> datetime:
        row = self.ledger.query_one(
            "SELECT * FROM credit_terms WHERE entity = ? AND code = ?", entity, credit_term or ""
        )
        if row is None:
            return invoice_date
        start = invoice_date
        if row["end_of_month"]:
            next_month = (invoice_date.replace(day=28) + timedelta(days=4)).replace(day=1)
            start = next_month - timedelta(days=1)
        return start + timedelta(days=row["days"])


# --- customers -----------------------------------------------------------------------------------


@handles("GetCustomer")
def get_customer(svc: SandboxService, call: Call) -> Reply:
    return Reply(svc.customer(call.entity, call.params.get("customerCode")))


@handles("GetActiveCustomerList")
def get_active_customers(svc: SandboxService, call: Call) -> Reply:
    customers = [c for c in svc.ledger.accounts(call.entity, "Sales") if c.get("IsActive")]
    return Reply({"Customer": customers})


@handles("GetNewCustomerFromDefaults")
def get_new_customer(svc: SandboxService, call: Call) -> Reply:
    defaults = svc.ledger.entity_settings(call.entity)["customer_defaults"]
    shell = {
        **blank("Customer"),
        **defaults,
        "LedgerType": "Sales",
        "IsActive": True,
        "CreationDate": datetime.now().replace(microsecond=0),
    }
    return Reply(shell)


def _check_account(svc: SandboxService, entity: str, account: dict[str, Any]) -> None:
    code = account.get("Code")
    if code is None:
        raise Refused("ACCOUNT_CODE_IS_NULL", "The account code is mandatory.")
    if code == "":
        raise Refused("ACCOUNT_CODE_IS_EMPTY", "The account code is mandatory.")
    if code != code.strip():
        raise Refused(
            "ACCOUNT_CODE_CANNOT_CONTAIN_LEADING_AND_OR_TRAILING_WHITESPACES",
            f"Account code '{code}' has leading or trailing spaces.",
        )
    if code != code.upper():
        raise Refused("ACCOUNT_CODE_MUST_BE_UPPER_CASE", f"Account code '{code}' must be upper case.")
    if len(code) > CODE_MAX:
        raise Refused("ACCOUNT_CODE_IS_TOO_LONG", f"Account code is longer than {CODE_MAX} characters.")
    if not CODE_CHARACTERS.match(code):
        raise Refused(
            "ACCOUNT_CODE_CONTAINS_INVALID_CHARACTERS", f"Account code '{code}' contains invalid characters."
        )
    name = account.get("Name")
    if name is None:
        raise Refused("ACCOUNT_NAME_IS_NULL", "The account name is mandatory.")
    if not name.strip():
        raise Refused("ACCOUNT_NAME_IS_EMPTY", "The account name is mandatory.")
    if len(name) > CODE_MAX:
        raise Refused("ACCOUNT_NAME_IS_TOO_LONG", f"Account name is longer than {CODE_MAX} characters.")
    for line in ("Address1", "Address2", "City", "PostCode", "Country"):
        if len(account.get(line) or "") > CODE_MAX:
            raise Refused("ACCOUNT_ADDRESS_IS_TOO_LONG", f"{line} is longer than {CODE_MAX} characters.")
    email = account.get("Email")
    if email:
        if len(email) > CODE_MAX:
            raise Refused("ACCOUNT_EMAIL_IS_TOO_LONG", f"Email is longer than {CODE_MAX} characters.")
        if not EMAIL.match(email):
            raise Refused("ACCOUNT_EMAIL_INVALID_FORMAT", f"Email '{email}' is not a valid address.")
    if money(account.get("CreditLimit")) < 0:
        raise Refused("ACCOUNT_CREDIT_LIMIT_MUST_BE_POSITIVE", "Credit limit must be positive.")
    lookups = (
        ("CurrencyCode", "currencies", "CUSTOMER_CURRENCY_CODE_NOT_FOUND"),
        ("DefaultTaxCode", "tax_codes", "CUSTOMER_TAX_CODE_NOT_FOUND"),
        ("ControlGLAccountCode", "gl_accounts", "CUSTOMER_CONTROL_GL_ACCOUNT_NOT_FOUND"),
        ("DefaultGLAccountCode", "gl_accounts", "CUSTOMER_DEFAULT_GL_ACCOUNT_NOT_FOUND"),
        ("CreditTermID", "credit_terms", "CUSTOMER_CREDIT_TERM_NOT_FOUND"),
    )
    for field_name, table, error in lookups:
        value = account.get(field_name)
        if (
            value
            and svc.ledger.query_one(f"SELECT 1 FROM {table} WHERE entity = ? AND code = ?", entity, value)
            is None
        ):
            raise Refused(error, f"{field_name} '{value}' does not exist.")


@handles("UpdateCustomer")
def update_customer(svc: SandboxService, call: Call) -> Reply:
    account = dict(call.params.get("customer") or {})
    _check_account(svc, call.entity, account)
    with svc.ledger.transaction() as db:
        row = db.execute(
            "SELECT account_id, row_version, data FROM accounts WHERE entity = ? AND "
            "ledger = 'Sales' AND code = ?",
            (call.entity, account["Code"]),
        ).fetchone()
        if row is None:
            if not call.params.get("create"):
                raise Refused(
                    "CUSTOMER_CODE_DOES_NOT_EXIST",
                    f"Customer '{account['Code']}' does not exist and create is false.",
                    status="NotCreated",
                )
            account.update(LedgerType="Sales", AccountReferralID=None)
            svc.ledger._insert_account(db, call.entity, "Sales", account)
            return Reply(True)
        if account.get("RowVersionNumber") != str(row["row_version"]):
            raise Refused(
                "OUTDATED_RECORD",
                f"Customer '{account['Code']}' was changed by someone else; read it again and resend.",
                status="Conflicted",
            )
        version = row["row_version"] + 1
        account.update(AccountID=row["account_id"], RowVersionNumber=str(version), LedgerType="Sales")
        db.execute(
            "UPDATE accounts SET data = ?, row_version = ? WHERE account_id = ?",
            (dump_account(account), version, row["account_id"]),
        )
    return Reply(True)


# --- reference data ------------------------------------------------------------------------------


@handles("GetTaxCodeList")
def get_tax_codes(svc: SandboxService, call: Call) -> Reply:
    rows = svc.ledger.query("SELECT * FROM tax_codes WHERE entity = ? ORDER BY code", call.entity)
    taxes = []
    for row in rows:
        tax = blank("Tax")
        tax.update(
            ID=row["code"],
            Code=row["code"],
            Description=row["description"],
            Rate=Decimal(row["rate"]),
            IsStandardRate=row["code"] in ("T1", "S23"),
            Checker={
                "IdLength": CODE_MAX,
                "CodeLength": CODE_MAX,
                "DescriptionLength": DESCRIPTION_MAX,
                "AuthorLength": 8,
            },
        )
        taxes.append(tax)
    return Reply({"Tax": taxes})


@handles("GetGLAccountList")
def get_gl_accounts(svc: SandboxService, call: Call) -> Reply:
    rows = svc.ledger.query("SELECT code, name FROM gl_accounts WHERE entity = ? ORDER BY code", call.entity)
    return Reply({"ArrayOfString": [{"string": [row["code"], row["name"]]} for row in rows]})


# --- batch sales invoices ------------------------------------------------------------------------


@handles("GetNewBatchSalesInvoice")
def get_new_batch_sales_invoice(svc: SandboxService, call: Call) -> Reply:
    customer = svc.customer(call.entity, call.params.get("customerCode"))
    base = svc.ledger.entity_settings(call.entity)["base_currency"]
    rate = svc.ledger.query_one(
        "SELECT rate FROM currencies WHERE entity = ? AND code = ?",
        call.entity,
        customer.get("CurrencyCode") or base,
    )
    today = datetime.combine(date.today(), datetime.min.time())
    return Reply(
        {
            "CustomerCode": customer["Code"],
            "InvoiceDate": today,
            "ExternalReference": None,
            "Description": None,
            "Lines": None,
            "ExchangeRate": Decimal(rate["rate"]) if rate else Decimal(1),
            "DueDate": svc.due_date(call.entity, customer.get("CreditTermID"), today),
        }
    )


def _check_open_period(svc: SandboxService, entity: str, ledger: str, day: datetime) -> int:
    period = svc.ledger.period_for(entity, day.date())
    if period is None:
        raise Refused("DATE_IS_OUT_OF_RANGE", f"{day.date()} is outside the entity's periods.")
    if not period.open[ledger]:
        code = {"Sales": "SALES_LEDGER_ALREADY_CLOSED"}[ledger]
        raise Refused(code, f"The {ledger.lower()} ledger is closed for {period.year}-{period.number:02d}.")
    return period.period_id


@handles("CreateBatchSalesInvoiceGetBackTransactionID")
def create_batch_sales_invoice(svc: SandboxService, call: Call) -> Reply:
    inv = call.params.get("inv") or {}
    entity = call.entity
    customer = svc.customer(entity, inv.get("CustomerCode"))
    reference = inv.get("ExternalReference")
    if reference is None:
        raise Refused("TRANSACTION_EXTERNAL_REFERENCE_IS_NULL", "ExternalReference is required.")
    if len(reference) > CODE_MAX:
        raise Refused(
            "TRANSACTION_EXTERNAL_REFERENCE_IS_TOO_LONG",
            f"ExternalReference is longer than {CODE_MAX} characters.",
        )
    rate = money(inv.get("ExchangeRate"))
    if rate <= 0:
        raise Refused("EXCHANGE_RATE_IS_NEGATIVE_OR_ZERO", "ExchangeRate must be greater than 0.")
    lines = (inv.get("Lines") or {}).get("BatchSalesInvoiceLine") or []
    if not lines:
        raise Refused("BATCH_INVOICE_WITH_NO_INVOICE_LINES", "A batch invoice needs at least one line.")
    settings = svc.ledger.entity_settings(entity)
    postings: list[tuple[str, str, str | None, str | None, Decimal, str]] = []
    gross = Decimal(0)
    for number, line in enumerate(lines, start=1):
        gl_code = line.get("GLAccountCode")
        if not gl_code:
            raise Refused("BATCH_INVOICE_LINE_MISSING_GL_ACCOUNT", f"Line {number} has no GL account.")
        gl = svc.ledger.gl_account(entity, gl_code)
        if gl is None or gl["kind"] != "posting":
            raise Refused(
                "GLACCOUNT_IS_NOT_POSTING_OR_DOES_NOT_EXIST",
                f"Line {number}: GL account '{gl_code}' is not a posting account or does not exist.",
            )
        description = line.get("Description")
        if not description:
            raise Refused("BATCH_INVOICE_LINE_MISSING_DESCRIPTION", f"Line {number} has no description.")
        if len(description) > DESCRIPTION_MAX:
            raise Refused(
                "TRANSACTION_LINE_DESCRIPTION_IS_TOO_LONG",
                f"Line {number}: description is longer than {DESCRIPTION_MAX} characters.",
            )
        tax_code = line.get("TaxCode") or ""
        if tax_code != tax_code.upper():
            raise Refused("TAX_CODE_IS_NOT_UPPERCASE", f"Line {number}: tax code must be upper case.")
        if len(tax_code) > CODE_MAX:
            raise Refused("TAX_CODE_IS_TOO_LONG", f"Line {number}: tax code is too long.")
        if (
            svc.ledger.query_one("SELECT 1 FROM tax_codes WHERE entity = ? AND code = ?", entity, tax_code)
            is None
        ):
            raise Refused("TAX_CODE_DOES_NOT_EXIST", f"Line {number}: tax code '{tax_code}' does not exist.")
        tax_rate = Decimal(str(line.get("TaxRate") or 0))
        if tax_rate < 0:
            raise Refused("TAX_RATE_IS_NEGATIVE", f"Line {number}: tax rate is negative.")
        net = money(line.get("NetAmount"))
        tax = (
            money(line["TaxAmount"])
            if line.get("TaxAmount") is not None
            else (net * tax_rate).quantize(CENT, ROUND_HALF_UP)
        )
        if net < 0 or tax < 0:
            raise Refused(
                "BATCH_INVOICE_TOTAL_GROSS_AMT_NEGATIVE",
                f"Line {number}: amounts must not be negative; use a credit note.",
            )
        gross += net + tax
        department = line.get("DepartmentID")
        postings.append((gl_code, description, department, tax_code, -net, "Net"))
        if tax:
            postings.append(
                (settings["control_accounts"]["sales_vat"], description, department, tax_code, -tax, "Vat")
            )
    invoice_date = inv.get("InvoiceDate") or datetime(1, 1, 1)
    period_id = _check_open_period(svc, entity, "Sales", invoice_date)
    control = customer.get("ControlGLAccountCode") or settings["control_accounts"]["debtors"]
    due = inv.get("DueDate") or svc.due_date(entity, customer.get("CreditTermID"), invoice_date)
    with svc.ledger.transaction() as db:
        cursor = db.execute(
            "INSERT INTO transactions (entity, type, type_code, ledger, is_batch, account_id, "
            "account_code, account_name, external_reference, description, transaction_date, "
            "creation_date, due_date, currency, exchange_rate, control_amount, period_id) "
            "VALUES (?, 'SalesBatchInvoice', 'SI', 'Sales', 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entity,
                customer["AccountID"],
                customer["Code"],
                customer["Name"],
                reference,
                inv.get("Description") or "",
                invoice_date.isoformat(),
                datetime.now().replace(microsecond=0).isoformat(),
                due.isoformat(),
                customer.get("CurrencyCode") or settings["base_currency"],
                str(rate),
                str(gross),
                period_id,
            ),
        )
        transaction_id = int(cursor.lastrowid or 0)
        base_total = Decimal(0)
        for gl_code, description, department, tax_code, amount, kind in postings:
            base_amount = (amount / rate).quantize(CENT, ROUND_HALF_UP)
            base_total += base_amount
            db.execute(
                "INSERT INTO transaction_lines (transaction_id, gl_code, description, "
                "department_id, tax_code, amount, bc_amount, broad_type, is_control) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
                (
                    transaction_id,
                    gl_code,
                    description,
                    department,
                    tax_code,
                    str(amount),
                    str(base_amount),
                    kind,
                ),
            )
        # The debtors control line balances the document in both currencies.
        db.execute(
            "INSERT INTO transaction_lines (transaction_id, gl_code, description, "
            "department_id, tax_code, amount, bc_amount, broad_type, is_control) "
            "VALUES (?, ?, ?, NULL, NULL, ?, ?, 'Control', 1)",
            (transaction_id, control, inv.get("Description") or "", str(gross), str(-base_total)),
        )
    return Reply(str(transaction_id), {"transactionID": transaction_id})


# --- transactions --------------------------------------------------------------------------------


def _transaction_row(svc: SandboxService, entity: str, transaction_id: int) -> dict[str, Any]:
    row = svc.ledger.query_one(
        "SELECT * FROM transactions WHERE entity = ? AND transaction_id = ?", entity, transaction_id
    )
    if row is not None:
        return dict(row)
    raise Refused("TRANSACTION_NOT_FOUND", f"Transaction {transaction_id} does not exist.")


def _summary(svc: SandboxService, row: dict[str, Any]) -> dict[str, Any]:
    period = svc.ledger.query_one("SELECT * FROM periods WHERE period_id = ?", row["period_id"])
    when = datetime.fromisoformat(row["transaction_date"])
    details = []
    for line in svc.ledger.lines(row["transaction_id"]):
        details.append(
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
                "ExchangeRate": Decimal(row["exchange_rate"]),
            }
        )
    control = Decimal(row["control_amount"])
    return {
        **blank("WSTransactionSummary"),
        "AccountID": row["account_id"] or 0,
        "AccountCode": row["account_code"],
        "Ledger": row["ledger"],
        "TransactionType": row["type_code"],
        "TransactionID": row["transaction_id"],
        "IsBatchInvoiceOrNote": bool(row["is_batch"]),
        "ExternalReference": row["external_reference"],
        "ControlAmount": control,
        "OutstandingAmount": control,
        "ControlBCAmount": (control / Decimal(row["exchange_rate"])).quantize(CENT, ROUND_HALF_UP),
        "TransactionDate": when,
        "FinancialYear": period["year"] if period else when.year,
        "PeriodNumber": period["number"] if period else when.month,
        "PeriodName": f"{when:%b %Y}",
        "CreationDate": datetime.fromisoformat(row["creation_date"]),
        "LineDetails": {"WSTransactionDetail": details},
        "CurrencyCode": row["currency"],
        "PeriodDate": when,
        "AccountName": row["account_name"],
        "DueDate": datetime.fromisoformat(row["due_date"]) if row["due_date"] else None,
    }


@handles("GetTransactionsByExternalReference")
def get_transactions_by_reference(svc: SandboxService, call: Call) -> Reply:
    query = call.params.get("query") or {}
    reference = query.get("ExternalReference")
    if not reference:
        raise Refused("INVALID_QUERY_MISSING_EXTERNAL_REFERENCE", "ExternalReference is required.")
    start = query.get("FromDate") or datetime(1, 1, 1)
    end = query.get("ToDate") or datetime(9999, 12, 31)
    types = set((query.get("TypesFilter") or {}).get("string") or [])
    accounts = set((query.get("AccountIDsFilter") or {}).get("int") or [])
    found = []
    for row in svc.ledger.documents(call.entity, reference):
        when = datetime.fromisoformat(row["transaction_date"])
        if not (start.replace(tzinfo=None) <= when <= end.replace(tzinfo=None)):
            continue
        if types and row["type_code"] not in types:
            continue
        if accounts and row["account_id"] not in accounts:
            continue
        found.append(_summary(svc, row))
    return Reply({"WSTransactionSummary": found} if found else None)


@handles("GetTransaction")
def get_transaction(svc: SandboxService, call: Call) -> Reply:
    row = _transaction_row(svc, call.entity, int(call.params.get("transactionID") or 0))
    when = datetime.fromisoformat(row["transaction_date"])
    lines = []
    for line in svc.ledger.lines(row["transaction_id"]):
        is_control = bool(line["is_control"])
        lines.append(
            {
                **blank("TransactionLine"),
                "TransactionLineID": line["line_id"],
                "TransactionID": row["transaction_id"],
                "AccountID": row["account_id"] if is_control else None,
                "CurrencyCode": row["currency"],
                "TaxCode": line["tax_code"],
                "TransactionGroupNumber": row["transaction_id"],
                "GLAccountCode": line["gl_code"],
                "TransactionLineType": line["broad_type"],
                "Description": line["description"],
                "ExternalReference": row["external_reference"],
                "CreationDate": datetime.fromisoformat(row["creation_date"]),
                "TransactionDate": when,
                "DueDate": datetime.fromisoformat(row["due_date"]) if row["due_date"] else None,
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
        {
            "Lines": {"TransactionLine": lines},
            "TransactionType": row["type"],
            "DueDate": datetime.fromisoformat(row["due_date"]) if row["due_date"] else None,
        }
    )
