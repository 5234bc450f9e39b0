"""The sandbox's HTTP front: SOAP 1.1 at AccountsIQ's path, the WSDL at ``?wsdl``, and a small
admin API under ``/_sandbox/`` for fault injection and inspection (loopback only).

Requests are (de)serialised by zeep against the project's own WSDL, the same definition the
gateway uses, so the sandbox accepts exactly what AccountsIQ's interface allows. Hostile input is
refused before it is parsed: bodies over the size limit, DTDs and entities (no file or network is
ever read), malformed XML and undeserialisable values get a SOAP Fault, as ASMX does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import isodate
import zeep
import zeep.helpers
from lxml import etree
from zeep.wsdl import Document

from aiq_flows.gateway.schema import NAMESPACE, SCHEMA, V1_1, Field
from aiq_flows.gateway.wsdl import NAMES, packaged_wsdl_path, render_wsdl
from aiq_flows.sandbox import operations  # noqa: F401  (registers the handlers)
from aiq_flows.sandbox.faults import FaultPlan
from aiq_flows.sandbox.ledger import Ledger, default_seed
from aiq_flows.sandbox.service import (
    FAILED_OUT,
    Refused,
    Reply,
    SandboxService,
    TokenExpired,
    blank,
    default_value,
)

log = logging.getLogger(__name__)
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
DECLARED_CODES = frozenset(SCHEMA.enums["VisorExceptionCodes"])
MAX_BODY_BYTES = 16 * 1024 * 1024
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=True
)


def _is_bool(text: str) -> bool:
    if text.strip() not in ("true", "false", "1", "0"):
        raise ValueError(text)
    return True


_PARSE_CHECKS: dict[str, Any] = {
    "int": int,
    "long": int,
    "short": int,
    "decimal": Decimal,
    "double": float,
    "boolean": _is_bool,
    "dateTime": isodate.parse_datetime,
}


def undeserialisable(element: etree._Element, fields: tuple[Field, ...]) -> str | None:
    """The first value .NET could not deserialise, if any. zeep logs and swallows such values
    (returning None); ASMX answers them with a SOAP Fault, so the sandbox checks them itself.
    Unknown elements are ignored, as XmlSerializer ignores them."""
    by_name = {f.name: f for f in fields}
    for child in element:
        spec = by_name.get(etree.QName(child).localname)
        if spec is None or child.get(XSI_NIL) == "true":
            continue
        check = _PARSE_CHECKS.get(spec.type)
        if check is not None:
            try:
                check(child.text or "")
            except (ValueError, ArithmeticError, isodate.ISO8601Error):
                return f"'{child.text}' is not a valid {spec.type} for {spec.name}"
        elif spec.type in SCHEMA.complex_types:
            problem = undeserialisable(child, SCHEMA.all_fields(spec.type))
            if problem:
                return problem
    return None


class SoapFault(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def fault_envelope(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body><soap:Fault>'
        f"<faultcode>soap:{code}</faultcode><faultstring>{escape(message)}</faultstring>"
        "<detail /></soap:Fault></soap:Body></soap:Envelope>"
    ).encode()


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
        self.binding = document.bindings[f"{{{NAMESPACE}}}{NAMES[version][1]}"]
        self.calls = calls
        self._calls_lock = threading.Lock()

    def operation_name(self, envelope: etree._Element) -> str:
        body = envelope.find(f"{{{SOAP_ENV}}}Body")
        if envelope.tag != f"{{{SOAP_ENV}}}Envelope" or body is None or len(body) == 0:
            raise SoapFault("Client", "The request is not a SOAP 1.1 envelope with a body.")
        name = etree.QName(body[0])
        known = (
            name.localname in SCHEMA.operations and self.version in SCHEMA.operations[name.localname].versions
        )
        if name.namespace != NAMESPACE or not known:
            raise SoapFault("Client", f"Server did not recognize the operation '{name.localname}'.")
        return name.localname

    def parse(self, body: bytes) -> tuple[str, etree._Element]:
        try:
            envelope = etree.fromstring(body, _PARSER)
        except etree.XMLSyntaxError as error:
            raise SoapFault("Client", f"There is an error in the XML document: {error}") from None
        if envelope.getroottree().docinfo.doctype:
            raise SoapFault("Client", "DTDs are not allowed in SOAP messages.")
        return self.operation_name(envelope), envelope

    def arguments(self, operation: str, envelope: etree._Element) -> dict[str, Any]:
        body = envelope.find(f"{{{SOAP_ENV}}}Body")[0]
        problem = undeserialisable(body, SCHEMA.operations[operation].params)
        if problem:
            raise SoapFault("Client", f"There is an error in the XML document: {problem}")
        try:
            for leaf in body.iter():
                # .NET reads an empty element as "" (absent or xsi:nil is null); zeep reads None.
                if len(leaf) == 0 and leaf.text is None and leaf.get(XSI_NIL) != "true":
                    leaf.text = ""
            # Parse the wrapper element itself: zeep's message deserialize unwraps single-part
            # bodies to their only value, and the handlers want every parameter by name.
            parsed = self.binding.get(operation).input.body.parse(body, self.types)
        except Exception as error:  # zeep raises ValueError, InvalidOperation, XMLParseError...
            raise SoapFault("Client", f"There is an error in the XML document: {error}") from None
        return dict(zeep.helpers.serialize_object(parsed, target_cls=dict) or {})

    def record_call(self, operation: str) -> None:
        with self._calls_lock:
            self.calls[operation] += 1

    @staticmethod
    def soap_header(envelope: etree._Element) -> dict[str, str | None]:
        """``AiqSoapHeader`` as a dict (empty when absent)."""
        header = envelope.find(f"{{{SOAP_ENV}}}Header/{{{NAMESPACE}}}AiqSoapHeader")
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
        except Refused as refusal:
            if refusal.code not in DECLARED_CODES:  # the sandbox may only say what its WSDL declares
                raise RuntimeError(f"{operation} refused with undeclared ErrorCode {refusal.code}") from None
            status.update(Status=refusal.status, ErrorCode=refusal.code, ErrorMessage=refusal.message)
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

    def serialize(self, operation: str, reply: dict[str, Any]) -> bytes:
        message = self.binding.get(operation).output.serialize(**reply)
        return bytes(etree.tostring(message.content, xml_declaration=True, encoding="utf-8"))


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, ledger: Ledger, token_ttl_seconds: float) -> None:
        super().__init__((host, port), SandboxHandler)
        self.ledger = ledger
        self.service = SandboxService(ledger, token_ttl_seconds)
        self.calls: Counter[str] = Counter()
        self.faults = FaultPlan()
        base = f"http://{host}:{self.server_address[1]}"
        # path (lower case, as IIS matches it) -> (endpoint, WSDL served at ?wsdl)
        self.endpoints = {
            path.lower(): (
                SoapEndpoint(self.service, version, self.calls),
                render_wsdl(base + path, version=version),
            )
            for version, (_, _, path) in NAMES.items()
        }

    def url_for(self, version: str = V1_1) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{NAMES[version][2]}"

    @property
    def url(self) -> str:
        return self.url_for(V1_1)


class SandboxHandler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes on a kept-alive connection; with Nagle on, the
    # client's delayed ACK stalls every answer by ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str = "text/xml; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload, default=str).encode(), "application/json")

    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                fault_envelope("Client", "The request body is too large."),
            )
            return None
        return self.rfile.read(length)

    # --- GET: WSDL and inspection ----------------------------------------------------------------

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        if url.path.lower() in self.server.endpoints and "wsdl" in {k.lower() for k in query}:
            self._send(HTTPStatus.OK, self.server.endpoints[url.path.lower()][1])
        elif url.path == "/_sandbox/faults":
            self._json(HTTPStatus.OK, self.server.faults.describe())
        elif url.path == "/_sandbox/calls":
            self._json(HTTPStatus.OK, dict(self.server.calls))
        elif url.path == "/_sandbox/trial-balance":
            entity = query.get("entity", [""])[0]
            balances = self.server.ledger.trial_balance(entity)
            self._json(HTTPStatus.OK, {code: str(amount) for code, amount in balances.items()})
        elif url.path == "/_sandbox/documents":
            entity = query.get("entity", [""])[0]
            reference = query.get("external_reference", [None])[0]
            self._json(HTTPStatus.OK, self.server.ledger.documents(entity, reference))
        elif url.path == "/_sandbox/health":
            self._json(HTTPStatus.OK, {"status": "ok"})
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

    # --- POST: SOAP and fault control ------------------------------------------------------------

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            return
        if url.path == "/_sandbox/faults":
            request = json.loads(body or b"{}")
            self.server.faults.configure(request.get("rules", []), int(request.get("seed", 0)))
            self._json(HTTPStatus.OK, self.server.faults.describe())
        elif url.path == "/_sandbox/tokens/expire":
            self.server.service.expire_tokens()
            self._json(HTTPStatus.OK, {"expired": True})
        elif url.path == "/_sandbox/calls/reset":
            self.server.calls.clear()
            self._json(HTTPStatus.OK, {})
        elif url.path.lower() in self.server.endpoints:
            self._soap(self.server.endpoints[url.path.lower()][0], body)
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

    def do_DELETE(self) -> None:
        if urlsplit(self.path).path == "/_sandbox/faults":
            self.server.faults.clear()
            self._json(HTTPStatus.OK, [])
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

    def _soap(self, endpoint: SoapEndpoint, body: bytes) -> None:
        faults = self.server.faults
        try:
            operation, envelope = endpoint.parse(body)
        except SoapFault as fault:
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, fault_envelope(fault.code, str(fault)))
            return
        endpoint.record_call(operation)
        delay = faults.latency_seconds(operation)
        if delay:
            time.sleep(delay)
        error = faults.fire("http_error", operation)
        if error:
            self._send(error.status, b"Service Unavailable", "text/plain")
            return
        limited = faults.fire("rate_limit", operation)
        if limited and endpoint.version == V1_1:
            self._send(HTTPStatus.TOO_MANY_REQUESTS, b"Too Many Requests", "text/plain")
            return
        try:
            params = endpoint.arguments(operation, envelope)
            header = endpoint.soap_header(envelope)
            if faults.fire("expire_token", operation):
                self.server.service.expire_tokens(params.get("token") or header.get("AccessToken"))
            refusal = (
                Refused(
                    "OAUTH_INTEGRATION_APPS_TOO_MANY_API_CALLS", "Too many API calls; slow down and retry."
                )
                if limited
                else None
            )
            with self.server.ledger.lock:
                reply = endpoint.reply(operation, params, header, refusal)
            payload = endpoint.serialize(operation, reply)
        except SoapFault as fault:
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, fault_envelope(fault.code, str(fault)))
            return
        except Exception:
            log.exception("sandbox failed on %s", operation)
            self._send(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                fault_envelope("Server", "Server was unable to process request."),
            )
            return
        if faults.fire("drop_response", operation):
            # The work is committed; the caller never hears about it.
            self.close_connection = True
            return
        self._send(HTTPStatus.OK, payload)


def open_ledger(db_path: str | Path, *, fresh: bool) -> Ledger:
    path = Path(db_path)
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(path)
    if not ledger.is_seeded():
        ledger.seed(default_seed(), blank("Customer"))
    return ledger


def make_server(
    host: str, port: int, db_path: str | Path, *, token_ttl_seconds: float = 1200.0, fresh: bool = True
) -> SandboxServer:
    return SandboxServer(host, port, open_ledger(db_path, fresh=fresh), token_ttl_seconds)
