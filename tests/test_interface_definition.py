"""The project's own interface definition matches AccountsIQ's published WSDL, element by element."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from aiq_flows.gateway.schema import SCHEMA
from aiq_flows.gateway.wsdl import packaged_wsdl_bytes, render_wsdl
from tests.support.processes import REPO

SHARED_AIQ = REPO.parent / "shared" / "aiq"
PUBLISHED = SHARED_AIQ / "integration_1_1.full.wsdl"
XS = "{http://www.w3.org/2001/XMLSchema}"

pytestmark = pytest.mark.skipif(not PUBLISHED.exists(), reason="../shared/aiq is not beside the checkout")


@cache
def _schema_node(path: Path) -> etree._Element:
    tree = etree.parse(str(path))
    return tree.find(f".//{XS}schema")


def _named(path: Path, kind: str, name: str) -> etree._Element:
    node = _schema_node(path).find(f"{XS}{kind}[@name='{name}']")
    assert node is not None, f"{kind} {name} missing in {path.name}"
    return node


def _fields(node: etree._Element) -> list[tuple[str, ...]]:
    """(name, type, minOccurs, maxOccurs, nillable) of the sequence, and the extension base."""
    result: list[tuple[str, ...]] = []
    extension = node.find(f".//{XS}extension")
    if extension is not None:
        result.append(("extends", extension.get("base", "")))
    for element in node.iter(f"{XS}element"):
        result.append(
            (
                element.get("name", ""),
                element.get("type", ""),
                element.get("minOccurs", "1"),
                element.get("maxOccurs", "1"),
                element.get("nillable", "false"),
            )
        )
    return result


def test_packaged_wsdl_is_the_rendering_of_the_schema() -> None:
    assert packaged_wsdl_bytes() == render_wsdl(), "run: python -m aiq_flows.gateway.wsdl"


def test_every_referenced_type_is_declared() -> None:
    declared = set(SCHEMA.complex_types) | set(SCHEMA.enums)
    fields = [f for op in SCHEMA.operations.values() for f in (*op.params, op.result, *op.out_params)]
    fields += [f for ctype in SCHEMA.complex_types.values() for f in ctype.fields]
    undeclared = {f.type for f in fields if f.qualified_type.startswith("tns:")} - declared
    bases = {c.base for c in SCHEMA.complex_types.values() if c.base} - declared
    assert not undeclared and not bases, sorted(undeclared | bases)


def test_the_wsdl_loads_in_zeep_with_every_operation(tmp_path: Path) -> None:
    import zeep

    path = tmp_path / "ours.wsdl"
    path.write_bytes(render_wsdl())
    binding = next(iter(zeep.Client(str(path)).wsdl.bindings.values()))
    assert set(binding._operations) == set(SCHEMA.operations)


@pytest.mark.parametrize("operation", sorted(SCHEMA.operations))
def test_operation_wrappers_match_published(operation: str, tmp_path: Path) -> None:
    ours = tmp_path / "ours.wsdl"
    ours.write_bytes(render_wsdl())
    for element in (operation, f"{operation}Response"):
        assert _fields(_named(ours, "element", element)) == _fields(_named(PUBLISHED, "element", element))


@pytest.mark.parametrize("type_name", sorted(SCHEMA.complex_types))
def test_complex_types_match_published(type_name: str, tmp_path: Path) -> None:
    ours = tmp_path / "ours.wsdl"
    ours.write_bytes(render_wsdl())
    assert _fields(_named(ours, "complexType", type_name)) == _fields(
        _named(PUBLISHED, "complexType", type_name)
    )
    assert _named(ours, "complexType", type_name).get("abstract") == _named(
        PUBLISHED, "complexType", type_name
    ).get("abstract")


@pytest.mark.parametrize("enum", sorted(SCHEMA.enums))
def test_enum_values_exist_in_published(enum: str) -> None:
    published = {e.get("value") for e in _named(PUBLISHED, "simpleType", enum).iter(f"{XS}enumeration")}
    ours = set(SCHEMA.enums[enum])
    assert ours <= published, f"not in AIQ's {enum}: {sorted(ours - published)}"
    if enum != "VisorExceptionCodes":  # we declare only the error codes we use
        assert ours == published
