"""Salesforce's REST API over HTTPS on 127.0.0.1, answered by an in-memory org (`org`): the OAuth
token endpoint, SOQL `query` with `nextRecordsUrl` paging, `describe`, and sObject Collections
updates, with Salesforce's JSON shapes and errors (``[{"errorCode", "message"}]``, 401
INVALID_SESSION_ID, 403 REQUEST_LIMIT_EXCEEDED) and its ``Sforce-Limit-Info`` header.

HTTPS because the real client (simple-salesforce) only speaks HTTPS: the stand-in makes a
self-signed certificate for 127.0.0.1 at start, and a client trusts it through its CA bundle."""

from __future__ import annotations

import ipaddress
import json
import re
import ssl
import tempfile
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiq_flows.sandbox.salesforce.org import SalesforceFault, SalesforceOrg

_DATA = re.compile(r"^/services/data/v(?P<version>\d+\.\d+)(?P<rest>/.*)$")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)  # JSON numbers, as Salesforce writes them (a client may read them exactly)
    raise TypeError(type(value).__name__)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and localhost), valid for a day: (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "salesforce-stand-in.local")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "stand-in.crt", directory / "stand-in.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, message: str, *args: Any) -> None:  # quiet: tests read the org, not logs
        return

    def _send(self, status: int, payload: Any, limit_info: str | None = None) -> None:
        body = json.dumps(payload, default=_json_value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        if limit_info:
            self.send_header("Sforce-Limit-Info", limit_info)
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self, method: str) -> None:
        org, url = self.server.org, urlsplit(self.path)
        try:
            if url.path == "/services/oauth2/token" and method == "POST":
                form = {k: v[0] for k, v in parse_qs(self._body().decode()).items()}
                try:
                    self._send(HTTPStatus.OK, org.token(form, self.server.url))
                except SalesforceFault as fault:  # OAuth errors have their own shape
                    self._send(fault.status, {"error": fault.code, "error_description": fault.message})
                return
            match = _DATA.match(url.path)
            if match is None:
                raise SalesforceFault(404, "NOT_FOUND", "The requested resource does not exist")
            base, rest = f"/services/data/v{match['version']}", match["rest"].rstrip("/")
            body = self._body() if method == "PATCH" else b""
            if rest == "/query" and method == "GET":
                limit_info = org.authorize(self.headers.get("Authorization"), "query")
                options = self.headers.get("Sforce-Query-Options", "")
                size = re.search(r"batchSize=(\d+)", options)
                query = parse_qs(url.query).get("q", [""])[0]
                self._send(
                    HTTPStatus.OK, org.query(query, base, int(size.group(1)) if size else None), limit_info
                )
            elif (
                more := re.fullmatch(r"/query/(?P<locator>\w+)-(?P<position>\d+)", rest)
            ) and method == "GET":
                limit_info = org.authorize(self.headers.get("Authorization"), "queryMore")
                self._send(
                    HTTPStatus.OK, org.query_more(more["locator"], int(more["position"]), base), limit_info
                )
            elif (described := re.fullmatch(r"/sobjects/(?P<name>\w+)/describe", rest)) and method == "GET":
                limit_info = org.authorize(self.headers.get("Authorization"), "describe")
                self._send(HTTPStatus.OK, org.describe(described["name"]), limit_info)
            elif rest == "/composite/sobjects" and method == "PATCH":
                limit_info = org.authorize(self.headers.get("Authorization"), "composite/sobjects")
                try:
                    payload = json.loads(body or b"{}")
                except json.JSONDecodeError as error:
                    raise SalesforceFault(400, "JSON_PARSER_ERROR", str(error)) from None
                self._send(HTTPStatus.OK, org.update_collection(payload), limit_info)
            else:
                raise SalesforceFault(404, "NOT_FOUND", "The requested resource does not exist")
        except SalesforceFault as fault:
            self._send(fault.status, [{"message": fault.message, "errorCode": fault.code}])

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    org: SalesforceOrg
    url: str


class SalesforceStandIn:
    """The stand-in, serving `org` on 127.0.0.1 (a free port unless given) in a thread:
    `url` (the login and instance URL), `ca_file` (the certificate a client trusts)."""

    def __init__(
        self, org: SalesforceOrg | None = None, port: int = 0, directory: Path | None = None
    ) -> None:
        self.org = org or SalesforceOrg()
        self._directory = Path(directory or tempfile.mkdtemp(prefix="salesforce-stand-in-"))
        self._directory.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = make_certificate(self._directory)
        self.ca_file = str(cert_file)
        self._server = _Server(("127.0.0.1", port), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._server.org, self._server.url = self.org, self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> SalesforceStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
