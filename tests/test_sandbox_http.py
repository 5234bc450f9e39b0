"""The sandbox as an ASMX service over HTTP: SOAP 1.2 beside SOAP 1.1, faults in ASMX's shape and
wording, the typed admin API, and a graceful stop."""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import zeep
from lxml import etree

from aiq_flows.gateway.schema import NAMESPACE
from tests.support.processes import REPO, Sandbox

SHARED_AIQ = REPO.parent / "shared" / "aiq"
PUBLISHED = {"1.1": SHARED_AIQ / "integration_1_1.full.wsdl", "2.0": SHARED_AIQ / "integration_2_0.full.wsdl"}
needs_wsdl = pytest.mark.skipif(
    not PUBLISHED["1.1"].exists(), reason="../shared/aiq is not beside the checkout"
)
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
SOAP12_TYPE = "application/soap+xml; charset=utf-8"


def soap12(body: str, action: str) -> dict[str, Any]:
    envelope = (
        f'<?xml version="1.0" encoding="utf-8"?><soap12:Envelope xmlns:soap12="{SOAP12_ENV}">'
        f"<soap12:Body>{body}</soap12:Body></soap12:Envelope>"
    )
    return {
        "data": envelope.encode(),
        "headers": {"Content-Type": f'{SOAP12_TYPE}; action="{NAMESPACE}{action}"'},
        "timeout": 10,
    }


@needs_wsdl
def test_soap_1_2_clients_built_from_aiqs_wsdls_work(shared_sandbox: Sandbox) -> None:
    """Both published WSDLs declare a ...Soap12 port at the same address; a client bound to it
    logs in (1.1) or takes a token (2.0), reads and gets refusals in-band, as on SOAP 1.1."""
    v11 = zeep.Client(str(PUBLISHED["1.1"])).create_service(
        f"{{{NAMESPACE}}}Integration_1_1Soap12", shared_sandbox.url
    )
    uk = shared_sandbox.entity()
    token = v11.Login(
        companyID="DEMO_UK", partnerKey=shared_sandbox.credentials["partner_key"], userKey=uk["user_key"]
    )
    assert token
    assert v11.GetCustomer(token=token, customerCode="ACME01").Result.Code == "ACME01"
    missing = v11.GetCustomer(token=token, customerCode="NOSUCH")
    assert (missing.Status, missing.ErrorCode) == ("Failure", "CUSTOMER_CODE_DOES_NOT_EXIST")

    v20 = zeep.Client(str(PUBLISHED["2.0"])).create_service(
        f"{{{NAMESPACE}}}Integration_2_0Soap12", shared_sandbox.url_2_0
    )
    app = shared_sandbox.app()
    access = v20.TokenGet(clientId=app["client_id"], clientSecret=app["client_secret"]).Result.AccessToken
    header = {"AiqSoapHeader": {"Entity": "DEMO_UK", "AccessToken": access}}
    assert v20.GetCustomer(customerCode="ACME01", _soapheaders=header).Result.Code == "ACME01"


def test_soap_1_2_answers_in_soap_1_2(shared_sandbox: Sandbox) -> None:
    answer = requests.post(
        shared_sandbox.url, **soap12(f'<Login xmlns="{NAMESPACE}"><companyID>X</companyID></Login>', "Login")
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/soap+xml")
    assert etree.fromstring(answer.content).tag == f"{{{SOAP12_ENV}}}Envelope"


def test_soap_1_2_faults_have_soap_1_2_shape(shared_sandbox: Sandbox) -> None:
    answer = requests.post(shared_sandbox.url, **soap12(f'<NoSuchOperation xmlns="{NAMESPACE}"/>', "No"))
    assert answer.status_code == 500 and answer.headers["content-type"].startswith("application/soap+xml")
    fault = etree.fromstring(answer.content).find(f"{{{SOAP12_ENV}}}Body/{{{SOAP12_ENV}}}Fault")
    assert fault is not None
    assert fault.findtext(f"{{{SOAP12_ENV}}}Code/{{{SOAP12_ENV}}}Value") == "soap:Sender"
    assert "NoSuchOperation" in (fault.findtext(f"{{{SOAP12_ENV}}}Reason/{{{SOAP12_ENV}}}Text") or "")


def _fault_string(response: requests.Response) -> str:
    assert response.status_code == 500
    return str(etree.fromstring(response.content).findtext(".//faultstring"))


def test_undeserialisable_values_get_asmxs_wording_and_position(shared_sandbox: Sandbox) -> None:
    body = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">\n<soap:Body>\n'
        f'<GetTransaction xmlns="{NAMESPACE}"><token>t</token><transactionID>abc</transactionID>'
        "</GetTransaction></soap:Body></soap:Envelope>"
    )
    line = body.split("\n")[2]
    column = line.index("<transactionID>") + 2  # .NET: 1-based, at the element's name
    said = _fault_string(
        requests.post(shared_sandbox.url, data=body, headers={"Content-Type": "text/xml"}, timeout=10)
    )
    assert said == (
        f"Server was unable to read request. ---> There is an error in XML document (3, {column})."
        " ---> Input string was not in a correct format."
    )


