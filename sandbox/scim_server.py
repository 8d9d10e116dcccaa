"""A real SCIM 2.0 server on loopback, for tests, the demo and benchmarks.

It is scim2-server's ASGI application over in-memory storage, served by uvicorn
(h11, HTTP/1.1) in a background thread, so synchronous test code and an asyncio
client in the main thread can both talk to it.

    with ScimSandbox(token="t") as lms:
        lms.base_url  # "http://127.0.0.1:PORT/v2"

Foreground, for the demo: ``python -m rostersync.sandbox.scim_server --port 8080 --token t``.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

from scim2_models import AuthenticationScheme, External, Reference, UnauthorizedException
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.utils import load_default_provider

from rostersync.sandbox.serving import HOST, LoopbackSandbox, LoopbackServer, run_from_command_line

# A fault injector: (method, path) -> (status, headers, body) to answer instead of the
# SCIM server, a number of seconds to delay it, "reset-before" / "reset-after" to reset
# the connection, or None to let the request through. One with `wants_body = True` is
# called as (method, path, body).
Fault = Callable[..., "tuple[int, dict[str, str], bytes] | float | str | None"]
RESET_BEFORE, RESET_AFTER = "reset-before", "reset-after"

# Announced in /ServiceProviderConfig so that 401 answers carry a
# `WWW-Authenticate: Bearer` challenge, as RFC 7644 §2 asks.
BEARER_SCHEME = AuthenticationScheme(
    type=AuthenticationScheme.Type.oauthbearertoken,
    name="bearer_token",
    description="Static bearer token",
    spec_uri=Reference[External]("https://datatracker.ietf.org/doc/html/rfc6750"),
)


_providers: dict[bool, Any] = {}
_providers_lock = threading.Lock()


def _provider(*, bearer: bool) -> Any:
    """The default SCIM provider, built once per process (and per auth scheme). Building
    it makes pydantic models from the RFC schemas, which parses source code with `ast`;
    on CPython 3.11 that is not safe beside another thread doing the same, and it is slow,
    so sandboxes share one (a provider is immutable; storage stays per sandbox)."""
    with _providers_lock:
        if bearer not in _providers:
            provider = load_default_provider()
            if bearer and provider.config is not None:
                provider.config.authentication_schemes = [BEARER_SCHEME]
            _providers[bearer] = provider
        return _providers[bearer]


class BearerTokenApp(ASGIApplication):
    """scim2-server's ASGI app that refuses requests without ``Bearer <token>``.

    Without a token every request is accepted. /ServiceProviderConfig is always
    open (scim2-server skips check_auth for it, per RFC 7643 §5).
    """

    def __init__(self, token: str | None = None) -> None:
        super().__init__(AsyncInMemoryStorage(), _provider(bearer=token is not None))
        self._expected = None if token is None else f"Bearer {token}".encode()

    def check_auth(self, request: ScimRequest) -> None:
        if self._expected is None:
            return
        given = (request.header("Authorization") or "").encode()
        # Constant-time compare: this sandbox also backs benchmarks and demos.
        if not hmac.compare_digest(given, self._expected):
            raise UnauthorizedException


async def _read_body(receive: Any) -> bytes:
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


def _replay(body: bytes) -> Any:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _discard(_message: dict[str, Any]) -> None:
    return None


def _scim_error(status: int, body: bytes) -> Any:
    """A refusal's body as the SCIM error an operation's response carries."""
    try:
        return json.loads(body)
    except ValueError:
        return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": str(status), "detail": body.decode("utf-8", "replace")}


async def _capture(app: Any, scope: dict[str, Any], body: bytes) -> tuple[int, list, bytes]:
    """(status, headers, body) of ``app``'s answer to a request with ``body``."""
    status, headers, chunks = 500, [], []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    headers_in = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
    await app({**scope, "headers": [*headers_in, (b"content-length", str(len(body)).encode())]},
              _replay(body), send)
    return status, headers, b"".join(chunks)


