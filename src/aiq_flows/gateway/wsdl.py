"""Render the interface definition (`schema.py`) as an ASMX-style WSDL 1.1 document.

The document is what the sandbox serves at ``?wsdl`` and what the gateway builds its zeep client
from (a packaged copy, so production never has to download AccountsIQ's 800 KB WSDL).
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from lxml import etree

from aiq_flows.gateway.schema import NAMESPACE, PATH_1_1, PORT_1_1, SCHEMA, SERVICE_1_1, Field, Schema

XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
NSMAP = {"s": XS, "wsdl": WSDL, "soap": SOAP, "tns": NAMESPACE}
DEFAULT_ADDRESS = f"https://eu1.accountsiq.com{PATH_1_1}"
PACKAGED_NAME = "integration_1_1.wsdl"


def _el(parent: etree._Element, ns: str, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{ns}}}{tag}", {k: v for k, v in attrs.items()})


def _element(seq: etree._Element, f: Field) -> None:
    attrs = {
        "minOccurs": "1" if f.required else "0",
        "maxOccurs": "unbounded" if f.many else "1",
        "name": f.name,
    }
    if f.nillable:
        attrs["nillable"] = "true"
    attrs["type"] = f.qualified_type
    _el(seq, XS, "element", **attrs)


def _render_types(schema: Schema, root: etree._Element) -> None:
    types = _el(root, WSDL, "types")
    xs = _el(types, XS, "schema", elementFormDefault="qualified", targetNamespace=NAMESPACE)
    for op in schema.operations.values():
        request = _el(_el(xs, XS, "element", name=op.name), XS, "complexType")
        seq = _el(request, XS, "sequence")
        for f in op.params:
            _element(seq, f)
        response = _el(_el(xs, XS, "element", name=f"{op.name}Response"), XS, "complexType")
        seq = _el(response, XS, "sequence")
        for f in (op.result, *op.out_params):
            _element(seq, f)
    for ctype in schema.complex_types.values():
        attrs = {"name": ctype.name}
        if ctype.abstract:
            attrs["abstract"] = "true"
        node = _el(xs, XS, "complexType", **attrs)
        if ctype.base:
            ext = _el(
                _el(node, XS, "complexContent", mixed="false"), XS, "extension", base=f"tns:{ctype.base}"
            )
            if ctype.fields:
                seq = _el(ext, XS, "sequence")
                for f in ctype.fields:
                    _element(seq, f)
        elif ctype.fields:
            seq = _el(node, XS, "sequence")
            for f in ctype.fields:
                _element(seq, f)
    for name, values in schema.enums.items():
        restriction = _el(_el(xs, XS, "simpleType", name=name), XS, "restriction", base="s:string")
        for value in values:
            _el(restriction, XS, "enumeration", value=value)


def render_wsdl(address: str = DEFAULT_ADDRESS, schema: Schema = SCHEMA) -> bytes:
    root = etree.Element(f"{{{WSDL}}}definitions", nsmap=NSMAP, targetNamespace=NAMESPACE)
    _render_types(schema, root)
    for op in schema.operations.values():
        for suffix, element in (("SoapIn", op.name), ("SoapOut", f"{op.name}Response")):
            message = _el(root, WSDL, "message", name=f"{op.name}{suffix}")
            _el(message, WSDL, "part", name="parameters", element=f"tns:{element}")
    port_type = _el(root, WSDL, "portType", name=PORT_1_1)
    for op in schema.operations.values():
        node = _el(port_type, WSDL, "operation", name=op.name)
        _el(node, WSDL, "input", message=f"tns:{op.name}SoapIn")
        _el(node, WSDL, "output", message=f"tns:{op.name}SoapOut")
    binding = _el(root, WSDL, "binding", name=PORT_1_1, type=f"tns:{PORT_1_1}")
    _el(binding, SOAP, "binding", transport="http://schemas.xmlsoap.org/soap/http")
    for op in schema.operations.values():
        node = _el(binding, WSDL, "operation", name=op.name)
        _el(node, SOAP, "operation", soapAction=f"{NAMESPACE}{op.name}", style="document")
        for direction in ("input", "output"):
            _el(_el(node, WSDL, direction), SOAP, "body", use="literal")
    service = _el(root, WSDL, "service", name=SERVICE_1_1)
    port = _el(service, WSDL, "port", name=PORT_1_1, binding=f"tns:{PORT_1_1}")
    _el(port, SOAP, "address", location=address)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


def packaged_wsdl_path() -> Path:
    """The committed rendering (``python -m aiq_flows.gateway.wsdl`` regenerates it)."""
    return Path(str(resources.files("aiq_flows.gateway") / PACKAGED_NAME))


@functools.cache
def packaged_wsdl_bytes() -> bytes:
    return packaged_wsdl_path().read_bytes()


if __name__ == "__main__":
    packaged_wsdl_path().write_bytes(render_wsdl())
    print(f"wrote {packaged_wsdl_path()}")
