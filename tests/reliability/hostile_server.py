"""A hostile HTTP server on loopback: every request gets the same answer, which can be
huge (streamed, never held whole), dripped one byte at a time, or a redirect.

The sandboxes serve each connector's real wire shape and take fault answers of their own
(used for wrong types, wrong ids, redirects and endless pages); what they cannot do is
send an answer slowly or without end. This server can, for any connector alike:

    with HostileServer(drip(b'{"employees": []}', every=0.05)) as server:
        url = server.base_url

``relay(upstream, change)`` answers as the sandbox at ``upstream`` would, with one thing
changed: each request is passed on, and ``change`` rewrites the real answer (an id of the
wrong type, another person's id, a next link that never ends).

The drip sleeps in the server's own thread: that is the attack, not synchronisation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx


@dataclass
class Hostile:
    """One answer: a status, headers, and the body as chunks with a pause before each."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Callable[[], Iterator[bytes]] = lambda: iter(())
    pause: float = 0.0
    length: int | None = None  # Content-Length to declare (None: close-delimited)


def drip(body: bytes, every: float) -> Hostile:
    """The body one byte at a time, ``every`` seconds apart."""
    return Hostile(200, {"Content-Type": "application/json"},
                   lambda: (body[i:i + 1] for i in range(len(body))), every, len(body))


def endless(prefix: bytes, size: int, declare: bool = True) -> Hostile:
    """``prefix`` then spaces up to ``size`` bytes (valid JSON whitespace after a value
    would still be refused by size, never by syntax), in 64 KiB chunks."""
    block = b" " * 65536

    def chunks() -> Iterator[bytes]:
        yield prefix
        left = size - len(prefix)
        while left > 0:
            yield block[:min(left, len(block))]
            left -= len(block)

    return Hostile(200, {"Content-Type": "application/json"}, chunks, 0.0,
                   size if declare else None)


# What a relay's ``change`` gets and gives: (method, path, status, headers, body).
Exchange = tuple[str, str, int, dict[str, str], bytes]
Answerer = Callable[[str, str, dict[str, str], bytes], Hostile]


def relay(upstream: str, change: Callable[[Exchange], Exchange]) -> Answerer:
    """Pass each request on to ``upstream`` (its origin: the path is the request's) and
    answer with ``change`` of its answer."""
    parts = urlsplit(upstream)
    origin = f"{parts.scheme}://{parts.netloc}"
    client = httpx.Client(base_url=origin, timeout=10)

    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Hostile:
        sent = {k: v for k, v in headers.items()
                if k.lower() not in ("host", "content-length", "connection")}
        real = client.request(method, path, headers=sent, content=body)
        # Links the sandbox writes (next pages) point at the relay, as a server's would.
        own = f"http://{headers.get('Host') or headers.get('host')}"
        kept = {k: v.replace(origin, own) for k, v in real.headers.items()
                if k.lower() not in ("content-length", "content-encoding",
                                     "transfer-encoding", "connection")}
        body = real.content.replace(origin.encode(), own.encode())
        _, _, status, out_headers, out_body = change(
            (method, path, real.status_code, kept, body))
        return Hostile(status, out_headers, lambda: iter((out_body,)), 0.0, len(out_body))

    return answer


class HostileServer:
    def __init__(self, answer: Hostile | Answerer) -> None:
        self.answer = answer
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.sent = 0  # body bytes written, all requests
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return None

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                sent = self.rfile.read(length) if length else b""
                server.requests.append((self.command, self.path, dict(self.headers)))
                answer = server.answer
                if not isinstance(answer, Hostile):
                    answer = answer(self.command, self.path, dict(self.headers), sent)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if answer.length is not None:
                    self.send_header("Content-Length", str(answer.length))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.flush()
                try:
                    for chunk in answer.chunks():
                        if answer.pause:
                            time.sleep(answer.pause)  # the drip itself
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        server.sent += len(chunk)
                except OSError:
                    pass  # the client gave up: that is the point
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True,
                                        name="hostile-server")

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)
