"""BI codes ("Departments" in the API): up to six analysis dimensions, each with its elements; a
department links to at most one element per dimension. Only the description and the active flag
of a department can change after creation."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiq_flows.sandbox.service import (
    CODE_MAX,
    DESCRIPTION_MAX,
    Call,
    Refused,
    Reply,
    SandboxService,
    handles,
    items,
)

POSITIONS = range(1, 7)


def _department(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "DepartmentID": row["department_id"],
        "Description": row["description"],
        **{f"AnalysisCode{n}": row[f"a{n}"] for n in POSITIONS},
        "IsActive": bool(row["active"]),
    }


def _departments(svc: SandboxService, entity: str) -> list[sqlite3.Row]:
    return svc.ledger.query("SELECT * FROM departments WHERE entity = ? ORDER BY department_id", entity)


def _check_description(description: str | None) -> None:
    if description is None:
        raise Refused("DEPARTMENT_DESCRIPTION_IS_NULL", "The department description is mandatory.")
    if not description.strip() or len(description) > DESCRIPTION_MAX:
        raise Refused(
            "DEPARTMENT_DESCRIPTION_IS_EMPTY",
            f"The department description must have 1 to {DESCRIPTION_MAX} characters.",
        )


@handles("GetAnalysisDimensionSetup")
def get_dimensions(svc: SandboxService, call: Call) -> Reply:
    dimensions = []
    for row in svc.ledger.query("SELECT * FROM dimensions WHERE entity = ? ORDER BY position", call.entity):
        codes = svc.ledger.query(
            "SELECT code, description FROM dimension_codes WHERE entity = ? AND position = ? ORDER BY code",
            call.entity,
            row["position"],
        )
        dimensions.append(
            {
                "Code": row["code"],
                "Description": row["description"],
                "DimensionCodes": {
                    "WSAnalysisDimensionCode": [
                        {"Code": c["code"], "Description": c["description"]} for c in codes
                    ]
                },
            }
        )
    return Reply({"WSAnalysisDimension": dimensions})


@handles("GetDepartmentList")
def get_departments(svc: SandboxService, call: Call) -> Reply:
    """Active and inactive departments alike."""
    return Reply({"Department": [_department(row) for row in _departments(svc, call.entity)]})


@handles("GetDepartmentById")
def get_department(svc: SandboxService, call: Call) -> Reply:
    wanted = call.params.get("departmentId")
    row = svc.ledger.query_one(
        "SELECT * FROM departments WHERE entity = ? AND department_id = ?", call.entity, wanted or ""
    )
    if row is None:
        raise Refused("DEPARTMENT_ID_DOES_NOT_EXIST", f"Department '{wanted}' does not exist.")
    return Reply(_department(row))


@handles("GetDepartmentsByAnalysisCode")
def get_departments_by_analysis_code(svc: SandboxService, call: Call) -> Reply:
    """Departments matching every dimension filter given (a filter lists the elements allowed)."""
    query = call.params.get("query") or {}
    filters = {n: set(items(query.get(f"a{n}Filter"), "string")) for n in POSITIONS}
    matching = [
        _department(row)
        for row in _departments(svc, call.entity)
        if all(not allowed or row[f"a{n}"] in allowed for n, allowed in filters.items())
    ]
    return Reply({"Department": matching})


@handles("CreateDepartment")
def create_department(svc: SandboxService, call: Call) -> Reply:
    department_id, description = call.params.get("id"), call.params.get("description")
    if department_id is None:
        raise Refused("DEPARTMENT_ID_IS_NULL", "The department ID is mandatory.")
    if department_id == "":
        raise Refused("DEPARTMENT_ID_IS_EMPTY", "The department ID is mandatory.")
    if len(department_id) > CODE_MAX:
        raise Refused("DEPARTMENT_ID_IS_TOO_LONG", f"The department ID is longer than {CODE_MAX} characters.")
    if department_id != department_id.upper():
        raise Refused(
            "DEPARTMENT_ID_IS_NOT_UPPERCASE", f"Department ID '{department_id}' must be upper case."
        )
    if "|" in department_id:
        raise Refused("DEPARTMENT_ID_CONTAINS_VERTICAL_BAR", "A department ID cannot contain '|'.")
    _check_description(description)
    codes = [call.params.get(f"analysisCode{n}") or None for n in POSITIONS]
    for position, code in zip(POSITIONS, codes, strict=True):
        if code is not None and (
            svc.ledger.query_one(
                "SELECT 1 FROM dimension_codes WHERE entity = ? AND position = ? AND code = ?",
                call.entity,
                position,
                code,
            )
            is None
        ):
            raise Refused(
                "DIMENSION_CODE_NOT_FOUND_IN_DIMENSION",
                f"'{code}' is not an element of analysis dimension {position}.",
            )
    with svc.ledger.transaction() as db:
        exists = db.execute(
            "SELECT 1 FROM departments WHERE entity = ? AND department_id = ?", (call.entity, department_id)
        ).fetchone()
        if exists:
            raise Refused("DEPARTMENT_ID_ALREADY_IN_USE", f"Department '{department_id}' already exists.")
        db.execute(
            "INSERT INTO departments (entity, department_id, description, a1, a2, a3, a4, a5, a6) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (call.entity, department_id, description, *codes),
        )
    return Reply()


@handles("UpdateDepartment")
def update_department(svc: SandboxService, call: Call) -> Reply:
    """Only the description and the active flag; a department's ID and analysis never change here."""
    department_id, description = call.params.get("departmentID"), call.params.get("newDescription")
    _check_description(description)
    with svc.ledger.transaction() as db:
        updated = db.execute(
            "UPDATE departments SET description = ?, active = ? WHERE entity = ? AND department_id = ?",
            (description, int(bool(call.params.get("active"))), call.entity, department_id or ""),
        ).rowcount
    if not updated:
        raise Refused("DEPARTMENT_ID_DOES_NOT_EXIST", f"Department '{department_id}' does not exist.")
    return Reply()
