"""Reference data and balances: tax codes, GL accounts, credit terms, currencies, periods, and
account balances with credit limits."""

from __future__ import annotations

from datetime import date, datetime
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
