"""Contract tests: clients built from AccountsIQ's own published material work against the sandbox.

- a zeep client built from AIQ's WSDL subset (not ours), bound to the sandbox address, performs
  every v1 operation and gets well-formed answers;
- AIQ's own sample request envelopes for those operations are dispatched and answered in-band
  (their placeholder values may be refused, never with a crash).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import zeep
from lxml import etree

from aiq_flows.gateway.schema import NAMESPACE, SCHEMA, V1_1
from tests.support.processes import REPO, Sandbox

SHARED_AIQ = REPO.parent / "shared" / "aiq"
SUBSET_WSDL = SHARED_AIQ / "integration_1_1.subset.wsdl"
SAMPLES = SHARED_AIQ / "samples"

pytestmark = pytest.mark.skipif(not SUBSET_WSDL.exists(), reason="../shared/aiq is not beside the checkout")


@pytest.fixture(scope="module")
def aiq_client(shared_sandbox: Sandbox) -> Iterator[tuple[Any, str]]:
    client = zeep.Client(str(SUBSET_WSDL))
    service = client.create_service(f"{{{NAMESPACE}}}Integration_1_1Soap", shared_sandbox.url)
    entity = shared_sandbox.entity("DEMO_UK")
    token = service.Login(
        companyID="DEMO_UK", partnerKey=shared_sandbox.credentials["partner_key"], userKey=entity["user_key"]
    )
    assert token
    yield service, token


def test_login_with_bad_keys_returns_no_token(aiq_client: tuple[Any, str]) -> None:
    service, _ = aiq_client
    assert not service.Login(companyID="DEMO_UK", partnerKey="nope", userKey="nope")


def test_customer_operations(aiq_client: tuple[Any, str]) -> None:
    service, token = aiq_client
    found = service.GetCustomer(token=token, customerCode="ACME01")
    assert (found.Status, found.ErrorCode, found.HasExpired) == ("Success", "SUCCESS", False)
    assert found.Result.Code == "ACME01" and isinstance(found.Result.CreditLimit, Decimal)
    missing = service.GetCustomer(token=token, customerCode="NOSUCH")
    assert (missing.Status, missing.ErrorCode, missing.Result) == (
        "Failure",
        "CUSTOMER_CODE_DOES_NOT_EXIST",
        None,
    )
    active = service.GetActiveCustomerList(token=token)
    assert active.Status == "Success" and len(active.Result.Customer) >= 3
    shell = service.GetNewCustomerFromDefaults(token=token).Result
    shell.Code, shell.Name = "CONTRACT01", "Contract Test Ltd"
    created = service.UpdateCustomer(token=token, customer=shell, create=True)
    assert (created.Status, created.Result) == ("Success", True)
    again = service.GetCustomer(token=token, customerCode="CONTRACT01").Result
    again.City = "Cork"
    assert service.UpdateCustomer(token=token, customer=again, create=False).Result is True


def test_reference_data_operations(aiq_client: tuple[Any, str]) -> None:
    service, token = aiq_client
    taxes = service.GetTaxCodeList(token=token)
    assert {t.Code for t in taxes.Result.Tax} == {"EX", "T0", "T1", "T5"}
    accounts = service.GetGLAccountList(token=token)
    assert ["1100", "Debtors Control"] in [list(pair.string) for pair in accounts.Result.ArrayOfString]


def test_batch_invoice_and_transaction_operations(aiq_client: tuple[Any, str]) -> None:
    service, token = aiq_client
    invoice = service.GetNewBatchSalesInvoice(token=token, customerCode="ACME01").Result
    invoice.InvoiceDate = datetime(2026, 11, 2)
    invoice.ExternalReference = "CONTRACT-1"
    invoice.Description = "Contract test"
    invoice.Lines = {
        "BatchSalesInvoiceLine": [
            {
                "GLAccountCode": "4000",
                "TaxCode": "T1",
                "Description": "Widget",
                "DepartmentID": None,
                "NetAmount": Decimal("10.00"),
                "TaxRate": 0.2,
                "TaxAmount": Decimal("2.00"),
            }
        ]
    }
    posted = service.CreateBatchSalesInvoiceGetBackTransactionID(token=token, inv=invoice)
    result = posted.CreateBatchSalesInvoiceGetBackTransactionIDResult
    assert (
        result.Status == "Success" and posted.transactionID > 0 and result.Result == str(posted.transactionID)
    )
    refused = service.CreateBatchSalesInvoiceGetBackTransactionID(
        token=token, inv={**zeep.helpers.serialize_object(invoice, dict), "CustomerCode": "NOSUCH"}
    )
    assert refused.transactionID == -1
    assert (
        refused.CreateBatchSalesInvoiceGetBackTransactionIDResult.ErrorCode == "CUSTOMER_CODE_DOES_NOT_EXIST"
    )
    found = service.GetTransactionsByExternalReference(
        token=token,
        query={
            "ExternalReference": "CONTRACT-1",
            "FromDate": datetime(2026, 1, 1),
            "ToDate": datetime(2026, 12, 31),
        },
    )
    summary = found.Result.WSTransactionSummary[0]
    assert (summary.TransactionID, summary.ControlAmount) == (posted.transactionID, Decimal("12.00"))
    transaction = service.GetTransaction(token=token, transactionID=posted.transactionID).Result
    assert transaction.TransactionType == "SalesBatchInvoice"
    assert sum(line.Amount for line in transaction.Lines.TransactionLine) == 0


def test_expired_token_says_has_expired(aiq_client: tuple[Any, str], shared_sandbox: Sandbox) -> None:
    service, _ = aiq_client
    token = service.Login(
        companyID="DEMO_UK",
        partnerKey=shared_sandbox.credentials["partner_key"],
        userKey=shared_sandbox.entity("DEMO_UK")["user_key"],
    )
    shared_sandbox.expire_tokens()
    expired = service.GetCustomer(token=token, customerCode="ACME01")
    assert (expired.Status, expired.ErrorCode, expired.HasExpired, expired.Result) == (
        "Failure",
        "WS_INVALIDTOKEN",
        True,
        None,
    )


def _served_samples() -> list[Path]:
    if not SAMPLES.exists():
        return []
    return sorted(
        p
        for p in SAMPLES.glob("*.request.xml")
        if p.name.split(".")[0] in SCHEMA.operations and ".2_0." not in p.name
    )


def _token_1_1(sandbox: Sandbox) -> str:
    return str(
        zeep.Client(str(SUBSET_WSDL))
        .create_service(f"{{{NAMESPACE}}}Integration_1_1Soap", sandbox.url)
        .Login(
            companyID="DEMO_UK",
            partnerKey=sandbox.credentials["partner_key"],
            userKey=sandbox.entity("DEMO_UK")["user_key"],
        )
    )


@pytest.mark.parametrize("sample", _served_samples(), ids=lambda p: p.name.split(".")[0])
def test_aiq_sample_requests_are_answered_in_band(sample: Path, shared_sandbox: Sandbox) -> None:
    operation = sample.name.split(".")[0]
    app = shared_sandbox.app()
    substitutions = {"{{aiq_client_id}}": app["client_id"], "{{aiq_client_secret}}": app["client_secret"]}
    if V1_1 in SCHEMA.operations[operation].versions:
        url, substitutions["{{aiq_token}}"] = shared_sandbox.url, _token_1_1(shared_sandbox)
    else:  # TokenGet / TokenRefresh exist only on API 2.0
        url = shared_sandbox.url_2_0
    body = sample.read_text()
    for placeholder, value in substitutions.items():
        body = body.replace(placeholder, value)
    response = requests.post(
        url,
        data=body.encode(),
        timeout=10,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NAMESPACE}{operation}"'},
    )
    assert response.status_code == 200, response.text[:500]
    answer = etree.fromstring(response.content).find(f".//{{{NAMESPACE}}}{operation}Response")
    assert answer is not None
    if operation != "Login":
        result = answer.find(f"{{{NAMESPACE}}}{operation}Result")
        assert result is not None
        # Bulk posts answer a bare array of row statuses; everything else one envelope.
        bare_rows = SCHEMA.operations[operation].result.type == "ArrayOfWSResultStatus"
        statuses = result.findall(
            f"{{{NAMESPACE}}}WSResultStatus/{{{NAMESPACE}}}Status" if bare_rows else f"{{{NAMESPACE}}}Status"
        )
        assert statuses or bare_rows  # a bulk post of no ids answers no rows
        assert {s.text for s in statuses} <= {"Success", "Failure", "NotCreated", "Conflicted"}
