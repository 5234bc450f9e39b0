"""Customers and suppliers: one implementation, parameterised by ledger (Sales or Purchases)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from aiq_flows.sandbox.ledger import dump_account
from aiq_flows.sandbox.service import (
    ACCOUNT_KINDS,
    CODE_MAX,
    Call,
    Refused,
    Reply,
    SandboxService,
    blank,
    handles,
    money,
)

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CODE_CHARACTERS = re.compile(r"^[A-Z0-9_.\-/&]+$")


def _check_code_and_name(account: dict[str, Any]) -> None:
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


def _check_contact(account: dict[str, Any]) -> None:
    for line in ("Address1", "Address2", "City", "County_State", "PostCode", "Country"):
        if len(account.get(line) or "") > CODE_MAX:
            raise Refused("ACCOUNT_ADDRESS_IS_TOO_LONG", f"{line} is longer than {CODE_MAX} characters.")
    for field_name, code in (
        ("Phone", "ACCOUNT_PHONE_IS_TOO_LONG"),
        ("MobilePhone", "ACCOUNT_PHONE_IS_TOO_LONG"),
        ("Fax", "ACCOUNT_PHONE_IS_TOO_LONG"),
        ("Contact", "ACCOUNT_CONTACT_IS_TOO_LONG"),
    ):
        if len(account.get(field_name) or "") > CODE_MAX:
            raise Refused(code, f"{field_name} is longer than {CODE_MAX} characters.")
    email = account.get("Email")
    if email:
        if len(email) > CODE_MAX:
            raise Refused("ACCOUNT_EMAIL_IS_TOO_LONG", f"Email is longer than {CODE_MAX} characters.")
        if not EMAIL.match(email):
            raise Refused("ACCOUNT_EMAIL_INVALID_FORMAT", f"Email '{email}' is not a valid address.")
    if money(account.get("CreditLimit")) < 0:
        raise Refused("ACCOUNT_CREDIT_LIMIT_MUST_BE_POSITIVE", "Credit limit must be positive.")


def _check_lookups(svc: SandboxService, entity: str, ledger: str, account: dict[str, Any]) -> None:
    prefix = ACCOUNT_KINDS[ledger][1]
    lookups = (
        ("CurrencyCode", "currencies", "CURRENCY_CODE_NOT_FOUND"),
        ("DefaultTaxCode", "tax_codes", "TAX_CODE_NOT_FOUND"),
        ("ControlGLAccountCode", "gl_accounts", "CONTROL_GL_ACCOUNT_NOT_FOUND"),
        ("DefaultGLAccountCode", "gl_accounts", "DEFAULT_GL_ACCOUNT_NOT_FOUND"),
        ("CreditTermID", "credit_terms", "CREDIT_TERM_NOT_FOUND"),
    )
    for field_name, table, error in lookups:
        value = account.get(field_name)
        if value and not svc.exists(table, entity, value):
            raise Refused(f"{prefix}_{error}", f"{field_name} '{value}' does not exist.")


def get_account(svc: SandboxService, call: Call, ledger: str, code_param: str) -> Reply:
    return Reply(svc.account(call.entity, ledger, call.params.get(code_param)))


def active_accounts(svc: SandboxService, call: Call, ledger: str) -> Reply:
    kind = ACCOUNT_KINDS[ledger][0]
    return Reply({kind: [a for a in svc.ledger.accounts(call.entity, ledger) if a.get("IsActive")]})


def new_account(svc: SandboxService, call: Call, ledger: str) -> Reply:
    defaults = svc.ledger.entity_settings(call.entity)["account_defaults"][ledger]
    kind = ACCOUNT_KINDS[ledger][0]
    shell = {
        **blank(kind),
        **defaults,
        "LedgerType": ledger,
        "IsActive": True,
        "CreationDate": datetime.now().replace(microsecond=0),
    }
    return Reply(shell)


def update_account(svc: SandboxService, call: Call, ledger: str, param: str) -> Reply:
    """Create-or-update keyed by Code; an update must carry the RowVersionNumber it read."""
    kind, prefix = ACCOUNT_KINDS[ledger]
    account = dict(call.params.get(param) or {})
    _check_code_and_name(account)
    _check_contact(account)
    _check_lookups(svc, call.entity, ledger, account)
    code = account["Code"]
    with svc.ledger.transaction() as db:
        row = db.execute(
            "SELECT account_id, row_version FROM accounts WHERE entity = ? AND ledger = ? AND code = ?",
            (call.entity, ledger, code),
        ).fetchone()
        if row is None:
            if not call.params.get("create"):
                raise Refused(
                    f"{prefix}_CODE_DOES_NOT_EXIST",
                    f"{kind} '{code}' does not exist and create is false.",
                    status="NotCreated",
                )
            account.update(LedgerType=ledger, AccountReferralID=None)
            svc.ledger.insert_account(db, call.entity, ledger, account)
            return Reply(True)
        if account.get("RowVersionNumber") != str(row["row_version"]):
            raise Refused(
                "OUTDATED_RECORD",
                f"{kind} '{code}' was changed by someone else; read it again and resend.",
                status="Conflicted",
            )
        version = row["row_version"] + 1
        account.update(AccountID=row["account_id"], RowVersionNumber=str(version), LedgerType=ledger)
        db.execute(
            "UPDATE accounts SET data = ?, row_version = ? WHERE account_id = ?",
            (dump_account(account), version, row["account_id"]),
        )
    return Reply(True)


@handles("GetCustomer")
def get_customer(svc: SandboxService, call: Call) -> Reply:
    return get_account(svc, call, "Sales", "customerCode")


@handles("GetSupplier")
def get_supplier(svc: SandboxService, call: Call) -> Reply:
    return get_account(svc, call, "Purchases", "supplierCode")


@handles("GetActiveCustomerList")
def get_active_customers(svc: SandboxService, call: Call) -> Reply:
    return active_accounts(svc, call, "Sales")


@handles("GetActiveSupplierList")
def get_active_suppliers(svc: SandboxService, call: Call) -> Reply:
    return active_accounts(svc, call, "Purchases")


@handles("GetNewCustomerFromDefaults")
def get_new_customer(svc: SandboxService, call: Call) -> Reply:
    return new_account(svc, call, "Sales")


@handles("GetNewSupplierFromDefaults")
def get_new_supplier(svc: SandboxService, call: Call) -> Reply:
    return new_account(svc, call, "Purchases")


@handles("UpdateCustomer")
def update_customer(svc: SandboxService, call: Call) -> Reply:
    return update_account(svc, call, "Sales", "customer")


@handles("UpdateSupplier")
def update_supplier(svc: SandboxService, call: Call) -> Reply:
    return update_account(svc, call, "Purchases", "supplier")
