"""A small HTTP/1.1 listener on asyncio streams, for webhooks and /metrics.

It runs on the event loop that runs the scheduler (the console's, or `serve`'s), so an
accepted event reaches the dispatcher without crossing threads. It is deliberately
small: one request per connection, a Content-Length body with a size limit, a read
timeout, no chunked uploads. Put a TLS-terminating proxy in front for public traffic.

It accepts connections itself (sync.realtime.accept) rather than through
asyncio.start_server, whose accept loop logs a traceback for every failed accept: with
few file descriptors, slow clients made thousands a second. Connections are capped; one
over the cap is answered 503 at once and closed, and an accept that fails is one
rate-limited log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rostersync.sync.realtime.accept import Acceptor, busy_answer

MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024
READ_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_CONNECTIONS = 64
REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized",
           404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
           411: "Length Required", 413: "Payload Too Large", 500: "Internal Server Error",
           503: "Service Unavailable"}


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HttpListener:
    def __init__(self, host: str, port: int, handler: Handler, *,
                 max_body: int = MAX_BODY_BYTES,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 log: Callable[[dict[str, Any]], None] | None = None,
                 name: str = "http") -> None:
        self.host, self.port = host, port
        self.handler = handler
        self.max_body = max_body
        self.log = log or (lambda _record: None)
        self._acceptor = Acceptor(self._connection, max_connections, self.log, name,
                                  busy=busy_answer(REASONS[503]))

    @property
    def max_connections(self) -> int:
        """The cap in force (the configured one, lowered to fit the descriptor limit)."""
        return self._acceptor.cap

    @property
    def open_connections(self) -> int:
        return self._acceptor.open

    async def start(self) -> tuple[str, int]:
        """Listen; returns the bound (host, port), e.g. the free port picked for 0."""
        host, port = await self._acceptor.start(self.host, self.port)
        self.port = port
        return host, port

    async def _connection(self, sock: socket.socket) -> None:
        reader, writer = await asyncio.open_connection(sock=sock, limit=MAX_HEADER_BYTES)
        await self._serve(reader, writer)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        self._acceptor.close()

    async def wait_closed(self) -> None:
        self._acceptor.close()
        # Connections in flight finish on their own (each has a read timeout).
        await self._acceptor.wait_idle(READ_TIMEOUT_SECONDS)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                request = await asyncio.wait_for(self._read(reader), READ_TIMEOUT_SECONDS)
                response = await self.handler(request)
            except _BadRequest as exc:
                response = Response(exc.status, _message(str(exc)))
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                return
            except asyncio.LimitOverrunError:
                response = Response(400, _message("request headers too large"))
            except Exception as exc:  # a bug must still answer, and be one log line
                self.log({"event": "listener_error", "error": f"{type(exc).__name__}: {exc}"})
                response = Response(500, _message("internal error; see the log"))
            head = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Status')}",
                    f"Content-Type: {response.content_type}",
                    f"Content-Length: {len(response.body)}", "Connection: close",
                    *(f"{k}: {v}" for k, v in response.headers.items())]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read(self, reader: asyncio.StreamReader) -> Request:
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(400, "malformed request line")
        method, target, _ = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest(400, "malformed header line")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise _BadRequest(411, "send a Content-Length, not a chunked body")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise _BadRequest(400, "Content-Length is not a number") from None
        if length < 0 or length > self.max_body:
            raise _BadRequest(413, f"the body is limited to {self.max_body} bytes")
        body = await reader.readexactly(length) if length else b""
        path, _, query = target.partition("?")
        return Request(method.upper(), path, query, headers, body)


def _message(text: str) -> bytes:
    import json

    return json.dumps({"error": text}).encode()
