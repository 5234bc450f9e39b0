"""API 2.0 against the sandbox: a zeep client built from AccountsIQ's published 2.0 WSDL gets a
token, lists its entities and switches entity by header; tokens reach only their application's
entities; expiry, refresh (with rotation) and the rate limiter behave as API-NOTES §2.2 says; and
the gateway's `TokenAuthenticator` does all of it transparently."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
import zeep
from pydantic import SecretStr

from aiq_flows.gateway.client import AiqGateway, IntegrationCredentials, TokenAuthenticator
from aiq_flows.gateway.errors import AiqAuthenticationError, AiqBusinessError
from aiq_flows.gateway.models import InvoiceLine
from aiq_flows.gateway.schema import NAMESPACE
from tests.support.processes import REPO, Sandbox
from tests.test_gateway_sandbox import gateway_for, invoice, line

WSDL_2_0 = REPO.parent / "shared" / "aiq" / "integration_2_0.full.wsdl"
needs_wsdl = pytest.mark.skipif(not WSDL_2_0.exists(), reason="../shared/aiq is not beside the checkout")


@pytest.fixture(scope="module")
def service(shared_sandbox: Sandbox) -> Any:
    if not WSDL_2_0.exists():
        pytest.skip("../shared/aiq is not beside the checkout")
    client = zeep.Client(str(WSDL_2_0))
    return client.create_service(f"{{{NAMESPACE}}}Integration_2_0Soap", shared_sandbox.url_2_0)


def tokens(service: Any, app: dict[str, Any]) -> tuple[str, str]:
    answer = service.TokenGet(clientId=app["client_id"], clientSecret=app["client_secret"])
    assert (answer.Status, answer.ErrorCode) == ("Success", "SUCCESS")
    return answer.Result.AccessToken, answer.Result.RefreshToken


def header(access: str, entity: str | None = "DEMO_UK") -> dict[str, Any]:
    return {"AiqSoapHeader": {"Entity": entity, "AccessToken": access}}


@needs_wsdl
def test_token_entities_and_entity_switching_by_header(service: Any, shared_sandbox: Sandbox) -> None:
    access, refresh = tokens(service, shared_sandbox.app())
    assert access and refresh and access != refresh
    entities = service.GetEntitiesByToken(_soapheaders=header(access, None))
    assert entities.Status == "Success"
    assert {(e.EntityID, e.BaseCurrency) for e in entities.Result.WSEntity} == {
        ("DEMO_UK", "GBP"),
        ("DEMO_IE", "EUR"),
        ("DEMO_UK2", "GBP"),
    }
    uk = service.GetCustomer(customerCode="ACME01", _soapheaders=header(access, "DEMO_UK"))
    assert (uk.Status, uk.Result.Code) == ("Success", "ACME01")
    ie = service.GetCustomer(customerCode="ACME01", _soapheaders=header(access, "DEMO_IE"))
    assert (ie.Status, ie.ErrorCode) == ("Failure", "CUSTOMER_CODE_DOES_NOT_EXIST")
    dublin = service.GetCustomer(customerCode="DUBLINCO", _soapheaders=header(access, "DEMO_IE"))
    assert dublin.Result.CurrencyCode == "EUR"


@needs_wsdl
def test_a_token_reaches_only_its_applications_entities(service: Any, shared_sandbox: Sandbox) -> None:
    access, _ = tokens(service, shared_sandbox.app("uk-only"))
    entities = service.GetEntitiesByToken(_soapheaders=header(access, None))
    assert [e.EntityID for e in entities.Result.WSEntity] == ["DEMO_UK"]
    assert service.GetCustomer(customerCode="ACME01", _soapheaders=header(access)).Status == "Success"
    denied = service.GetCustomer(customerCode="DUBLINCO", _soapheaders=header(access, "DEMO_IE"))
    assert (denied.Status, denied.ErrorCode, denied.HasExpired) == (
        "Failure",
        "OAUTH_INTEGRATION_APPS_TOKEN_DOES_NOT_HAVE_PERMISSION",
        False,
    )
    no_entity = service.GetCustomer(customerCode="ACME01", _soapheaders=header(access, None))
    assert no_entity.ErrorCode == "OAUTH_INTEGRATION_APPS_NO_ENTITY_PROVIDED_IN_HEADER"


@needs_wsdl
def test_expiry_refresh_and_rotation(service: Any, shared_sandbox: Sandbox) -> None:
    app = shared_sandbox.app()
    access, refresh = tokens(service, app)
    shared_sandbox.expire_tokens()
    expired = service.GetCustomer(customerCode="ACME01", _soapheaders=header(access))
    assert (expired.Status, expired.ErrorCode, expired.HasExpired) == (
        "Failure",
        "OAUTH_INTEGRATION_APPS_TOKEN_EXPIRED",
        True,
    )
    renewed = service.TokenRefresh(
        clientId=app["client_id"], clientSecret=app["client_secret"], refreshToken=refresh
    )
    assert renewed.Status == "Success" and renewed.Result.AccessToken not in (access, None)
    assert renewed.Result.RefreshToken != refresh
    ok = service.GetCustomer(customerCode="ACME01", _soapheaders=header(renewed.Result.AccessToken))
    assert ok.Status == "Success"
    spent = service.TokenRefresh(
        clientId=app["client_id"], clientSecret=app["client_secret"], refreshToken=refresh
    )
    assert (spent.Status, spent.ErrorCode, spent.Result) == (
        "Failure",
        "OAUTH_INTEGRATION_APPS_REFRESH_TOKEN_EXPIRED",
        None,
    )


@needs_wsdl
@pytest.mark.parametrize(
    ("client_id", "secret", "code"),
    [
        ("", "x", "OAUTH_INTEGRATION_APPS_CLIENTID_IS_NULL_OR_EMPTY"),
        ("real", "", "OAUTH_INTEGRATION_APPS_CLIENTSECRET_IS_NULL_OR_EMPTY"),
        ("real", "wrong", "OAUTH_INTEGRATION_APPS_APP_NOT_FOUND"),
    ],
)
def test_token_get_refusals(
    service: Any, shared_sandbox: Sandbox, client_id: str, secret: str, code: str
) -> None:
    app_id = shared_sandbox.app()["client_id"] if client_id == "real" else client_id
    refused = service.TokenGet(clientId=app_id, clientSecret=secret)
    assert (refused.Status, refused.ErrorCode, refused.Result) == ("Failure", code, None)


@needs_wsdl
def test_a_call_without_the_header_or_to_no_entity_gets_the_exact_code(
    service: Any, shared_sandbox: Sandbox
) -> None:
    no_header = service.GetCustomer(customerCode="ACME01")
    assert (no_header.Status, no_header.ErrorCode, no_header.HasExpired) == (
        "Failure",
        "OAUTH_INTEGRATION_APPS_TOKEN_NOT_PROVIDED_IN_AUTHORIZATION_HEADER",
        False,
    )
    access, _ = tokens(service, shared_sandbox.app())
    nowhere = service.GetCustomer(customerCode="ACME01", _soapheaders=header(access, "NO_SUCH_ENTITY"))
    assert (nowhere.Status, nowhere.ErrorCode) == ("Failure", "API_LAYER_ENTITY_ID_NOT_FOUND")


@needs_wsdl
def test_an_unknown_access_token_is_invalid_not_expired(service: Any) -> None:
    answer = service.GetCustomer(customerCode="ACME01", _soapheaders=header("made-up"))
    assert (answer.ErrorCode, answer.HasExpired) == ("OAUTH_INTEGRATION_APPS_TOKEN_IS_INVALID", False)


def test_each_version_serves_only_its_own_operations(shared_sandbox: Sandbox) -> None:
    def call(url: str, operation: str) -> int:
        body = (
            '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
            f'<{operation} xmlns="{NAMESPACE}"/></soap:Body></soap:Envelope>'
        )
        return requests.post(url, data=body, headers={"Content-Type": "text/xml"}, timeout=10).status_code

    assert call(shared_sandbox.url_2_0, "Login") == 500  # SOAP Fault: Login is gone in 2.0
    assert call(shared_sandbox.url, "TokenGet") == 500
    wsdl = requests.get(shared_sandbox.url_2_0 + "?WSDL", timeout=10).text
    assert "AiqSoapHeader" in wsdl and shared_sandbox.url_2_0 in wsdl


# --- the gateway on API 2.0 -------------------------------------------------------------------------


def authenticator(sandbox: Sandbox, app: str = "aiq-flows") -> TokenAuthenticator:
    credentials = sandbox.app(app)
    return TokenAuthenticator(
        IntegrationCredentials(
            client_id=credentials["client_id"], client_secret=SecretStr(credentials["client_secret"])
        )
    )


@pytest.fixture
def gateways(shared_sandbox: Sandbox) -> Iterator[tuple[AiqGateway, AiqGateway]]:
    auth = authenticator(shared_sandbox)
    uk, ie = (
        AiqGateway.for_entity(shared_sandbox.url_2_0, auth, entity, timeout=5, backoff_seconds=0.01)
        for entity in ("DEMO_UK", "DEMO_IE")
    )
    yield uk, ie
    uk.close()
    ie.close()


def test_one_integration_two_entities_and_a_shared_refresh(
    gateways: tuple[AiqGateway, AiqGateway], shared_sandbox: Sandbox
) -> None:
    uk, ie = gateways
    assert {e["EntityID"] for e in uk.get_entities()} == {"DEMO_UK", "DEMO_IE", "DEMO_UK2"}
    assert uk.get_customer("ACME01") is not None and ie.get_customer("ACME01") is None
    assert ie.get_customer("DUBLINCO") is not None
    shared_sandbox.reset_calls()
    shared_sandbox.expire_tokens()
    uk_id = uk.create_batch_sales_invoice(invoice("V2-UK-1", line("100.00", None)))
    ie_invoice = invoice("V2-IE-1", line("100.00", None, tax_code="S23", rate=0.23), customer="DUBLINCO")
    ie_id = ie.create_batch_sales_invoice(ie_invoice)
    assert uk_id != ie_id
    calls = shared_sandbox.calls()
    # the UK gateway refreshed; the IE gateway, sharing the authenticator, used the new token
    assert calls.get("TokenRefresh") == 1 and "TokenGet" not in calls
    assert [d["entity"] for d in shared_sandbox.documents("DEMO_IE", "V2-IE-1")] == ["DEMO_IE"]
    assert shared_sandbox.documents("DEMO_UK", "V2-IE-1") == []


def test_an_application_without_the_entity_is_refused_clearly(shared_sandbox: Sandbox) -> None:
    gateway = AiqGateway.for_entity(
        shared_sandbox.url_2_0, authenticator(shared_sandbox, "uk-only"), "DEMO_IE", timeout=5
    )
    with pytest.raises(AiqBusinessError) as refused:
        gateway.get_customer("DUBLINCO")
    assert refused.value.error_code == "OAUTH_INTEGRATION_APPS_TOKEN_DOES_NOT_HAVE_PERMISSION"
    gateway.close()


def test_bad_client_secret_raises_authentication_error(shared_sandbox: Sandbox) -> None:
    auth = TokenAuthenticator(
        IntegrationCredentials(client_id=shared_sandbox.app()["client_id"], client_secret=SecretStr("wrong"))
    )
    gateway = AiqGateway.for_entity(shared_sandbox.url_2_0, auth, "DEMO_UK", timeout=5)
    with pytest.raises(AiqAuthenticationError) as refused:
        gateway.get_tax_codes()
    assert "OAUTH_INTEGRATION_APPS_APP_NOT_FOUND" in str(refused.value) and "wrong" not in str(refused.value)
    gateway.close()


@pytest.mark.parametrize("version", ["2.0", "1.1"])
def test_rate_limited_writes_are_retried_and_post_once(sandbox: Sandbox, version: str) -> None:
    gateway = (
        AiqGateway.for_entity(
            sandbox.url_2_0, authenticator(sandbox), "DEMO_UK", timeout=5, backoff_seconds=0.01
        )
        if version == "2.0"
        else gateway_for(sandbox)
    )
    operation = "CreateBatchSalesInvoiceGetBackTransactionID"
    sandbox.faults({"kind": "rate_limit", "operation": operation, "count": 2})
    transaction_id = gateway.create_batch_sales_invoice(invoice("RATE-1", line("10.00", None)))
    assert sandbox.calls()[operation] == 3
    [document] = sandbox.documents(external_reference="RATE-1")
    assert document["transaction_id"] == transaction_id
    gateway.close()


def test_item_invoice_round_trip_on_2_0(gateways: tuple[AiqGateway, AiqGateway]) -> None:
    _, ie = gateways
    template = ie.new_sales_invoice("DUBLINCO")
    template.ExternalReference, template.InvoiceDate = "V2-ITEM-1", datetime(2026, 11, 20)
    template.Lines = [InvoiceLine(InvoicedQuantity=Decimal(2), StockItemID="CONSULT-DAY")]
    transaction_id = ie.post_invoice(ie.save_invoice(template))
    [found] = ie.invoices_by_external_reference("V2-ITEM-1")
    assert found.Status == "Posted" and found.CurrencyCode == "EUR" and transaction_id > 0
    assert found.GrossAmount == Decimal("1599.00")  # 2 x 650 = 1300.00 + 23% VAT 299.00
