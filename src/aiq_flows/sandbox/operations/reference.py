"""Reference data and balances: tax codes, GL accounts, credit terms, currencies, periods, and
account balances with credit limits."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from aiq_flows.sandbox.operations.documents import allocated, left_to_settle
from aiq_flows.sandbox.service import (
    CODE_MAX,
    DESCRIPTION_MAX,
    Call,
    Refused,
    Reply,
    SandboxService,
    blank,
    handles,
    items,
    money,
)

_CHECKER = {
    "IdLength": CODE_MAX,
    "CodeLength": CODE_MAX,
    "DescriptionLength": DESCRIPTION_MAX,
    "AuthorLength": 8,
}


@handles("GetTaxCodeList")
def get_tax_codes(svc: SandboxService, call: Call) -> Reply:
    rows = svc.ledger.query("SELECT * FROM tax_codes WHERE entity = ? ORDER BY code", call.entity)
    taxes = [
        {
            **blank("Tax"),
            "ID": row["code"],
            "Code": row["code"],
            "Description": row["description"],
            "Rate": Decimal(row["rate"]),
            "IsStandardRate": row["code"] in ("T1", "S23"),
            "Checker": _CHECKER,
        }
        for row in rows
    ]
    return Reply({"Tax": taxes})


@handles("GetGLAccountList")
def get_gl_accounts(svc: SandboxService, call: Call) -> Reply:
    rows = svc.ledger.query("SELECT code, name FROM gl_accounts WHERE entity = ? ORDER BY code", call.entity)
    return Reply({"ArrayOfString": [{"string": [row["code"], row["name"]]} for row in rows]})


@handles("GetCreditTermList")
def get_credit_terms(svc: SandboxService, call: Call) -> Reply:
    rows = svc.ledger.query("SELECT * FROM credit_terms WHERE entity = ? ORDER BY code", call.entity)
    terms = [
        {
            **blank("CreditTerm"),
            "ID": row["code"],
            "Code": row["code"],
            "Description": row["description"],
            "CreditDays": row["days"],
            "EndOfMonth": bool(row["end_of_month"]),
            "Checker": {**_CHECKER, "CreditDayLength": 3},
        }
        for row in rows
    ]
    return Reply({"CreditTerm": terms})


@handles("GetCurrencyList")
def get_currencies(svc: SandboxService, call: Call) -> Reply:
    rows = svc.ledger.query("SELECT code FROM currencies WHERE entity = ? ORDER BY code", call.entity)
    return Reply({"string": [row["code"] for row in rows]})


@handles("GetPeriodList")
def get_periods(svc: SandboxService, call: Call) -> Reply:
    periods = []
    for row in svc.ledger.query("SELECT * FROM periods WHERE entity = ? ORDER BY start_date", call.entity):
        values = {
            "PeriodID": row["period_id"],
            "PeriodNumber": row["number"],
            "PeriodName": f"{date(row['year'], row['number'], 1):%b %Y}",
            "FinancialYear": row["year"],
            "StartDate": datetime.fromisoformat(row["start_date"]),
            "EndDate": datetime.fromisoformat(row["end_date"]),
            "SalesLedgerClosed": not row["sales_open"],
            "PurchasesLedgerClosed": not row["purchases_open"],
            "GeneralLedgerClosed": not row["general_open"],
            "FinancialYearClosed": False,
        }
        periods.append({**values, **{f"_{name}": value for name, value in values.items()}})
    return Reply({"WSFinancialPeriodDTO": periods})


def _balance(svc: SandboxService, entity: str, account: dict[str, Any], as_of: datetime) -> dict[str, Any]:
    """What the account owes us (customer) or we owe it (supplier), as of a date, in its currency."""
    rows = svc.ledger.query(
        "SELECT l.amount FROM transaction_lines l JOIN transactions t ON t.transaction_id = l.transaction_id "
        "WHERE t.entity = ? AND t.account_id = ? AND l.is_control = 1 AND t.transaction_date <= ?",
        entity,
        account["AccountID"],
        as_of.replace(tzinfo=None).isoformat(),
    )
    sign = 1 if account["LedgerType"] == "Sales" else -1
    balance = sign * sum((Decimal(row["amount"]) for row in rows), Decimal(0))
    limit = money(account.get("CreditLimit"))
    return {
        "AccountID": account["AccountID"],
        "AccountCode": account["Code"],
        "AccountType": "Customer" if account["LedgerType"] == "Sales" else "Supplier",
        "Balance": balance,
        "CreditLimit": limit,
        "CreditLeft": max(limit - balance, Decimal(0)) if limit else Decimal(0),
        "OverCreditLimitBalance": max(balance - limit, Decimal(0)) if limit else Decimal(0),
        "CurrencyCode": account.get("CurrencyCode"),
    }


@handles("GetAccountBalanceInformation")
def get_account_balances(svc: SandboxService, call: Call) -> Reply:
    wanted = set(items(call.params.get("accountIDs"), "int"))
    as_of = call.params.get("edt") or datetime.now()
    accounts = [
        a
        for ledger in ("Sales", "Purchases")
        for a in svc.ledger.accounts(call.entity, ledger)
        if a["AccountID"] in wanted
    ]
    return Reply({"AccountBalanceInformation": [_balance(svc, call.entity, a, as_of) for a in accounts]})


@handles("GetCustomerBalanceInformation")
def get_customer_balances(svc: SandboxService, call: Call) -> Reply:
    codes = items(call.params.get("customerCodes"), "string")
    if not codes:
        raise Refused("NO_CUSTOMER_CODES_PROVIDED", "Give at least one customer code.")
    as_of = call.params.get("edt") or datetime.now()
    balances = [_balance(svc, call.entity, svc.account(call.entity, "Sales", code), as_of) for code in codes]
    return Reply({"AccountBalanceInformation": balances})


def _connection_side(svc: SandboxService, entity: str, ledger: str, code: str) -> dict[str, Any]:
    settings = svc.ledger.entity_settings(entity)
    account = svc.ledger.account(entity, ledger, code) or {}
    return {
        "EntityID": entity,
        "EntityName": settings["name"],
        "EntityBaseCurrencyCode": settings["base_currency"],
        "AccountID": account.get("AccountID", 0),
        "AccountCode": code,
        "AccountName": account.get("Name"),
        "AccountCurrencyCode": account.get("CurrencyCode"),
    }


@handles("GetInterCompanyConnectionList")
def get_intercompany_connections(svc: SandboxService, call: Call) -> Reply:
    """Every connection the entity takes part in, seen from its side: ``Local`` is this entity and
    the account that stands for the other entity here, ``Remote`` the mirror in the other entity."""
    connections = []
    for row in svc.ledger.query(
        "SELECT * FROM intercompany WHERE entity_a = ? OR entity_b = ? ORDER BY connection_id",
        call.entity,
        call.entity,
    ):
        a = _connection_side(svc, row["entity_a"], row["ledger_a"], row["code_a"])
        b = _connection_side(svc, row["entity_b"], row["ledger_b"], row["code_b"])
        local, remote = (a, b) if row["entity_a"] == call.entity else (b, a)
        connections.append({"Local": local, "Remote": remote})
    return Reply({"WSInterCompanyConnection": connections})


# --- statements with ageing -------------------------------------------------------------------------

AGEING_BUCKETS = (
    (30, "From0To30DaysBalanceBucket"),
    (60, "From30To60DaysBalanceBucket"),
    (90, "From60To90DaysBalanceBucket"),
    (120, "From90To120DaysBalanceBucket"),
)


def _bucket(days_overdue: int) -> str:
    """Ageing by due date: not yet due is "future"; then 0-30, 30-60, 60-90, 90-120, 120+ days."""
    if days_overdue < 0:
        return "FutureBalanceBucket"
    return next(
        (name for limit, name in AGEING_BUCKETS if days_overdue < limit), "From120DaysPlusBalanceBucket"
    )


def _statement(svc: SandboxService, entity: str, account: dict[str, Any], up_to: datetime) -> dict[str, Any]:
    rows = svc.ledger.query(
        "SELECT t.*, l.amount AS control FROM transactions t JOIN transaction_lines l "
        "ON l.transaction_id = t.transaction_id AND l.is_control = 1 "
        "WHERE t.entity = ? AND t.account_id = ? AND t.transaction_date <= ? ORDER BY t.transaction_date",
        entity,
        account["AccountID"],
        up_to.isoformat(),
    )
    state: dict[str, Any] = {name: Decimal(0) for _, name in AGEING_BUCKETS}
    state.update(From120DaysPlusBalanceBucket=Decimal(0), FutureBalanceBucket=Decimal(0))
    balance, transactions = Decimal(0), []
    settled = allocated(svc, entity, [row["transaction_id"] for row in rows])
    for row in rows:
        amount = Decimal(row["control"])
        balance += amount
        # Open items only: allocation settles items (a paid invoice and its receipt drop off the
        # statement); what is left of each is aged by its due date.
        left = left_to_settle(amount, settled.get(row["transaction_id"], Decimal(0)))
        if left == 0:
            continue
        when = datetime.fromisoformat(row["transaction_date"])
        due = datetime.fromisoformat(row["due_date"]) if row["due_date"] else when
        state[_bucket((up_to - due).days)] += left
        transactions.append(
            {
                "TransactionReference": row["transaction_id"],
                "Type": row["type_code"],
                "InternalNumber": str(row["transaction_id"]),
                "ExternalReference": row["external_reference"],
                "Amount": amount,
                "OutstandingAmount": left,
                "TransactionDate": when,
                "Description": row["description"],
                "DueDate": due,
            }
        )
    state.update(CurrentBalance=balance, CurrentDate=up_to, CustomerCode=account["Code"])
    return {"CustomerState": state, "TransactionList": {"TransactionState": transactions}}


@handles("GetCustomersStatement")
def get_customers_statement(svc: SandboxService, call: Call) -> Reply:
    codes = items(call.params.get("customerCodes"), "string")
    if not codes:
        raise Refused("NO_CUSTOMER_CODES_PROVIDED", "Give at least one customer code.")
    up_to = (call.params.get("upTo") or datetime.now()).replace(tzinfo=None)
    statements = [
        _statement(svc, call.entity, svc.account(call.entity, "Sales", code), up_to) for code in codes
    ]
    if not call.params.get("showZeros"):
        statements = [s for s in statements if s["CustomerState"]["CurrentBalance"] != 0]
    return Reply({"CustomerStatement": statements})


# --- stock items and the company -------------------------------------------------------------------


def _stock_item(row: Any) -> dict[str, Any]:
    return {**blank("StockItem"), **json.loads(row["data"])}


@handles("GetStockItem")
def get_stock_item(svc: SandboxService, call: Call) -> Reply:
    code = call.params.get("stockItemID")
    row = svc.ledger.query_one(
        "SELECT data FROM stock_items WHERE entity = ? AND code = ?", call.entity, code
    )
    if row is None:
        raise Refused("STOCKITEM_ID_DOES_NOT_EXIST", f"Stock item '{code}' does not exist.")
    return Reply(_stock_item(row))


@handles("GetActiveStockItemList")
def get_active_stock_items(svc: SandboxService, call: Call) -> Reply:
    rows = svc.ledger.query("SELECT data FROM stock_items WHERE entity = ? ORDER BY code", call.entity)
    return Reply({"StockItem": [item for item in map(_stock_item, rows) if item["Active"]]})


@handles("GetCompanyInformation")
def get_company_information(svc: SandboxService, call: Call) -> Reply:
    settings = svc.ledger.entity_settings(call.entity)
    numbering = {
        f"UseAuto{kind}Numbering": True
        for kind in ("SalesQuote", "SalesOrder", "SalesInvoice", "SalesCreditNote")
    }
    last = svc.ledger.query_one("SELECT MAX(invoice_id) AS n FROM invoices WHERE entity = ?", call.entity)
    return Reply(
        {
            **blank("WSCompanyInformation"),
            "CompanyName": settings["name"],
            "LocaleName": "en-GB" if settings["base_currency"] == "GBP" else "en-IE",
            "BaseCurrencyCode": settings["base_currency"],
            "Address": {**blank("WSAddress"), "Line1": settings["name"]},
            "ContactInformation": blank("WSContactInformation"),
            "AutoNumberingSettings": {
                **blank("WSAutoNumberingSettings"),
                **numbering,
                "CurrentSalesInvoiceNumber": str((last["n"] if last else 0) or 0),
            },
            "PrecisionSettings": {"PricePrecisionDecimals": 2, "QuantityPrecisionDecimals": 2},
            "ApprovalSettings": {**blank("WSApprovalSettings"), "ApprovalType": "SupplierBased"},
        }
    )