@pytest.mark.parametrize(
    ("element", "value", "reason"),
    [
        ("upTo", "yesterday", "The string 'yesterday' is not a valid AllXsd value."),
        ("showZeros", "maybe", "The string 'maybe' is not a valid Boolean value."),
    ],
)
def test_each_type_is_refused_in_dotnets_words(
    shared_sandbox: Sandbox, element: str, value: str, reason: str
) -> None:
    values = {"upTo": "2026-11-30T00:00:00", "showZeros": "false", element: value}
    parameters = "".join(f"<{name}>{text}</{name}>" for name, text in values.items())
    body = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f'<GetCustomersStatement xmlns="{NAMESPACE}"><token>t</token>{parameters}</GetCustomersStatement>'
        "</soap:Body></soap:Envelope>"
    )
    said = _fault_string(
        requests.post(shared_sandbox.url, data=body, headers={"Content-Type": "text/xml"}, timeout=10)
    )
    column = body.index(f"<{element}>") + 2
    assert said.endswith(f"There is an error in XML document (1, {column}). ---> {reason}")


def test_malformed_xml_names_its_position(shared_sandbox: Sandbox) -> None:
    said = _fault_string(
        requests.post(
            shared_sandbox.url, data=b"<a><b></a>", headers={"Content-Type": "text/xml"}, timeout=10
        )
    )
    assert re.match(
        r"Server was unable to read request\. ---> There is an error in XML document \(1, \d+\)\.", said
    )


def test_the_admin_api_is_typed_and_documented(shared_sandbox: Sandbox) -> None:
    schema = requests.get(f"{shared_sandbox.base}/_sandbox/openapi.json", timeout=10).json()
    assert {"/_sandbox/faults", "/_sandbox/calls", "/_sandbox/documents"} <= set(schema["paths"])
    kinds = schema["components"]["schemas"]["FaultRuleIn"]["properties"]["kind"]["enum"]
    assert set(kinds) == {"latency", "http_error", "expire_token", "drop_response", "rate_limit"}
    refused = requests.post(
        f"{shared_sandbox.base}/_sandbox/faults", json={"rules": [{"kind": "explode"}]}, timeout=10
    )
    assert refused.status_code == 422 and "kind" in refused.text
    assert requests.get(f"{shared_sandbox.base}/_sandbox/docs", timeout=10).status_code == 200


def test_a_stop_finishes_the_calls_in_flight(tmp_path: Path) -> None:
    """SIGTERM while a (slow) call is being answered: the call completes, then the server exits 0."""
    sandbox = Sandbox(tmp_path)
    try:
        sandbox.faults({"kind": "latency", "operation": "Login", "latency_ms": 1500})
        body = (
            '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
            f'<Login xmlns="{NAMESPACE}"><companyID>X</companyID></Login></soap:Body></soap:Envelope>'
        )
        answers: list[int] = []

        def call() -> None:
            answers.append(
                requests.post(
                    sandbox.url, data=body, headers={"Content-Type": "text/xml"}, timeout=30
                ).status_code
            )

        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(0.5)
        sandbox.process.send_signal(signal.SIGTERM)
        caller.join(timeout=30)
        assert answers == [200]
        assert sandbox.process.wait(timeout=20) == 0
    finally:
        sandbox.stop()


def test_a_streamed_body_over_the_limit_is_refused(shared_sandbox: Sandbox) -> None:
    """No Content-Length (chunked): the limit holds as the body arrives."""

    def chunks() -> Any:
        for _ in range(17):
            yield b" " * (1024 * 1024)

    answer = requests.post(
        shared_sandbox.url, data=chunks(), headers={"Content-Type": "text/xml"}, timeout=30
    )
    assert answer.status_code == 413 and b"too large" in answer.content


def test_connections_are_kept_alive_between_calls(shared_sandbox: Sandbox) -> None:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", shared_sandbox.port, timeout=10)
    for _ in range(3):
        connection.request("GET", "/_sandbox/health")
        answer = connection.getresponse()
        assert answer.status == 200 and answer.getheader("connection") != "close"
        answer.read()
    local_port = connection.sock.getsockname()[1]
    connection.request("GET", "/_sandbox/health")
    connection.getresponse().read()
    assert connection.sock.getsockname()[1] == local_port  # the same TCP connection throughout
    connection.close()
