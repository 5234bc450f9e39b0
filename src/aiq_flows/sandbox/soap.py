"""SOAP as ASMX speaks it, with no HTTP: envelopes of SOAP 1.1 and SOAP 1.2 in, service calls, and
replies or faults out, in the version the request came in.

Requests are (de)serialised by zeep against the project's own WSDL, the same definition the
gateway uses, so the sandbox accepts exactly what AccountsIQ's interface allows. Malformed XML,
DTDs and undeserialisable values are refused with a SOAP Fault in ASMX's shape and wording
("Server was unable to read request. ---> There is an error in XML document (1, 345). ---> …"),
positions as .NET's XmlReader reports them (1-based line, and the column of the element's name).
"""

from __future__ import annotations

import contextlib
import threading
import xml.parsers.expat
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.sax.saxutils import escape

import isodate
import zeep
import zeep.helpers
from lxml import etree
from zeep.wsdl import Document

from aiq_flows.gateway.schema import NAMESPACE, SCHEMA, V1_1, Field
from aiq_flows.gateway.wsdl import NAMES, packaged_wsdl_path
from aiq_flows.sandbox.service import (
    FAILED_OUT,
    Refused,
    Reply,
    SandboxService,
    TokenExpired,
    default_value,
)

XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
DECLARED_CODES = frozenset(SCHEMA.enums["VisorExceptionCodes"])
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=True
)
UNREADABLE = "Server was unable to read request. ---> There is an error in XML document ({line}, {column})."


@dataclass(frozen=True)
class SoapVersion:
    """What differs between SOAP 1.1 and 1.2 for an ASMX service."""

    name: str
    envelope: str  # the envelope's namespace
    content_type: str
    binding_suffix: str  # Integration_1_1Soap / Integration_1_1Soap12
    sender: str  # fault code for the caller's mistakes
    receiver: str  # fault code for the server's

    def fault(self, sender: bool, message: str) -> bytes:
        code = self.sender if sender else self.receiver
        if self is SOAP11:
            fault = (
                f"<faultcode>soap:{code}</faultcode><faultstring>{escape(message)}</faultstring><detail />"
            )
        else:
            fault = (
                f"<soap:Code><soap:Value>soap:{code}</soap:Value></soap:Code>"
                f'<soap:Reason><soap:Text xml:lang="en">{escape(message)}</soap:Text></soap:Reason>'
                "<soap:Detail />"
            )
        return (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<soap:Envelope xmlns:soap="{self.envelope}"><soap:Body><soap:Fault>{fault}'
            "</soap:Fault></soap:Body></soap:Envelope>"
        ).encode()


SOAP11 = SoapVersion(
    "1.1", "http://schemas.xmlsoap.org/soap/envelope/", "text/xml; charset=utf-8", "", "Client", "Server"
)
SOAP12 = SoapVersion(
    "1.2",
    "http://www.w3.org/2003/05/soap-envelope",
    "application/soap+xml; charset=utf-8",
    "12",
    "Sender",
    "Receiver",
)
SOAP_VERSIONS = {v.envelope: v for v in (SOAP11, SOAP12)}


class SoapFault(Exception):
    """A request refused before any handler ran; ``sender`` is the caller's fault."""

    def __init__(self, message: str, version: SoapVersion = SOAP11, *, sender: bool = True) -> None:
        super().__init__(message)
        self.version, self.sender = version, sender

    @property
    def envelope(self) -> bytes:
        return self.version.fault(self.sender, str(self))


def version_for_content_type(content_type: str | None) -> SoapVersion:
    """The SOAP version a request announces (ASMX answers a fault in it when the body is unreadable)."""
    return SOAP12 if (content_type or "").lower().startswith("application/soap+xml") else SOAP11


# --- values .NET cannot deserialise ----------------------------------------------------------------


def _is_bool(text: str) -> None:
    if text.strip() not in ("true", "false", "1", "0"):
        raise ValueError(text)


def _is_decimal(text: str) -> None:
    if not Decimal(text.strip()).is_finite():
        raise ValueError(text)


