"""BI codes and intercompany connections against the sandbox over HTTP: dimension setup, lookups,
create with elements checked against their dimension, retire with UpdateDepartment, each rule's
ErrorCode; intercompany connections seen from both entities."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from aiq_flows.gateway.client import AiqGateway
from aiq_flows.gateway.errors import AiqBusinessError
from tests.support.processes import Sandbox
from tests.test_gateway_sandbox import gateway_for


@pytest.fixture
def gateway(shared_sandbox: Sandbox) -> Iterator[AiqGateway]:
    gw = gateway_for(shared_sandbox)
    yield gw
    gw.close()


def test_dimension_setup_lists_each_dimension_with_its_elements(gateway: AiqGateway) -> None:
    dimensions = gateway.get_analysis_dimensions()
    assert [d.Code for d in dimensions] == ["CUSTOMER", "PROJECT", "PRODUCT"]
    assert dimensions[1].element_codes == ["P-0900", "P-1001", "P-1002", "P-1003", "P-1004", "P-SUBS"]


def test_department_lookups(gateway: AiqGateway) -> None:
    job = gateway.get_department("JOB-1001")
    assert job is not None and job.analysis_codes[:3] == ("C-ACME", "P-1001", "CONSULT") and job.IsActive
    assert gateway.get_department("NOPE") is None
    assert {"SALES-UK", "SUBS", "JOB-1001", "JOB-1002"} <= {d.DepartmentID for d in gateway.get_departments()}


def test_lookup_by_analysis_code_ands_the_dimensions(gateway: AiqGateway) -> None:
    consulting = {d.DepartmentID for d in gateway.departments_by_analysis_code({3: ["CONSULT"]})}
    assert {"JOB-1001", "JOB-1002"} <= consulting and "SUBS" not in consulting
    acme_consulting = gateway.departments_by_analysis_code({1: ["C-ACME"], 3: ["CONSULT"]})
    assert [d.DepartmentID for d in acme_consulting] == ["JOB-1001"]


def test_create_then_retire_a_code(gateway: AiqGateway, shared_sandbox: Sandbox) -> None:
    gateway.create_department("JOB-2001", "Placement job 2001", ["C-CORAL", "P-1002", None])
    created = gateway.get_department("JOB-2001")
    assert created is not None and created.analysis_codes[:3] == ("C-CORAL", "P-1002", None)
    gateway.update_department("JOB-2001", "Placement job 2001 (closed)", active=False)
    retired = gateway.get_department("JOB-2001")
    assert (
        retired is not None and not retired.IsActive and retired.Description == "Placement job 2001 (closed)"
    )
    assert "JOB-2001" in {d.DepartmentID for d in gateway.get_departments()}  # inactive ones are listed too
    assert retired.analysis_codes == created.analysis_codes  # only description and flag change


@pytest.mark.parametrize(
    ("arguments", "error_code"),
    [
        ({"department_id": "", "description": "x"}, "DEPARTMENT_ID_IS_EMPTY"),
        ({"department_id": "J" * 51, "description": "x"}, "DEPARTMENT_ID_IS_TOO_LONG"),
        ({"department_id": "job-x", "description": "x"}, "DEPARTMENT_ID_IS_NOT_UPPERCASE"),
        ({"department_id": "JOB|X", "description": "x"}, "DEPARTMENT_ID_CONTAINS_VERTICAL_BAR"),
        ({"department_id": "SUBS", "description": "again"}, "DEPARTMENT_ID_ALREADY_IN_USE"),
        ({"department_id": "JOB-X", "description": ""}, "DEPARTMENT_DESCRIPTION_IS_EMPTY"),
        (
            {"department_id": "JOB-X", "description": "x", "analysis_codes": ["P-1001"]},
            "DIMENSION_CODE_NOT_FOUND_IN_DIMENSION",
        ),  # a project element offered as a customer
    ],
)
def test_create_department_rules(gateway: AiqGateway, arguments: dict[str, Any], error_code: str) -> None:
    with pytest.raises(AiqBusinessError) as refused:
        gateway.create_department(**arguments)
    assert refused.value.error_code == error_code


def test_update_of_an_unknown_department_is_refused(gateway: AiqGateway) -> None:
    with pytest.raises(AiqBusinessError) as refused:
        gateway.update_department("NOPE", "whatever", active=False)
    assert refused.value.error_code == "DEPARTMENT_ID_DOES_NOT_EXIST"


def test_department_id_null_and_description_null_are_refused(shared_sandbox: Sandbox) -> None:
    import zeep

    from aiq_flows.gateway.schema import NAMESPACE
    from aiq_flows.gateway.wsdl import packaged_wsdl_path

    service = zeep.Client(str(packaged_wsdl_path())).create_service(
        f"{{{NAMESPACE}}}Integration_1_1Soap", shared_sandbox.url
    )
    token = service.Login(
        companyID="DEMO_UK",
        partnerKey=shared_sandbox.credentials["partner_key"],
        userKey=shared_sandbox.entity("DEMO_UK")["user_key"],
    )
    assert service.CreateDepartment(token=token, description="x").ErrorCode == "DEPARTMENT_ID_IS_NULL"
    assert service.CreateDepartment(token=token, id="JOB-Y").ErrorCode == "DEPARTMENT_DESCRIPTION_IS_NULL"


def test_intercompany_connections_are_seen_from_both_sides(shared_sandbox: Sandbox) -> None:
    uk, ie = gateway_for(shared_sandbox, "DEMO_UK"), gateway_for(shared_sandbox, "DEMO_IE")
    from_uk = {
        (c.Local.AccountCode, c.Remote.EntityID, c.Remote.AccountCode)
        for c in uk.get_intercompany_connections()
    }
    # with Ireland a customer and a supplier, both coded IC-IE; with DEMO_UK2 both coded IC-UK2
    assert from_uk == {("IC-IE", "DEMO_IE", "IC-UK"), ("IC-UK2", "DEMO_UK2", "IC-UK")}
    seen_from_uk = [c for c in uk.get_intercompany_connections() if c.Remote.EntityID == "DEMO_IE"]
    seen_from_ie = ie.get_intercompany_connections()
    assert len(seen_from_uk) == len(seen_from_ie) == 2
    for uk_side, ie_side in zip(seen_from_uk, seen_from_ie, strict=True):  # the same pairs, mirrored
        assert (uk_side.Local.AccountID, uk_side.Remote.AccountID) == (
            ie_side.Remote.AccountID,
            ie_side.Local.AccountID,
        )
    sale = seen_from_uk[0]  # UK sells to IE: its customer IC-IE, IE's supplier IC-UK, billed in GBP
    assert (sale.Local.EntityBaseCurrencyCode, sale.Remote.EntityBaseCurrencyCode) == ("GBP", "EUR")
    assert sale.Local.AccountCurrencyCode == sale.Remote.AccountCurrencyCode == "GBP"
    customer = uk.get_customer("IC-IE")
    assert customer is not None and customer.AccountID == sale.Local.AccountID
