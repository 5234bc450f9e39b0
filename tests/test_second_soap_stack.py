"""A second SOAP stack that is not zeep: Node's ``soap`` package, its client built from AccountsIQ's
published 1.1 and 2.0 WSDLs, drives the sandbox over SOAP 1.1 and SOAP 1.2 (tests/soap_clients/node).

``make test`` installs the package from its lock file; without Node the test is skipped, unless
AIQ_REQUIRE_NODE=1 (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from aiq_flows.gateway.schema import NAMESPACE
from tests.support.processes import REPO, Sandbox

CLIENT = REPO / "tests" / "soap_clients" / "node"
SHARED_AIQ = REPO.parent / "shared" / "aiq"


def _node() -> str:
    node = shutil.which("node")
    if node and (CLIENT / "node_modules" / "soap").is_dir() and SHARED_AIQ.is_dir():
        return node
    reason = "Node.js, its soap package (make test installs it) or ../shared/aiq is missing"
    if os.environ.get("AIQ_REQUIRE_NODE") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.mark.parametrize("soap12", [False, True], ids=["soap1.1", "soap1.2"])
@pytest.mark.parametrize("version", ["1.1", "2.0"])
def test_a_node_client_from_aiqs_wsdl_works_end_to_end(
    shared_sandbox: Sandbox, version: str, soap12: bool
) -> None:
    node = _node()
    tag = f"{version.replace('.', '')}{'12' if soap12 else '11'}"
    app = shared_sandbox.app()
    config: dict[str, Any] = {
        "wsdl": str(SHARED_AIQ / f"integration_{version.replace('.', '_')}.full.wsdl"),
        "url": shared_sandbox.url if version == "1.1" else shared_sandbox.url_2_0,
        "version": version,
        "soap12": soap12,
        "company": "DEMO_UK",
        "partnerKey": shared_sandbox.credentials["partner_key"],
        "userKey": shared_sandbox.entity()["user_key"],
        "clientId": app["client_id"],
        "clientSecret": app["client_secret"],
        "namespace": NAMESPACE,
        "customerCode": f"NODE{tag}",
        "reference": f"NODE-{tag}",
    }
    run = subprocess.run(
        [node, "scenario.js"],
        cwd=CLIENT,
        input=json.dumps(config),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])

    assert seen["authenticated"] is True
    assert (seen["customer"], seen["customerRead"]) == ("Success", "Node Client Ltd")
    assert seen["invoice"]["status"] == "Success" and seen["invoice"]["transactionID"] > 0
    documents = shared_sandbox.documents(external_reference=config["reference"])
    assert [d["transaction_id"] for d in documents] == [seen["invoice"]["transactionID"]]
    assert seen["lookup"] == [{"transactionID": seen["invoice"]["transactionID"], "amount": 120}]
    assert seen["refusal"] == {
        "status": "Failure",
        "errorCode": "TAX_RATE_IS_MORE_THAN_100_PERCENT",
        "transactionID": -1,
    }
    assert shared_sandbox.documents(external_reference=f"{config['reference']}-RATE") == []
    assert seen["fault"]["httpStatus"] == 500
    assert ("soap:Sender" if soap12 else "soap:Client") in seen["fault"]["text"]
    assert "There is an error in XML document (1, " in seen["fault"]["text"]
    assert "The string 'yesterday' is not a valid AllXsd value." in seen["fault"]["text"]