def _reset(send: Any) -> None:
    """Drop the client's connection with a TCP reset (RST), as a crashing LMS node or a
    load balancer does. uvicorn's ``send`` is a bound method of the request cycle, which
    holds the connection's transport; SO_LINGER 0 turns the close into a reset."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("this ASGI server does not expose the connection to reset")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    cycle.disconnected = True  # so uvicorn does not log that no response was started


class ScimSandbox(LoopbackSandbox):
    """A scim2-server on 127.0.0.1 in a background thread; a context manager."""

    def __init__(self, token: str | None = None, port: int = 0, host: str = HOST,
                 on_request: Callable[[str, str], None] | None = None,
                 fault: Fault | None = None) -> None:
        self.token = token
        self.app = BearerTokenApp(token)
        self.on_request = on_request
        self.fault = fault
        self._server = LoopbackServer(self._serve, "scim-sandbox", host, port)
        self.base_url = ""

    async def _serve(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # A hook that tests use to act at a precise request (e.g. kill a client mid-run).
        if scope["type"] == "http":
            if self.on_request is not None:
                self.on_request(scope["method"], scope["path"])
            if self.fault is not None:
                if getattr(self.fault, "wants_body", False):
                    # Body-aware faults (refuse one userName on create) read the request
                    # first; the SCIM app then gets the same bytes.
                    body = await _read_body(receive)
                    injected = self.fault(scope["method"], scope["path"], body)
                    receive = _replay(body)
                else:
                    injected = self.fault(scope["method"], scope["path"])
                if injected == RESET_BEFORE:
                    _reset(send)
                    return
                if injected == RESET_AFTER:
                    # The LMS acts on the request; its answer is lost with the connection.
                    await self._forward(scope, receive, _discard)
                    _reset(send)
                    return
                if isinstance(injected, int | float):
                    await asyncio.sleep(injected)  # a slow LMS: answer, but late
                elif injected is not None:
                    status, headers, body = injected
                    await send({"type": "http.response.start", "status": status,
                                "headers": [(k.encode(), v.encode())
                                            for k, v in headers.items()]})
                    await send({"type": "http.response.body", "body": body})
                    return
                await self._forward(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _forward(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The request to the SCIM server; a /Bulk request with the fault plan's refusals
        applied to its operations (also when its answer is then lost)."""
        refusal = getattr(self.fault, "refusal", None)
        if refusal is not None and scope["method"] == "POST" and scope["path"].endswith("/Bulk"):
            await self._bulk_with_refusals(scope, receive, send, refusal)
        else:
            await self.app(scope, receive, send)

    async def _bulk_with_refusals(self, scope: dict[str, Any], receive: Any, send: Any,
                                  refusal: Callable[[str, str, bytes], Any]) -> None:
        """A /Bulk request whose operations the fault plan refuses one by one (RFC 7644
        §3.7.3: each operation has its own status): the refused ones are answered here,
        the rest go to the SCIM server as one request, and the answers are merged in the
        request's order."""
        body = await _read_body(receive)
        try:
            request = json.loads(body)
            operations = list(request["Operations"])
        except (ValueError, KeyError, TypeError):
            await self.app(scope, _replay(body), send)  # the server says what is wrong
            return
        prefix = scope["path"].rsplit("/Bulk", 1)[0]
        refused: dict[int, Any] = {}
        for i, op in enumerate(operations):
            data = json.dumps(op.get("data") or {}).encode()
            answer = refusal(str(op.get("method", "")).upper(), prefix + str(op.get("path", "")),
                             data)
            if answer is not None:
                refused[i] = answer
        if not refused:
            await self.app(scope, _replay(body), send)
            return
        kept = [op for i, op in enumerate(operations) if i not in refused]
        answers: list[Any] = []
        status, headers = 200, [(b"content-type", b"application/scim+json")]
        if kept:
            captured = await _capture(self.app, scope, json.dumps(
                {**request, "Operations": kept}).encode())
            status, headers = captured[0], captured[1]
            answers = list(json.loads(captured[2]).get("Operations", []))
        merged, served = [], iter(answers)
        for i, op in enumerate(operations):
            if i in refused:
                code, _headers, error = refused[i]
                merged.append({"method": op.get("method"), "bulkId": op.get("bulkId"),
                               "status": str(code), "response": _scim_error(code, error)})
            else:
                merged.append(next(served, None))
        out = json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"],
                          "Operations": [m for m in merged if m is not None]}).encode()
        headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})

    @property
    def storage(self) -> AsyncInMemoryStorage:
        """The in-memory store, for tests that want to inspect or reset it."""
        return self.app.storage  # type: ignore[return-value]

    def start(self) -> ScimSandbox:
        host, port = self._server.start()
        self.base_url = f"http://{host}:{port}/v2"
        return self


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a SCIM 2.0 sandbox LMS on loopback.")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    parser.add_argument("--token", default=None, help="require this static bearer token")
    args = parser.parse_args(argv)
    lms = ScimSandbox(token=args.token, port=args.port)
    run_from_command_line(lms, parser, lambda lms: lms.base_url)


if __name__ == "__main__":
    main()