def _is_datetime(text: str) -> None:
    try:
        datetime.fromisoformat(text.strip())  # the common case, in C
    except ValueError:
        isodate.parse_datetime(text)  # xs:dateTime forms fromisoformat does not take


# What XmlSerializer says of a value it cannot read, per XSD type.
_NET_FORMAT = "Input string was not in a correct format."
_PARSE_CHECKS: dict[str, tuple[Any, str]] = {
    "int": (int, _NET_FORMAT),
    "long": (int, _NET_FORMAT),
    "short": (int, _NET_FORMAT),
    "decimal": (_is_decimal, _NET_FORMAT),
    "double": (float, _NET_FORMAT),
    "boolean": (_is_bool, "The string '{value}' is not a valid Boolean value."),
    "dateTime": (_is_datetime, "The string '{value}' is not a valid AllXsd value."),
}


def undeserialisable(element: etree._Element, fields: tuple[Field, ...]) -> tuple[etree._Element, str] | None:
    """The first element whose value .NET could not deserialise, and .NET's words for it. zeep logs
    and swallows such values (returning None); ASMX answers them with a SOAP Fault. Unknown
    elements are ignored, as XmlSerializer ignores them."""
    by_name = {f.name: f for f in fields}
    for child in element:
        spec = by_name.get(etree.QName(child).localname)
        if spec is None or child.get(XSI_NIL) == "true":
            continue
        value = child.text or ""
        if spec.type in _PARSE_CHECKS:
            check, wording = _PARSE_CHECKS[spec.type]
            try:
                check(value)
            except (ValueError, ArithmeticError, InvalidOperation, isodate.ISO8601Error):
                return child, wording.format(value=value)
        elif spec.type in SCHEMA.enums:
            if value.strip() not in SCHEMA.enums[spec.type]:
                return child, f"Instance validation error: '{value}' is not a valid value for {spec.type}."
        elif spec.type in SCHEMA.complex_types:
            problem = undeserialisable(child, SCHEMA.all_fields(spec.type))
            if problem:
                return problem
    return None


def position_of(body: bytes, target: etree._Element) -> tuple[int, int]:
    """Where ``target`` starts in ``body``, as .NET reports it: 1-based line, and the 1-based column
    of the element's name (just after its '<'). lxml keeps lines only, so expat finds the column."""
    root = target.getroottree().getroot()
    index = next(i for i, element in enumerate(root.iter(etree.Element)) if element is target)
    parser = xml.parsers.expat.ParserCreate()
    seen, found = 0, (int(target.sourceline or 1), 1)

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal seen, found
        if seen == index:
            found = (parser.CurrentLineNumber, parser.CurrentColumnNumber + 2)
        seen += 1

    parser.StartElementHandler = start
    with contextlib.suppress(xml.parsers.expat.ExpatError):  # lxml has parsed it: the line is known
        parser.Parse(body, True)
    return found


def unreadable(body: bytes, element: etree._Element, version: SoapVersion, reason: str) -> SoapFault:
    line, column = position_of(body, element)
    return SoapFault(f"{UNREADABLE.format(line=line, column=column)} ---> {reason}", version)


# --- the endpoint ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    version: SoapVersion
    operation: str
    envelope: etree._Element
    body: bytes


