"""The project's own interface definition matches AccountsIQ's published WSDL, element by element."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from aiq_flows.gateway.schema import SCHEMA, V1_1, V2_0
from aiq_flows.gateway.wsdl import packaged_wsdl_bytes, render_wsdl
from tests.support.processes import REPO

SHARED_AIQ = REPO.parent / "shared" / "aiq"
PUBLISHED = SHARED_AIQ / "integration_1_1.full.wsdl"
PUBLISHED_BY_VERSION = {V1_1: PUBLISHED, V2_0: SHARED_AIQ / "integration_2_0.full.wsdl"}
XS = "{http://www.w3.org/2001/XMLSchema}"
WSDL_NS = "{http://schemas.xmlsoap.org/wsdl/}"

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


@cache
def _ours(version: str) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / f"ours-{version}.wsdl"
    path.write_bytes(render_wsdl(version=version))
    return path


@pytest.mark.parametrize("version", [V1_1, V2_0])
def test_packaged_wsdl_is_the_rendering_of_the_schema(version: str) -> None:
    assert packaged_wsdl_bytes(version) == render_wsdl(version=version), (
        "run: python -m aiq_flows.gateway.wsdl"
    )


def test_every_referenced_type_is_declared() -> None:
    declared = set(SCHEMA.complex_types) | set(SCHEMA.enums)
    fields = [f for op in SCHEMA.operations.values() for f in (*op.params, op.result, *op.out_params)]
    fields += [f for ctype in SCHEMA.complex_types.values() for f in ctype.fields]
    undeclared = {f.type for f in fields if f.qualified_type.startswith("tns:")} - declared
    bases = {c.base for c in SCHEMA.complex_types.values() if c.base} - declared
    assert not undeclared and not bases, sorted(undeclared | bases)


@pytest.mark.parametrize("version", [V1_1, V2_0])
def test_the_wsdl_loads_in_zeep_with_every_operation(version: str) -> None:
    import zeep

    binding = next(iter(zeep.Client(str(_ours(version))).wsdl.bindings.values()))
    assert set(binding._operations) == {op.name for op in SCHEMA.operations_of(version)}


def _cases(kind: str) -> list[tuple[str, str]]:
    if kind == "operation":
        return [(v, op.name) for v in (V1_1, V2_0) for op in SCHEMA.operations_of(v)]
    return [(v, ctype.name) for v in (V1_1, V2_0) for ctype in SCHEMA.types_of(v)]


@pytest.mark.parametrize(("version", "operation"), _cases("operation"))
def test_operation_wrappers_match_published(version: str, operation: str) -> None:
    for element in (operation, f"{operation}Response"):
        assert _fields(_named(_ours(version), "element", element)) == _fields(
            _named(PUBLISHED_BY_VERSION[version], "element", element)
        )


@pytest.mark.parametrize(("version", "type_name"), _cases("type"))
def test_complex_types_match_published(version: str, type_name: str) -> None:
    ours, published = _ours(version), PUBLISHED_BY_VERSION[version]
    assert _fields(_named(ours, "complexType", type_name)) == _fields(
        _named(published, "complexType", type_name)
    )
    for attribute in ("abstract",):
        assert _named(ours, "complexType", type_name).get(attribute) == _named(
            published, "complexType", type_name
        ).get(attribute)
    any_attribute = f"{XS}anyAttribute"
    assert (_named(ours, "complexType", type_name).find(any_attribute) is None) == (
        _named(published, "complexType", type_name).find(any_attribute) is None
    )


def _bindings(path: Path) -> dict[str, dict[str, tuple[str | None, ...]]]:
    """Per binding (SOAP 1.1 and SOAP 1.2), per operation: the SOAP namespace of its extension
    elements, its soapAction and style, the body's use and the header message its input declares."""
    root = etree.parse(str(path)).getroot()
    result: dict[str, dict[str, tuple[str | None, ...]]] = {}
    for binding in root.findall(f"{WSDL_NS}binding"):
        operations = {}
        for operation in binding.findall(f"{WSDL_NS}operation"):
            soap_operation = next(child for child in operation if child.tag.endswith("}operation"))
            soap_ns = etree.QName(soap_operation).namespace
            body = operation.find(f"{WSDL_NS}input/{{{soap_ns}}}body")
            header = operation.find(f"{WSDL_NS}input/{{{soap_ns}}}header")
            operations[operation.get("name", "")] = (
                soap_ns,
                soap_operation.get("soapAction"),
                soap_operation.get("style"),
                None if body is None else body.get("use"),
                None if header is None else header.get("message"),
            )
        result[binding.get("name", "")] = operations
    return result


def _ports(path: Path) -> list[tuple[str, str, str]]:
    """(port name, binding, namespace of its address element) of the service."""
    root = etree.parse(str(path)).getroot()
    return [
        (port.get("name", ""), port.get("binding", ""), etree.QName(port[0]).namespace or "")
        for port in root.iter(f"{WSDL_NS}port")
    ]


@pytest.mark.parametrize("version", [V1_1, V2_0])
def test_soap_1_1_and_1_2_bindings_match_published(version: str) -> None:
    ours, published = _bindings(_ours(version)), _bindings(PUBLISHED_BY_VERSION[version])
    assert set(ours) == set(published) and len(ours) == 2
    for name, operations in ours.items():
        assert operations == {operation: published[name][operation] for operation in operations}, name
    assert _ports(_ours(version)) == _ports(PUBLISHED_BY_VERSION[version])


@pytest.mark.parametrize("enum", sorted(SCHEMA.enums))
def test_enum_values_exist_in_published(enum: str) -> None:
    published = {e.get("value") for e in _named(PUBLISHED, "simpleType", enum).iter(f"{XS}enumeration")}
    ours = set(SCHEMA.enums[enum])
    assert ours <= published, f"not in AIQ's {enum}: {sorted(ours - published)}"
    if enum != "VisorExceptionCodes":  # we declare only the error codes we use
        assert ours == published
