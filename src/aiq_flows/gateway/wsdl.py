"""Render the interface definition (`schema.py`) as an ASMX-style WSDL 1.1 document, one per API
version (Integration 1.1 and 2.0).

The documents are what the sandbox serves at ``?wsdl`` and what the gateway builds its zeep client
from (packaged copies, so production never has to download AccountsIQ's 900 KB WSDLs).
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from lxml import etree

from aiq_flows.gateway.schema import (
    NAMESPACE,
    PATH_1_1,
    PATH_2_0,
    PORT_1_1,
    PORT_2_0,
    SCHEMA,
    SERVICE_1_1,
    SERVICE_2_0,
    V1_1,
    V2_0,
    Field,
    Schema,
)

XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
NSMAP = {"s": XS, "soap12": SOAP12, "wsdl": WSDL, "soap": SOAP, "tns": NAMESPACE}
# ASMX serves SOAP 1.1 and SOAP 1.2 at one address: one binding and one port for each, the 1.2
# ones named with a "12" suffix (Integration_1_1Soap12), as in AccountsIQ's published WSDLs.
BINDINGS = (("", SOAP), ("12", SOAP12))
HEADER = "AiqSoapHeader"
NAMES = {V1_1: (SERVICE_1_1, PORT_1_1, PATH_1_1), V2_0: (SERVICE_2_0, PORT_2_0, PATH_2_0)}


def default_address(version: str = V1_1) -> str:
    return f"https://eu1.accountsiq.com{NAMES[version][2]}"


def packaged_name(version: str = V1_1) -> str:
    return f"integration_{version.replace('.', '_')}.wsdl"


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


def _render_types(schema: Schema, root: etree._Element, version: str) -> None:
    types = _el(root, WSDL, "types")
    xs = _el(types, XS, "schema", elementFormDefault="qualified", targetNamespace=NAMESPACE)
    for op in schema.operations_of(version):
        request = _el(_el(xs, XS, "element", name=op.name), XS, "complexType")
        seq = _el(request, XS, "sequence")
        for f in op.params:
            _element(seq, f)
        response = _el(_el(xs, XS, "element", name=f"{op.name}Response"), XS, "complexType")
        seq = _el(response, XS, "sequence")
        for f in (op.result, *op.out_params):
            _element(seq, f)
    if version == V2_0:
        _el(xs, XS, "element", name=HEADER, type=f"tns:{HEADER}")
    for ctype in schema.types_of(version):
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
        if ctype.any_attribute:
            _el(node, XS, "anyAttribute")
    for name, values in schema.enums.items():
        restriction = _el(_el(xs, XS, "simpleType", name=name), XS, "restriction", base="s:string")
        for value in values:
            _el(restriction, XS, "enumeration", value=value)


def render_wsdl(address: str | None = None, schema: Schema = SCHEMA, version: str = V1_1) -> bytes:
    service_name, port_name, _ = NAMES[version]
    operations = schema.operations_of(version)
    root = etree.Element(f"{{{WSDL}}}definitions", nsmap=NSMAP, targetNamespace=NAMESPACE)
    _render_types(schema, root, version)
    for op in operations:
        for suffix, element in (("SoapIn", op.name), ("SoapOut", f"{op.name}Response")):
            message = _el(root, WSDL, "message", name=f"{op.name}{suffix}")
            _el(message, WSDL, "part", name="parameters", element=f"tns:{element}")
        if op.has_header(version):
            message = _el(root, WSDL, "message", name=f"{op.name}{HEADER}")
            _el(message, WSDL, "part", name=HEADER, element=f"tns:{HEADER}")
    port_type = _el(root, WSDL, "portType", name=port_name)
    for op in operations:
        node = _el(port_type, WSDL, "operation", name=op.name)
        _el(node, WSDL, "input", message=f"tns:{op.name}SoapIn")
        _el(node, WSDL, "output", message=f"tns:{op.name}SoapOut")
    for suffix, soap in BINDINGS:
        binding = _el(root, WSDL, "binding", name=port_name + suffix, type=f"tns:{port_name}")
        _el(binding, soap, "binding", transport="http://schemas.xmlsoap.org/soap/http")
        for op in operations:
            node = _el(binding, WSDL, "operation", name=op.name)
            _el(node, soap, "operation", soapAction=f"{NAMESPACE}{op.name}", style="document")
            request = _el(node, WSDL, "input")
            _el(request, soap, "body", use="literal")
            if op.has_header(version):
                _el(request, soap, "header", message=f"tns:{op.name}{HEADER}", part=HEADER, use="literal")
            _el(_el(node, WSDL, "output"), soap, "body", use="literal")
    service = _el(root, WSDL, "service", name=service_name)
    for suffix, soap in BINDINGS:
        port = _el(service, WSDL, "port", name=port_name + suffix, binding=f"tns:{port_name}{suffix}")
        _el(port, soap, "address", location=address or default_address(version))
    rendered: bytes = etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
    return rendered


def packaged_wsdl_path(version: str = V1_1) -> Path:
    """The committed rendering (``python -m aiq_flows.gateway.wsdl`` regenerates it)."""
    return Path(str(resources.files("aiq_flows.gateway") / packaged_name(version)))


@functools.cache
def packaged_wsdl_bytes(version: str = V1_1) -> bytes:
    return packaged_wsdl_path(version).read_bytes()


if __name__ == "__main__":
    for api_version in NAMES:
        packaged_wsdl_path(api_version).write_bytes(render_wsdl(version=api_version))
        print(f"wrote {packaged_wsdl_path(api_version)}")
