"""A small HTTP/1.1 listener on asyncio streams, for webhooks and /metrics.

It runs on the event loop that runs the scheduler (the console's, or `serve`'s), so an
accepted event reaches the dispatcher without crossing threads. It is deliberately
small: one request per connection, a Content-Length body with a size limit, a read
timeout, no chunked uploads. Put a TLS-terminating proxy in front for public traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024
READ_TIMEOUT_SECONDS = 10.0
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
                 max_body: int = MAX_BODY_BYTES) -> None:
        self.host, self.port = host, port
        self.handler = handler
        self.max_body = max_body
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> tuple[str, int]:
        """Listen; returns the bound (host, port), e.g. the free port picked for 0."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  limit=MAX_HEADER_BYTES)
        sock = self._server.sockets[0].getsockname()
        self.port = sock[1]
        return sock[0], sock[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def wait_closed(self) -> None:
        if self._server is not None:
            self._server.close()
            # Connections in flight finish on their own (each has a read timeout).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), READ_TIMEOUT_SECONDS)
            self._server = None

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
