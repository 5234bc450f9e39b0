"""The gateway against the sandbox over real HTTP: every v1 operation, AIQ's status conventions,
exact postings, each validation rule's ErrorCode, and the error taxonomy under injected faults."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from pydantic import SecretStr

from aiq_flows.gateway.client import AiqCredentials, AiqGateway
from aiq_flows.gateway.errors import (
    AiqAuthenticationError,
    AiqBusinessError,
    AiqTransientError,
    AiqUnknownOutcome,
)
from aiq_flows.gateway.models import BatchInvoiceLine, BatchSalesInvoice, Customer
from tests.support.processes import Sandbox

INVOICE_DATE = datetime(2026, 11, 20)


def gateway_for(sandbox: Sandbox, company: str = "DEMO_UK", **kwargs: Any) -> AiqGateway:
    entity = sandbox.entity(company)
    credentials = AiqCredentials(
        company_id=company,
        partner_key=SecretStr(sandbox.credentials["partner_key"]),
        user_key=SecretStr(entity["user_key"]),
    )
    return AiqGateway.login(sandbox.url, credentials, timeout=5, backoff_seconds=0.01, **kwargs)


@pytest.fixture
def gateway(shared_sandbox: Sandbox) -> Iterator[AiqGateway]:
    gw = gateway_for(shared_sandbox)
    yield gw
    gw.close()
    shared_sandbox.clear_faults()


def invoice(reference: str, *lines: BatchInvoiceLine, customer: str = "ACME01") -> BatchSalesInvoice:
    return BatchSalesInvoice(
        CustomerCode=customer,
        InvoiceDate=INVOICE_DATE,
        ExternalReference=reference,
        Description=f"Invoice {reference}",
        Lines=list(lines),
    )


def line(
    net: str,
    tax: str | None,
    tax_code: str = "T1",
    rate: float = 0.2,
    gl: str = "4000",
    description: str = "Widgets",
    department: str | None = None,
) -> BatchInvoiceLine:
    return BatchInvoiceLine(
        GLAccountCode=gl,
        TaxCode=tax_code,
        Description=description,
        DepartmentID=department,
        NetAmount=Decimal(net),
        TaxRate=rate,
        TaxAmount=Decimal(tax) if tax is not None else None,
    )


# --- authentication ---------------------------------------------------------------------------


def test_bad_keys_give_no_token(shared_sandbox: Sandbox) -> None:
    credentials = AiqCredentials(
        company_id="DEMO_UK", partner_key=SecretStr("wrong-partner-key"), user_key=SecretStr("wrong-user-key")
    )
    gw = AiqGateway.login(shared_sandbox.url, credentials, timeout=5)
    with pytest.raises(AiqAuthenticationError) as caught:
        gw.get_customer("ACME01")
    assert "wrong-user-key" not in str(caught.value) and "wrong-partner-key" not in str(caught.value)


def test_one_entitys_key_does_not_open_another(shared_sandbox: Sandbox) -> None:
    credentials = AiqCredentials(
        company_id="DEMO_IE",
        partner_key=SecretStr(shared_sandbox.credentials["partner_key"]),
        user_key=SecretStr(shared_sandbox.entity("DEMO_UK")["user_key"]),
    )
    with pytest.raises(AiqAuthenticationError):
        AiqGateway.login(shared_sandbox.url, credentials, timeout=5).get_tax_codes()


def test_expired_token_is_renewed_transparently(gateway: AiqGateway, shared_sandbox: Sandbox) -> None:
    assert gateway.get_customer("ACME01") is not None
    shared_sandbox.expire_tokens()
    before = shared_sandbox.calls().get("Login", 0)
    assert gateway.get_customer("ACME01") is not None
    assert shared_sandbox.calls()["Login"] == before + 1


# --- customers ----------------------------------------------------------------------------------


def test_get_customer_found_and_not_found(gateway: AiqGateway) -> None:
    acme = gateway.get_customer("ACME01")
    assert acme is not None and acme.Name == "Acme Industries plc" and acme.AccountID > 0
    assert gateway.get_customer("NOSUCH") is None


def test_active_customer_list_holds_the_seeded_customers(gateway: AiqGateway) -> None:
    codes = {c.Code for c in gateway.get_active_customers()}
    assert {"ACME01", "BRIGHT02", "CORAL03"} <= codes


def test_new_customer_comes_from_entity_defaults_without_a_code(gateway: AiqGateway) -> None:
    shell = gateway.new_customer_from_defaults()
    assert shell.Code is None and shell.AccountID == 0
    assert (shell.CurrencyCode, shell.DefaultTaxCode, shell.ControlGLAccountCode) == ("GBP", "T1", "1100")


def test_create_then_update_keeps_row_version(gateway: AiqGateway) -> None:
    shell = gateway.new_customer_from_defaults()
    shell.Code, shell.Name = "ROWVER01", "Row Version Ltd"
    gateway.update_customer(shell, create=True)
    first = gateway.get_customer("ROWVER01")
    assert first is not None and first.RowVersionNumber == "1"
    first.City = "York"
    gateway.update_customer(first, create=False)
    second = gateway.get_customer("ROWVER01")
    assert second is not None and (second.City, second.RowVersionNumber) == ("York", "2")
    with pytest.raises(AiqBusinessError) as stale:
        gateway.update_customer(first, create=False)  # the copy read before the update
    assert (stale.value.status, stale.value.error_code) == ("Conflicted", "OUTDATED_RECORD")


def test_update_of_absent_customer_without_create_is_not_created(gateway: AiqGateway) -> None:
    shell = gateway.new_customer_from_defaults()
    shell.Code, shell.Name = "ABSENT01", "Absent Ltd"
    with pytest.raises(AiqBusinessError) as refused:
        gateway.update_customer(shell, create=False)
    assert refused.value.status == "NotCreated"
    assert gateway.get_customer("ABSENT01") is None


@pytest.mark.parametrize(
    ("changes", "error_code"),
    [
        ({"Code": None}, "ACCOUNT_CODE_IS_NULL"),
        ({"Code": ""}, "ACCOUNT_CODE_IS_EMPTY"),
        ({"Code": "lower01"}, "ACCOUNT_CODE_MUST_BE_UPPER_CASE"),
        ({"Code": " PAD01"}, "ACCOUNT_CODE_CANNOT_CONTAIN_LEADING_AND_OR_TRAILING_WHITESPACES"),
        ({"Code": "X" * 51}, "ACCOUNT_CODE_IS_TOO_LONG"),
        ({"Code": "BAD#01"}, "ACCOUNT_CODE_CONTAINS_INVALID_CHARACTERS"),
        ({"Name": None}, "ACCOUNT_NAME_IS_NULL"),
        ({"Name": "  "}, "ACCOUNT_NAME_IS_EMPTY"),
        ({"Name": "N" * 51}, "ACCOUNT_NAME_IS_TOO_LONG"),
        ({"Address1": "A" * 51}, "ACCOUNT_ADDRESS_IS_TOO_LONG"),
        ({"Email": "not-an-email"}, "ACCOUNT_EMAIL_INVALID_FORMAT"),
        ({"Email": "e" * 45 + "@x.com"}, "ACCOUNT_EMAIL_IS_TOO_LONG"),
        ({"CreditLimit": Decimal("-1")}, "ACCOUNT_CREDIT_LIMIT_MUST_BE_POSITIVE"),
        ({"CurrencyCode": "XXX"}, "CUSTOMER_CURRENCY_CODE_NOT_FOUND"),
        ({"DefaultTaxCode": "ZZ"}, "CUSTOMER_TAX_CODE_NOT_FOUND"),
        ({"ControlGLAccountCode": "0000"}, "CUSTOMER_CONTROL_GL_ACCOUNT_NOT_FOUND"),
        ({"DefaultGLAccountCode": "0000"}, "CUSTOMER_DEFAULT_GL_ACCOUNT_NOT_FOUND"),
        ({"CreditTermID": "NEVER"}, "CUSTOMER_CREDIT_TERM_NOT_FOUND"),
    ],
)
def test_customer_validation_rules(gateway: AiqGateway, changes: dict[str, Any], error_code: str) -> None:
    shell = gateway.new_customer_from_defaults()
    customer = Customer.model_validate(
        {**shell.model_dump(), "Code": "RULES01", "Name": "Rules Ltd", **changes}
    )
    with pytest.raises(AiqBusinessError) as refused:
        gateway.update_customer(customer, create=True)
    assert (refused.value.status, refused.value.error_code) == ("Failure", error_code)


# --- reference data -----------------------------------------------------------------------------


def test_tax_codes_carry_fractional_rates(gateway: AiqGateway) -> None:
    rates = {t.Code: t.Rate for t in gateway.get_tax_codes()}
    assert rates == {"EX": Decimal("0"), "T0": Decimal("0"), "T1": Decimal("0.20"), "T5": Decimal("0.05")}


def test_gl_account_list_is_code_name_pairs(gateway: AiqGateway) -> None:
    accounts = {a.code: a.name for a in gateway.get_gl_accounts()}
    assert accounts["1100"] == "Debtors Control" and accounts["4000"] == "Sales - Products"


# --- batch sales invoices -----------------------------------------------------------------------


def test_batch_invoice_template_has_customer_defaults(gateway: AiqGateway) -> None:
    template = gateway.new_batch_sales_invoice("ACME01")
    assert template.CustomerCode == "ACME01" and template.ExchangeRate == 1 and template.Lines == []
    assert template.DueDate is not None and (template.DueDate - template.InvoiceDate).days == 30


def test_posted_batch_invoice_balances_net_vat_and_debtors(gateway: AiqGateway) -> None:
    transaction_id = gateway.create_batch_sales_invoice(
        invoice("GW-POST-1", line("100.00", "20.00"), line("10.00", None, "T5", 0.05, gl="4010"))
    )
    posted = gateway.get_transaction(transaction_id)
    assert posted is not None and posted.TransactionType == "SalesBatchInvoice"
    postings = [(p.GLAccountCode, p.BroadType, p.Amount) for p in posted.Lines]
    assert postings == [
        ("4000", "Net", Decimal("-100.00")),
        ("2200", "Vat", Decimal("-20.00")),
        ("4010", "Net", Decimal("-10.00")),
        ("2200", "Vat", Decimal("-0.50")),  # VAT computed by AIQ
        ("1100", "Control", Decimal("130.50")),
    ]
    assert sum(p.Amount for p in posted.Lines) == 0


def test_external_references_are_not_unique(gateway: AiqGateway) -> None:
    first = gateway.create_batch_sales_invoice(invoice("GW-DUP-1", line("5.00", "1.00")))
    second = gateway.create_batch_sales_invoice(invoice("GW-DUP-1", line("5.00", "1.00")))
    found = gateway.transactions_by_external_reference(
        "GW-DUP-1", datetime(2026, 1, 1), datetime(2026, 12, 31)
    )
    assert sorted(t.TransactionID for t in found) == sorted([first, second])
    assert all(t.ControlAmount == Decimal("6.00") and t.TransactionType == "SI" for t in found)


def test_reference_lookup_filters_by_date_and_type(gateway: AiqGateway) -> None:
    gateway.create_batch_sales_invoice(invoice("GW-FILTER-1", line("5.00", "1.00")))
    assert (
        gateway.transactions_by_external_reference(
            "GW-FILTER-1", datetime(2026, 11, 21), datetime(2026, 12, 31)
        )
        == []
    )
    assert (
        gateway.transactions_by_external_reference(
            "GW-FILTER-1", datetime(2026, 1, 1), datetime(2026, 12, 31), types=["PI"]
        )
        == []
    )
    assert (
        len(
            gateway.transactions_by_external_reference(
                "GW-FILTER-1", datetime(2026, 1, 1), datetime(2026, 12, 31), types=["SI"]
            )
        )
        == 1
    )


def test_reference_lookup_requires_a_reference(gateway: AiqGateway) -> None:
    with pytest.raises(AiqBusinessError) as refused:
        gateway.transactions_by_external_reference("", datetime(2026, 1, 1), datetime(2026, 12, 31))
    assert refused.value.error_code == "INVALID_QUERY_MISSING_EXTERNAL_REFERENCE"


def test_unknown_transaction_is_none(gateway: AiqGateway) -> None:
    assert gateway.get_transaction(987654) is None


@pytest.mark.parametrize(
    ("build", "error_code"),
    [
        (lambda: invoice("R-1", line("1.00", "0.20"), customer="NOSUCH"), "CUSTOMER_CODE_DOES_NOT_EXIST"),
        (lambda: invoice("R-2"), "BATCH_INVOICE_WITH_NO_INVOICE_LINES"),
        (lambda: invoice("R-3", line("1.00", "0.20", gl="")), "BATCH_INVOICE_LINE_MISSING_GL_ACCOUNT"),
        (
            lambda: invoice("R-4", line("1.00", "0.20", gl="7777")),
            "GLACCOUNT_IS_NOT_POSTING_OR_DOES_NOT_EXIST",
        ),
        (
            lambda: invoice("R-5", line("1.00", "0.20", gl="1100")),
            "GLACCOUNT_IS_NOT_POSTING_OR_DOES_NOT_EXIST",
        ),
        (
            lambda: invoice("R-6", line("1.00", "0.20", description="")),
            "BATCH_INVOICE_LINE_MISSING_DESCRIPTION",
        ),
        (
            lambda: invoice("R-7", line("1.00", "0.20", description="d" * 501)),
            "TRANSACTION_LINE_DESCRIPTION_IS_TOO_LONG",
        ),
        (lambda: invoice("R-8", line("1.00", "0.20", tax_code="ZZ")), "TAX_CODE_DOES_NOT_EXIST"),
        (lambda: invoice("R-9", line("1.00", "0.20", tax_code="t1")), "TAX_CODE_IS_NOT_UPPERCASE"),
        (lambda: invoice("R-10", line("1.00", "0.20", tax_code="T" * 51)), "TAX_CODE_IS_TOO_LONG"),
        (lambda: invoice("R-11", line("1.00", None, rate=-0.2)), "TAX_RATE_IS_NEGATIVE"),
        # A rate is a fraction: 20 would post 2,000 of VAT on 100 net.
        (lambda: invoice("R-11b", line("100.00", None, rate=20)), "TAX_RATE_IS_MORE_THAN_100_PERCENT"),
        (
            lambda: invoice("R-11c", line("1.00", "0.20")).model_copy(update={"Description": None}),
            "TRANSACTION_LINE_DESCRIPTION_IS_NULL",
        ),
        (
            lambda: invoice("R-11d", line("1.00", "0.20", department="JOB-0900")),
            "UNKNOWN_DEPARTMENT",
        ),
        (lambda: invoice("R-12", line("-1.00", "0.00")), "BATCH_INVOICE_TOTAL_GROSS_AMT_NEGATIVE"),
        (lambda: invoice("R" * 51, line("1.00", "0.20")), "TRANSACTION_EXTERNAL_REFERENCE_IS_TOO_LONG"),
        (
            lambda: invoice("R-14", line("1.00", "0.20")).model_copy(update={"ExternalReference": None}),
            "TRANSACTION_EXTERNAL_REFERENCE_IS_NULL",
        ),
        (
            lambda: invoice("R-15", line("1.00", "0.20")).model_copy(update={"ExchangeRate": Decimal(0)}),
            "EXCHANGE_RATE_IS_NEGATIVE_OR_ZERO",
        ),
        (
            lambda: invoice("R-16", line("1.00", "0.20")).model_copy(
                update={"InvoiceDate": datetime(2025, 2, 1)}
            ),
            "SALES_LEDGER_ALREADY_CLOSED",
        ),
        (
            lambda: invoice("R-17", line("1.00", "0.20")).model_copy(
                update={"InvoiceDate": datetime(2031, 1, 1)}
            ),
            "DATE_IS_OUT_OF_RANGE",
        ),
    ],
)
def test_batch_invoice_validation_rules(
    gateway: AiqGateway, shared_sandbox: Sandbox, build: Any, error_code: str
) -> None:
    bad = build()
    with pytest.raises(AiqBusinessError) as refused:
        gateway.create_batch_sales_invoice(bad)
    assert (refused.value.status, refused.value.error_code) == ("Failure", error_code)
    assert shared_sandbox.documents(external_reference=bad.ExternalReference or "") == []


# --- the error taxonomy under faults ------------------------------------------------------------


def test_lost_answer_of_a_committed_write_is_an_unknown_outcome(
    gateway: AiqGateway, shared_sandbox: Sandbox
) -> None:
    shared_sandbox.faults(
        {"kind": "drop_response", "count": 1, "operation": "CreateBatchSalesInvoiceGetBackTransactionID"}
    )
    with pytest.raises(AiqUnknownOutcome):
        gateway.create_batch_sales_invoice(invoice("GW-LOST-1", line("3.00", "0.60")))
    assert len(shared_sandbox.documents(external_reference="GW-LOST-1")) == 1  # it was committed


def test_transient_http_errors_on_reads_are_retried(gateway: AiqGateway, shared_sandbox: Sandbox) -> None:
    shared_sandbox.faults({"kind": "http_error", "operation": "GetCustomer", "count": 2, "status": 503})
    assert gateway.get_customer("ACME01") is not None


def test_reads_give_up_after_their_attempts(gateway: AiqGateway, shared_sandbox: Sandbox) -> None:
    shared_sandbox.faults({"kind": "http_error", "operation": "GetTaxCodeList", "status": 503})
    with pytest.raises(AiqTransientError):
        gateway.get_tax_codes()


def test_writes_are_never_retried_blind(gateway: AiqGateway, shared_sandbox: Sandbox) -> None:
    shared_sandbox.faults(
        {
            "kind": "http_error",
            "operation": "CreateBatchSalesInvoiceGetBackTransactionID",
            "status": 500,
            "count": 1,
        }
    )
    before = shared_sandbox.calls().get("CreateBatchSalesInvoiceGetBackTransactionID", 0)
    with pytest.raises(AiqUnknownOutcome):
        gateway.create_batch_sales_invoice(invoice("GW-500-1", line("3.00", "0.60")))
    assert shared_sandbox.calls()["CreateBatchSalesInvoiceGetBackTransactionID"] == before + 1


def test_unreachable_service_is_transient() -> None:
    credentials = AiqCredentials(
        company_id="DEMO_UK", partner_key=SecretStr("p" * 10), user_key=SecretStr("u" * 10)
    )
    gw = AiqGateway.login("http://127.0.0.1:9/x.asmx", credentials, timeout=2, read_attempts=1)
    with pytest.raises(AiqTransientError):
        gw.create_batch_sales_invoice(invoice("GW-DOWN-1", line("1.00", "0.20")))


def test_latency_is_added_per_call(gateway: AiqGateway, shared_sandbox: Sandbox) -> None:
    import time

    shared_sandbox.faults({"kind": "latency", "operation": "GetCustomer", "latency_ms": 300})
    started = time.perf_counter()
    gateway.get_customer("ACME01")
    assert time.perf_counter() - started >= 0.3


# --- hostile and malformed input ------------------------------------------------------------------


def _post(sandbox: Sandbox, body: bytes) -> requests.Response:
    return requests.post(
        sandbox.url, data=body, timeout=10, headers={"Content-Type": "text/xml; charset=utf-8"}
    )


def test_wsdl_is_served_with_the_sandbox_address(shared_sandbox: Sandbox) -> None:
    response = requests.get(shared_sandbox.url + "?wsdl", timeout=10)
    assert response.status_code == 200
    assert f'location="{shared_sandbox.url}"'.encode() in response.content


@pytest.mark.parametrize(
    "body",
    [
        b"<not-xml",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&e;</soap:Body>'
        b"</soap:Envelope>",
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        b'<NoSuchOperation xmlns="http://www.visorsoftware.com/visor/accountsiq/dashboard/Integration/"/>'
        b"</soap:Body></soap:Envelope>",
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        b'<GetTransaction xmlns="http://www.visorsoftware.com/visor/accountsiq/dashboard/Integration/">'
        b"<token>t</token><transactionID>not-a-number</transactionID></GetTransaction>"
        b"</soap:Body></soap:Envelope>",
    ],
)
def test_malformed_or_hostile_requests_get_a_soap_fault(shared_sandbox: Sandbox, body: bytes) -> None:
    response = _post(shared_sandbox, body)
    assert response.status_code == 500
    assert b"<soap:Fault>" in response.content and b"root:" not in response.content


def test_oversized_bodies_are_refused_unread(shared_sandbox: Sandbox) -> None:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", shared_sandbox.port, timeout=10)
    connection.putrequest("POST", urlsplit(shared_sandbox.url).path)
    connection.putheader("Content-Type", "text/xml; charset=utf-8")
    connection.putheader("Content-Length", str(64 * 1024 * 1024))  # announced, never sent
    connection.endheaders(b"<x/>")
    assert connection.getresponse().status == 413
    connection.close()
