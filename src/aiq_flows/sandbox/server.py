"""The sandbox's HTTP front, on FastAPI under uvicorn: SOAP 1.1 and 1.2 at AccountsIQ's paths, the
WSDL at ``?wsdl``, and a typed JSON admin API under ``/_sandbox/`` (fault injection and
inspection; its OpenAPI page is ``/_sandbox/docs``). Serve it on loopback only.

SOAP calls are answered one at a time on the event loop (the ledger is one SQLite file, and a hop
to a worker thread cost 10% of a small call's time); latency faults wait without blocking it, so
slow calls overlap as they would at AIQ. Hostile input is refused before it
is parsed: bodies over the size limit (HTTP 413), DTDs and entities (no file or network is ever
read), malformed XML and undeserialisable values (a SOAP Fault, as ASMX answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from aiq_flows.gateway.schema import V1_1
from aiq_flows.gateway.wsdl import NAMES, render_wsdl
from aiq_flows.sandbox import operations  # noqa: F401  (registers the handlers)
from aiq_flows.sandbox.faults import FaultPlan
from aiq_flows.sandbox.ledger import Ledger, default_seed
from aiq_flows.sandbox.service import Refused, SandboxService, blank
from aiq_flows.sandbox.soap import SoapEndpoint, SoapFault, version_for_content_type

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024 * 1024
KEEP_ALIVE_SECONDS = 120  # IIS's default connection timeout; clients keep their pools warm
GRACEFUL_SHUTDOWN_SECONDS = 10
ABORT = "aiq.sandbox.abort"
ADMIN = "/_sandbox"
RATE_LIMITED = Refused(
    "OAUTH_INTEGRATION_APPS_TOO_MANY_API_CALLS", "Too many API calls; slow down and retry."
)


class _AbortableHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol (its C parser; h11 costs a small call 5-8%), with a way for the
    app to drop a connection without answering.

    ASGI has no "abort"; the ``drop_response`` fault must look like a server that committed and
    then vanished (the client reads no status line at all), so each connection hands the app its
    transport's ``abort`` in the scope's extensions."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn writes a response's head and body separately; with Nagle on, the client's
        # delayed ACK stalls every answer by ~40 ms. asyncio sets TCP_NODELAY only on sockets
        # whose proto is IPPROTO_TCP, which a socket from create_server (proto 0) is not.
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        app = self.app

        async def with_abort(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})[ABORT] = transport.abort
            await app(scope, receive, send)

        self.app = with_abort


# --- the admin API's types --------------------------------------------------------------------------


class FaultRuleIn(BaseModel):
    """One fault rule (see ``aiq_flows.sandbox.faults``)."""

    kind: Literal["latency", "http_error", "expire_token", "drop_response", "rate_limit"]
    operation: str = Field("*", description="an operation name, or * for every call")
    rate: float = Field(1.0, ge=0, le=1, description="probability of firing on a matching call")
    count: int | None = Field(None, ge=0, description="fire at most this many times")
    latency_ms: int = Field(0, ge=0)
    status: int = Field(503, ge=400, le=599, description="HTTP status of an http_error")
    skip: int = Field(0, ge=0, description="let this many matching calls through first")


class FaultRuleState(FaultRuleIn):
    fired: int
    seen: int


class FaultPlanIn(BaseModel):
    rules: list[FaultRuleIn] = Field(default_factory=list)
    seed: int = Field(0, description="seeds the random draws of rules with rate < 1")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Expired(BaseModel):
    expired: bool


# --- the application ------------------------------------------------------------------------------


class SandboxState:
    """What every request shares: the ledger, the service, the call counts and the fault plan."""

    def __init__(self, ledger: Ledger, token_ttl_seconds: float) -> None:
        self.ledger = ledger
        self.service = SandboxService(ledger, token_ttl_seconds)
        self.calls: Counter[str] = Counter()
        self.faults = FaultPlan()
        # path (lower case, as IIS matches it) -> (API version, endpoint)
        self.endpoints = {
            path.lower(): (version, SoapEndpoint(self.service, version, self.calls))
            for version, (_, _, path) in NAMES.items()
        }
        self._wsdls: dict[tuple[str, str], bytes] = {}

    def wsdl(self, version: str, address: str) -> bytes:
        """The WSDL with the address the client used (ASMX writes the request's host into it)."""
        if (version, address) not in self._wsdls:
            self._wsdls[(version, address)] = render_wsdl(address, version=version)
        return self._wsdls[(version, address)]


def _xml(status: int, body: bytes, content_type: str, close: bool = False) -> Response:
    headers = {"Connection": "close"} if close else None
    return Response(body, status_code=status, media_type=content_type, headers=headers)


async def _read_body(request: Request) -> bytes | None:
    """The body, or None when it is over the limit (announced or streamed)."""
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > MAX_BODY_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class _AdminBodiesAreJson:
    """The admin API reads its bodies as JSON whatever their Content-Type says: scripts post with
    ``curl -d`` or urllib, which announce form data, and the API took them before it was typed."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(ADMIN + "/") and scope["method"] == "POST":
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


def create_app(state: SandboxState) -> FastAPI:
    app = FastAPI(
        title="aiq-sandbox",
        summary="A local AccountsIQ: SOAP 1.1 and 1.2 at AIQ's paths, and this admin API.",
        docs_url="/_sandbox/docs",
        redoc_url=None,
        openapi_url="/_sandbox/openapi.json",
    )
    app.add_middleware(_AdminBodiesAreJson)
    admin = ADMIN

    @app.get(f"{admin}/health", tags=["admin"])
    def health() -> Health:
        return Health()

    @app.get(f"{admin}/faults", tags=["faults"])
    def faults() -> list[FaultRuleState]:
        return [FaultRuleState(**rule) for rule in state.faults.describe()]

    @app.post(f"{admin}/faults", tags=["faults"])
    def set_faults(plan: FaultPlanIn) -> list[FaultRuleState]:
        """Replace the fault plan (rules fire in order; the first matching rule of a kind wins)."""
        state.faults.configure([rule.model_dump() for rule in plan.rules], plan.seed)
        return faults()

    @app.delete(f"{admin}/faults", tags=["faults"])
    def clear_faults() -> list[FaultRuleState]:
        state.faults.clear()
        return []

    @app.post(f"{admin}/tokens/expire", tags=["admin"])
    def expire_tokens() -> Expired:
        """Expire every 1.1 session token and 2.0 access token now."""
        state.service.expire_tokens()
        return Expired(expired=True)

    @app.get(f"{admin}/calls", tags=["inspection"])
    def calls() -> dict[str, int]:
        """SOAP calls received per operation since start (or the last reset)."""
        return dict(state.calls)

    @app.post(f"{admin}/calls/reset", tags=["inspection"])
    def reset_calls() -> dict[str, int]:
        state.calls.clear()
        return {}

    @app.get(f"{admin}/trial-balance", tags=["inspection"])
    def trial_balance(entity: str = Query(..., examples=["DEMO_UK"])) -> dict[str, str]:
        """Each GL account's balance in base currency (debit positive), as exact decimals."""
        return {code: str(amount) for code, amount in state.ledger.trial_balance(entity).items()}

    @app.get(f"{admin}/documents", tags=["inspection"])
    def documents(entity: str = Query(...), external_reference: str | None = None) -> list[dict[str, Any]]:
        """Posted transactions of an entity, optionally those with one external reference."""
        return list(state.ledger.documents(entity, external_reference))

    return app


class SandboxApp:
    """The ASGI application: AIQ's SOAP paths (matched case-insensitively, as IIS does) are
    answered here directly; everything else, the admin API included, goes to FastAPI."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.admin = create_app(state)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        found = self.state.endpoints.get(scope["path"].lower()) if scope["type"] == "http" else None
        if found is None:
            await self.admin(scope, receive, send)
            return
        request = Request(scope, receive)
        if request.method == "GET" and "wsdl" in {key.lower() for key in request.query_params}:
            address = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
            response = _xml(200, self.state.wsdl(found[0], address), "text/xml; charset=utf-8")
        elif request.method == "POST":
            response = await self._post(found[1], request)
        else:
            response = Response(b"not found", status_code=404, media_type="text/plain")
        await response(scope, receive, send)

    async def _post(self, endpoint: SoapEndpoint, request: Request) -> Response:
        body = await _read_body(request)
        if body is None:
            announced = version_for_content_type(request.headers.get("content-type"))
            fault = SoapFault("The request body is too large.", announced)
            return _xml(413, fault.envelope, announced.content_type, close=True)
        return await _soap_call(self.state, endpoint, request, body)


async def _soap_call(state: SandboxState, endpoint: SoapEndpoint, request: Request, body: bytes) -> Response:
    faults = state.faults
    try:
        call = endpoint.parse(body, request.headers.get("content-type"))
    except SoapFault as fault:
        return _xml(500, fault.envelope, fault.version.content_type)
    endpoint.record_call(call.operation)
    delay = faults.latency_seconds(call.operation)
    if delay:
        await asyncio.sleep(delay)
    error = faults.fire("http_error", call.operation)
    if error:
        return Response(b"Service Unavailable", status_code=error.status, media_type="text/plain")
    limited = faults.fire("rate_limit", call.operation)
    if limited and endpoint.version == V1_1:
        return Response(b"Too Many Requests", status_code=429, media_type="text/plain")

    def handle() -> bytes:
        params = endpoint.arguments(call)
        header = endpoint.soap_header(call)
        if faults.fire("expire_token", call.operation):
            state.service.expire_tokens(params.get("token") or header.get("AccessToken"))
        with state.ledger.lock:
            reply = endpoint.reply(call.operation, params, header, RATE_LIMITED if limited else None)
        return endpoint.serialize(call, reply)

    try:
        payload = handle()  # on the loop: see the module's docstring
    except SoapFault as fault:
        return _xml(500, fault.envelope, fault.version.content_type)
    except Exception:
        log.exception("sandbox failed on %s", call.operation)
        fault = SoapFault("Server was unable to process request.", call.version, sender=False)
        return _xml(500, fault.envelope, call.version.content_type)
    if faults.fire("drop_response", call.operation):
        # The work is committed; the caller never hears about it.
        abort: Callable[[], None] | None = request.scope.get("extensions", {}).get(ABORT)
        if abort is not None:
            abort()
            await asyncio.sleep(0)  # let the transport report the loss before the reply is dropped
            return Response(status_code=204)
        raise ConnectionAbortedError("drop_response needs the sandbox's own server (aiq-sandbox serve)")
    return _xml(200, payload, call.version.content_type)


# --- serving ----------------------------------------------------------------------------------------


class _Uvicorn(uvicorn.Server):
    """uvicorn, stopping on SIGINT/SIGTERM after the calls in flight, then exiting 0 as a stop that
    was asked for (uvicorn re-raises the signal once stopped, so the process would die of it)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class SandboxServer:
    """The sandbox on a bound socket: ``serve()`` in the foreground (SIGINT/SIGTERM stop it
    gracefully), or ``start()`` in a background thread and ``stop()``."""

    def __init__(self, host: str, port: int, ledger: Ledger, token_ttl_seconds: float) -> None:
        self.ledger = ledger
        self.state = SandboxState(ledger, token_ttl_seconds)
        self.app = SandboxApp(self.state)
        self.socket = socket.create_server((host, port), reuse_port=False)
        self.host, self.port = self.socket.getsockname()[:2]
        self._uvicorn = _Uvicorn(
            uvicorn.Config(
                self.app,
                http=_AbortableHttp,
                lifespan="off",
                proxy_headers=False,  # loopback only: no proxy to trust
                log_level="warning",
                access_log=False,
                timeout_keep_alive=KEEP_ALIVE_SECONDS,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def service(self) -> SandboxService:
        return self.state.service

    def url_for(self, version: str = V1_1) -> str:
        return f"http://{self.host}:{self.port}{NAMES[version][2]}"

    @property
    def url(self) -> str:
        return self.url_for(V1_1)

    def serve(self) -> None:
        self._uvicorn.run(sockets=[self.socket])

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self.serve, name="aiq-sandbox", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._uvicorn.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=GRACEFUL_SHUTDOWN_SECONDS + 5)
        self.socket.close()


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
