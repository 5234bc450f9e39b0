"""AccountsIQ's documented field rules, each refused with its ErrorCode by the sandbox's service.

These run on the service itself (a fresh ledger per module, no HTTP) so every rule costs
milliseconds; the SOAP wiring of refusals is proven in test_gateway_sandbox.py and by the second
SOAP stack (test_second_soap_stack.py). The sources of each rule are in the README's "Field rules".
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from aiq_flows.sandbox.ledger import Ledger
from aiq_flows.sandbox.server import open_ledger
from aiq_flows.sandbox.service import Refused, SandboxService, TokenExpired

ENTITY = "DEMO_UK"
WHEN = datetime(2026, 11, 2)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    opened = open_ledger(Path(tmp_path_factory.mktemp("rules")) / "sandbox.db", fresh=True)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def service(ledger: Ledger) -> SandboxService:
    return SandboxService(ledger)


def batch_line(**changes: Any) -> dict[str, Any]:
    line = {
        "GLAccountCode": "4000",
        "TaxCode": "T1",
        "Description": "Widgets",
        "DepartmentID": None,
        "NetAmount": Decimal("100.00"),
        "TaxRate": 0.2,
        "TaxAmount": Decimal("20.00"),
    }
    return {**line, **changes}


def batch_invoice(reference: str, *, line: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    invoice = {
        "CustomerCode": "ACME01",
        "InvoiceDate": WHEN,
        "ExternalReference": reference,
        "Description": "Rules",
        "ExchangeRate": Decimal(1),
        "DueDate": None,
        "Lines": {"BatchSalesInvoiceLine": [line or batch_line()]},
    }
    return {**invoice, **changes}


def journal(reference: str, **first_line: Any) -> dict[str, Any]:
    def journal_line(amount: str, **changes: Any) -> dict[str, Any]:
        base = {
            "GLAccountCode": "4000",
            "Description": "Release",
            "DepartmentID": None,
            "Debit": Decimal(0),
            "Credit": Decimal(0),
            "Amount": Decimal(amount),
            "VatReturnID": 0,
            "TaxRpt": False,
            "Reconc": False,
            "Reversed": False,
        }
        return {**base, **changes}

    return {
        "InternalReference": reference,
        "ExternalReference": reference,
        "TransactionDate": WHEN,
        "Lines": {
            "GeneralJournalLine": [
                journal_line("10.00", **first_line),
                journal_line("-10.00", GLAccountCode="2400"),
            ]
        },
    }


def post_batch(service: SandboxService, invoice: dict[str, Any]) -> None:
    service.handle("CreateBatchSalesInvoiceGetBackTransactionID", ENTITY, {"inv": invoice})


def post_journal(service: SandboxService, document: dict[str, Any]) -> None:
    service.handle("CreateGeneralJournalGetBackTransactionID", ENTITY, {"journal": document})


def save_item_invoice(service: SandboxService, line: dict[str, Any] | None = None, **header: Any) -> None:
    template = copy.deepcopy(service.handle("GetNewSalesInvoice", ENTITY, {"customerCode": "ACME01"}).result)
    template.update(header)
    template["Lines"] = {
        "InvoiceLine": [{"StockItemID": "CONSULT-DAY", "InvoicedQuantity": 1, **(line or {})}]
    }
    service.handle("SaveInvoiceGetBackInvoiceID", ENTITY, {"invoice": template, "create": True})


def update_customer(service: SandboxService, **changes: Any) -> None:
    customer = copy.deepcopy(service.handle("GetNewCustomerFromDefaults", ENTITY, {}).result)
    customer.update({"Code": "RULES01", "Name": "Rules Ltd", **changes})
    service.handle("UpdateCustomer", ENTITY, {"customer": customer, "create": True})


Case = tuple[str, Callable[[SandboxService], None], str]
LONG = "X" * 51

CASES: list[Case] = [
    # Batch sales invoice: header
    (
        "batch: Description cannot be null",
        lambda s: post_batch(s, batch_invoice("FR-1", Description=None)),
        "TRANSACTION_LINE_DESCRIPTION_IS_NULL",
    ),
    (
        "batch: Description at most 500",
        lambda s: post_batch(s, batch_invoice("FR-2", Description="d" * 501)),
        "TRANSACTION_LINE_DESCRIPTION_IS_TOO_LONG",
    ),
    # Batch sales invoice: lines
    (
        "batch line: TaxRate at most 1",
        lambda s: post_batch(s, batch_invoice("FR-3", line=batch_line(TaxRate=20.0))),
        "TAX_RATE_IS_MORE_THAN_100_PERCENT",
    ),
    (
        "batch line: TaxRate not negative",
        lambda s: post_batch(s, batch_invoice("FR-4", line=batch_line(TaxRate=-0.2, TaxAmount=None))),
        "TAX_RATE_IS_NEGATIVE",
    ),
    (
        "batch line: TaxCode required",
        lambda s: post_batch(s, batch_invoice("FR-5", line=batch_line(TaxCode=None))),
        "TAX_CODE_IS_NULL",
    ),
    (
        "batch line: TaxCode not empty",
        lambda s: post_batch(s, batch_invoice("FR-6", line=batch_line(TaxCode=""))),
        "TAX_CODE_IS_EMPTY",
    ),
    (
        "batch line: TaxCode upper case",
        lambda s: post_batch(s, batch_invoice("FR-7", line=batch_line(TaxCode="t1"))),
        "TAX_CODE_IS_NOT_UPPERCASE",
    ),
    (
        "batch line: TaxCode at most 50",
        lambda s: post_batch(s, batch_invoice("FR-8", line=batch_line(TaxCode=LONG))),
        "TAX_CODE_IS_TOO_LONG",
    ),
    (
        "batch line: GLAccountCode required",
        lambda s: post_batch(s, batch_invoice("FR-9", line=batch_line(GLAccountCode=None))),
        "BATCH_INVOICE_LINE_MISSING_GL_ACCOUNT",
    ),
    (
        "batch line: GLAccountCode upper case",
        lambda s: post_batch(s, batch_invoice("FR-10", line=batch_line(GLAccountCode="abc"))),
        "GLACCOUNT_CODE_IS_NOT_UPPERCASE",
    ),
    (
        "batch line: GLAccountCode at most 50",
        lambda s: post_batch(s, batch_invoice("FR-11", line=batch_line(GLAccountCode=LONG))),
        "GLACCOUNT_CODE_IS_TOO_LONG",
    ),
    (
        "batch line: Description cannot be null",
        lambda s: post_batch(s, batch_invoice("FR-12", line=batch_line(Description=None))),
        "BATCH_INVOICE_LINE_MISSING_DESCRIPTION",
    ),
    (
        "batch line: DepartmentID null or not empty",
        lambda s: post_batch(s, batch_invoice("FR-13", line=batch_line(DepartmentID=""))),
        "DEPARTMENT_ID_IS_EMPTY",
    ),
    (
        "batch line: DepartmentID upper case",
        lambda s: post_batch(s, batch_invoice("FR-14", line=batch_line(DepartmentID="sales-uk"))),
        "DEPARTMENT_ID_IS_NOT_UPPERCASE",
    ),
    (
        "batch line: DepartmentID at most 50",
        lambda s: post_batch(s, batch_invoice("FR-15", line=batch_line(DepartmentID=LONG))),
        "DEPARTMENT_ID_IS_TOO_LONG",
    ),
    (
        "batch line: DepartmentID an active BI code",
        lambda s: post_batch(s, batch_invoice("FR-16", line=batch_line(DepartmentID="JOB-0900"))),
        "UNKNOWN_DEPARTMENT",
    ),
    # General journal
    (
        "journal line: GLAccountCode required",
        lambda s: post_journal(s, journal("FR-J1", GLAccountCode=None)),
        "GLACCOUNT_CODE_IS_NULL",
    ),
    (
        "journal line: GLAccountCode not empty",
        lambda s: post_journal(s, journal("FR-J2", GLAccountCode="")),
        "GLACCOUNT_CODE_IS_EMPTY",
    ),
    (
        "journal line: GLAccountCode upper case",
        lambda s: post_journal(s, journal("FR-J3", GLAccountCode="abc")),
        "GLACCOUNT_CODE_IS_NOT_UPPERCASE",
    ),
    (
        "journal line: Description not empty",
        lambda s: post_journal(s, journal("FR-J4", Description="")),
        "TRANSACTION_LINE_DESCRIPTION_IS_EMPTY",
    ),
    (
        "journal line: not a foreign-currency bank",
        lambda s: post_journal(s, journal("FR-J6", GLAccountCode="1210")),
        "JOURNAL_ENTRY_CANNOT_POST_TO_FOREIGN_BANK_ACCOUNT",
    ),
    (
        "journal line: an active BI code",
        lambda s: post_journal(s, journal("FR-J5", DepartmentID="JOB-0900")),
        "UNKNOWN_DEPARTMENT",
    ),
    # Item invoice
    (
        "item line: GLAccountCode upper case",
        lambda s: save_item_invoice(s, {"GLAccountCode": "abc"}),
        "GLACCOUNT_CODE_IS_NOT_UPPERCASE",
    ),
    (
        "item line: TaxCode upper case",
        lambda s: save_item_invoice(s, {"TaxCode": "t1"}),
        "TAX_CODE_IS_NOT_UPPERCASE",
    ),
    (
        "item line: an active BI code",
        lambda s: save_item_invoice(s, {"DepartmentID": "JOB-0900"}),
        "UNKNOWN_DEPARTMENT",
    ),
    (
        "item invoice: AccountName at most 50",
        lambda s: save_item_invoice(s, AccountName="N" * 51),
        "ACCOUNT_NAME_IS_TOO_LONG",
    ),
    (
        "item invoice: address lines at most 50",
        lambda s: save_item_invoice(s, AccountAddress1="A" * 51),
        "ACCOUNT_ADDRESS_IS_TOO_LONG",
    ),
    # Customer
    ("customer: Phone at most 50", lambda s: update_customer(s, Phone="0" * 51), "ACCOUNT_PHONE_IS_TOO_LONG"),
    (
        "customer: Contact at most 50",
        lambda s: update_customer(s, Contact="C" * 51),
        "ACCOUNT_CONTACT_IS_TOO_LONG",
    ),
    (
        "customer: County at most 50",
        lambda s: update_customer(s, County_State="K" * 51),
        "ACCOUNT_ADDRESS_IS_TOO_LONG",
    ),
]


@pytest.mark.parametrize(("rule", "breaks_it", "error_code"), CASES, ids=[c[0] for c in CASES])
def test_each_documented_rule_is_refused_with_its_code(
    service: SandboxService,
    ledger: Ledger,
    rule: str,
    breaks_it: Callable[[SandboxService], None],
    error_code: str,
) -> None:
    posted_before = ledger.query_one("SELECT COUNT(*) AS n FROM transactions")["n"]
    with pytest.raises(Refused) as refused:
        breaks_it(service)
    assert refused.value.code == error_code, refused.value.message
    assert ledger.query_one("SELECT COUNT(*) AS n FROM transactions")["n"] == posted_before


def test_the_valid_documents_the_cases_start_from_are_accepted(service: SandboxService) -> None:
    """Each case breaks one rule of a document that is otherwise accepted."""
    post_batch(service, batch_invoice("FR-OK-1"))
    post_batch(service, batch_invoice("FR-OK-2", line=batch_line(DepartmentID="SALES-UK", TaxRate=1.0)))
    post_journal(service, journal("FR-OK-3", DepartmentID="SALES-UK"))
    post_journal(service, journal("FR-OK-4", GLAccountCode="1200"))  # the base-currency bank
    save_item_invoice(service)
    update_customer(service, Phone="0" * 50)


def test_a_code_is_usable_again_once_reactivated(service: SandboxService) -> None:
    service.handle(
        "UpdateDepartment", ENTITY, {"departmentID": "GROUP", "newDescription": "Group", "active": False}
    )
    with pytest.raises(Refused) as refused:
        post_batch(service, batch_invoice("FR-RE-1", line=batch_line(DepartmentID="GROUP")))
    assert refused.value.code == "UNKNOWN_DEPARTMENT" and "inactive" in refused.value.message
    service.handle(
        "UpdateDepartment", ENTITY, {"departmentID": "GROUP", "newDescription": "Group", "active": True}
    )
    post_batch(service, batch_invoice("FR-RE-1", line=batch_line(DepartmentID="GROUP")))


def test_api_2_0_refusals_name_the_exact_problem(service: SandboxService) -> None:
    app = service.ledger.credentials()["apps"][0]
    access = service.token_get(app["client_id"], app["client_secret"])["AccessToken"]
    for missing in (None, ""):
        with pytest.raises(TokenExpired) as no_token:
            service.entity_for_header(missing, ENTITY)
        assert no_token.value.code == "OAUTH_INTEGRATION_APPS_TOKEN_NOT_PROVIDED_IN_AUTHORIZATION_HEADER"
        assert no_token.value.has_expired is False
    with pytest.raises(Refused) as nowhere:
        service.entity_for_header(access, "NO_SUCH_ENTITY")
    assert nowhere.value.code == "API_LAYER_ENTITY_ID_NOT_FOUND"
    assert service.entity_for_header(access, app["entities"][0]) == app["entities"][0]