class SoapEndpoint:
    """Turns SOAP envelopes of one API version into service calls and replies into envelopes.

    1.1 identifies the entity by the ``token`` body parameter (from ``Login``); 2.0 by the
    ``AiqSoapHeader`` (``AccessToken`` from ``TokenGet``, ``Entity`` chosen per call)."""

    def __init__(self, service: SandboxService, version: str, calls: Counter[str]) -> None:
        self.service = service
        self.version = version
        # Lax parsing: XmlSerializer accepts a body with members missing (older clients omit the
        # newer ones, e.g. ForecastedPaymentDate); zeep's strict mode would refuse it.
        document = Document(
            str(packaged_wsdl_path(version)), zeep.Transport(), settings=zeep.Settings(strict=False)
        )
        self.types = document.types
        port = NAMES[version][1]
        self.bindings = {
            soap: document.bindings[f"{{{NAMESPACE}}}{port}{soap.binding_suffix}"]
            for soap in (SOAP11, SOAP12)
        }
        self.calls = calls
        self._calls_lock = threading.Lock()

    def parse(self, body: bytes, content_type: str | None = None) -> Request:
        announced = version_for_content_type(content_type)
        try:
            envelope = etree.fromstring(body, _PARSER)
        except etree.XMLSyntaxError as error:
            line, column = error.position
            message = f"{UNREADABLE.format(line=line, column=column)} ---> {error.msg}"
            raise SoapFault(message, announced) from None
        if envelope.getroottree().docinfo.doctype:
            raise SoapFault("DTDs are not allowed in SOAP messages.", announced)
        soap = SOAP_VERSIONS.get(etree.QName(envelope).namespace or "")
        body_element = envelope.find(f"{{{soap.envelope}}}Body") if soap else None
        if soap is None or etree.QName(envelope).localname != "Envelope":
            raise SoapFault("The request is not a SOAP 1.1 or SOAP 1.2 envelope.", announced)
        if body_element is None or len(body_element) == 0:
            raise SoapFault("The SOAP envelope has no body.", soap)
        name = etree.QName(body_element[0])
        known = (
            name.localname in SCHEMA.operations and self.version in SCHEMA.operations[name.localname].versions
        )
        if name.namespace != NAMESPACE or not known:
            raise SoapFault(f"Server did not recognize the operation '{name.localname}'.", soap)
        return Request(soap, name.localname, envelope, body)

    def arguments(self, request: Request) -> dict[str, Any]:
        body = request.envelope.find(f"{{{request.version.envelope}}}Body")[0]
        problem = undeserialisable(body, SCHEMA.operations[request.operation].params)
        if problem:
            element, reason = problem
            raise unreadable(request.body, element, request.version, reason)
        try:
            for leaf in body.iter():
                # .NET reads an empty element as "" (absent or xsi:nil is null); zeep reads None.
                if len(leaf) == 0 and leaf.text is None and leaf.get(XSI_NIL) != "true":
                    leaf.text = ""
            # Parse the wrapper element itself: zeep's message deserialize unwraps single-part
            # bodies to their only value, and the handlers want every parameter by name.
            binding = self.bindings[request.version]
            parsed = binding.get(request.operation).input.body.parse(body, self.types)
        except Exception as error:  # zeep raises ValueError, InvalidOperation, XMLParseError...
            raise unreadable(request.body, body, request.version, str(error)) from None
        return dict(zeep.helpers.serialize_object(parsed, target_cls=dict) or {})

    def record_call(self, operation: str) -> None:
        with self._calls_lock:
            self.calls[operation] += 1

    @staticmethod
    def soap_header(request: Request) -> dict[str, str | None]:
        """``AiqSoapHeader`` as a dict (empty when absent)."""
        header = request.envelope.find(f"{{{request.version.envelope}}}Header/{{{NAMESPACE}}}AiqSoapHeader")
        if header is None:
            return {}
        return {name: header.findtext(f"{{{NAMESPACE}}}{name}") for name in ("Entity", "AccessToken")}

    def _entity(self, operation: str, params: dict[str, Any], header: dict[str, str | None]) -> str:
        if self.version == V1_1:
            return self.service.entity_for(params.get("token"))
        if operation == "GetEntitiesByToken":
            return self.service.app_for_access(header.get("AccessToken"))["client_id"]
        return self.service.entity_for_header(header.get("AccessToken"), header.get("Entity"))

    def _token_reply(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """TokenGet / TokenRefresh answer WSResult3: plain-string Status and ErrorCode, no HasExpired."""
        try:
            if operation == "TokenGet":
                tokens = self.service.token_get(params.get("clientId"), params.get("clientSecret"))
            else:
                tokens = self.service.token_refresh(
                    params.get("clientId"), params.get("clientSecret"), params.get("refreshToken")
                )
            result = {"Result": tokens, "Status": "Success", "ErrorCode": "SUCCESS", "ErrorMessage": None}
        except Refused as refusal:
            result = {
                "Result": None,
                "Status": "Failure",
                "ErrorCode": refusal.code,
                "ErrorMessage": refusal.message,
            }
        return {f"{operation}Result": result}

    def reply(
        self,
        operation: str,
        params: dict[str, Any],
        header: dict[str, str | None] | None = None,
        refusal: Refused | None = None,
    ) -> dict[str, Any]:
        """The response body's children for a call, envelope status included. ``refusal`` answers
        the call in-band without handling it (the rate limiter)."""
        if operation == "Login":
            token = self.service.login(
                params.get("companyID"), params.get("partnerKey"), params.get("userKey")
            )
            return {"LoginResult": token}
        if operation in ("TokenGet", "TokenRefresh"):
            return self._token_reply(operation, params)
        header = header or {}
        spec = SCHEMA.operations[operation]
        if spec.result.type == "ArrayOfWSResultStatus":
            return self._bare_rows_reply(operation, params, header, refusal)
        result_fields = {f.name for f in SCHEMA.all_fields(spec.result.type)}
        status: dict[str, Any] = {
            "Status": "Success",
            "ErrorCode": "SUCCESS",
            "ErrorMessage": None,
            "HasExpired": False,
        }
        out = {f.name: default_value(f.type) for f in spec.out_params}
        try:
            if refusal is not None:
                raise refusal
            entity = self._entity(operation, params, header)
            if operation == "GetEntitiesByToken":
                answer = Reply({"WSEntity": self.service.entities_of(header.get("AccessToken"))})
            else:
                answer = self.service.handle(operation, entity, params)
            status["Status"] = answer.status
            out.update(answer.out)
            if "Result" in result_fields:
                status["Result"] = answer.result
        except TokenExpired as expired:
            status.update(
                Status="Failure",
                ErrorCode=expired.code,
                ErrorMessage=expired.message,
                HasExpired=expired.has_expired,
            )
            out.update(FAILED_OUT.get(operation, {}))
        except Refused as refused:
            if refused.code not in DECLARED_CODES:  # the sandbox may only say what its WSDL declares
                raise RuntimeError(f"{operation} refused with undeclared ErrorCode {refused.code}") from None
            status.update(Status=refused.status, ErrorCode=refused.code, ErrorMessage=refused.message)
            out.update(FAILED_OUT.get(operation, {}))
        if "Result" in result_fields and "Result" not in status:
            required = next(f for f in SCHEMA.all_fields(spec.result.type) if f.name == "Result")
            status["Result"] = default_value(required.type) if required.required else None
        return {spec.result.name: status, **out}

    def _bare_rows_reply(
        self,
        operation: str,
        params: dict[str, Any],
        header: dict[str, str | None],
        refusal: Refused | None,
    ) -> dict[str, Any]:
        """Bulk posts answer a bare array of row statuses, no envelope: a refusal of the whole
        call (an expired token, the rate limiter) is repeated on every row."""
        spec = SCHEMA.operations[operation]
        try:
            if refusal is not None:
                raise refusal
            entity = self._entity(operation, params, header)
            answer = self.service.handle(operation, entity, params)
            return {spec.result.name: answer.result, **answer.out}
        except TokenExpired as expired:
            row = {
                "Status": "Failure",
                "ErrorCode": expired.code,
                "ErrorMessage": expired.message,
                "HasExpired": expired.has_expired,
            }
        except Refused as refused:
            row = {
                "Status": refused.status,
                "ErrorCode": refused.code,
                "ErrorMessage": refused.message,
                "HasExpired": False,
            }
        requested = next(f for f in spec.params if f.type == "ArrayOfInt")
        count = max(1, len((params.get(requested.name) or {}).get("int") or []))
        out = {f.name: {"int": [-1] * count} for f in spec.out_params}
        return {spec.result.name: {"WSResultStatus": [row] * count}, **out}

    def serialize(self, request: Request, reply: dict[str, Any]) -> bytes:
        message = self.bindings[request.version].get(request.operation).output.serialize(**reply)
        return bytes(etree.tostring(message.content, xml_declaration=True, encoding="utf-8"))
