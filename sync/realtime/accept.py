"""Accepting connections for the HTTP listener, with a cap and without log floods.

Each open connection costs a file descriptor until its request is read (or its read
timeout ends it). A client that opens connections and sends nothing would otherwise
take every descriptor the process has, and then the database, the LMS client and the
accept itself fail with "Too many open files". So:

- at most ``cap`` connections are served at once; one more is accepted, answered
  ``503`` with ``Retry-After`` and closed at once (a sender retries; a slow client holds
  nothing);
- the cap never exceeds half the process's descriptor limit (``ulimit -n``), leaving the
  rest to the database, the LMS client and the answers of 503 themselves;
- an accept that fails (out of descriptors after all) is one log line, rate-limited by
  the caller's log, and accepting pauses until a connection closes (or a second passes)
  instead of spinning on a socket that stays readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import resource
import socket
from collections.abc import Awaitable, Callable
from typing import Any

BACKLOG = 128
RETRY_AFTER_SECONDS = 1
# An accept refused for want of resources is retried after a connection closes, or this.
ACCEPT_PAUSE_SECONDS = 1.0
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def connection_cap(configured: int, descriptor_limit: int | None) -> int:
    """The cap in force: the configured one, at most half the descriptor limit (None: no
    limit), and at least 1 (pure)."""
    if descriptor_limit is None:
        return max(1, configured)
    return max(1, min(configured, descriptor_limit // 2))


def descriptor_limit() -> int | None:
    """The process's soft limit on open files, or None when unlimited."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def busy_answer(reason: str) -> bytes:
    body = (b'{"error": "too many connections at once; retry in '
            + str(RETRY_AFTER_SECONDS).encode() + b' s"}')
    head = (f"HTTP/1.1 503 {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: {RETRY_AFTER_SECONDS}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode("latin-1") + body


class Acceptor:
    def __init__(self, serve: Callable[[socket.socket], Awaitable[None]], cap: int,
                 log: Callable[[dict[str, Any]], None], name: str, *, busy: bytes) -> None:
        self._serve = serve
        self.cap = connection_cap(cap, descriptor_limit())
        self._log = log
        self._name = name
        self._busy = busy
        self._sock: socket.socket | None = None
        self._task: asyncio.Task | None = None
        self._open: set[asyncio.Task] = set()
        self._closed_one = asyncio.Event()

    @property
    def open(self) -> int:
        return len(self._open)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        family, kind, proto, _name, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._task = asyncio.create_task(self._accept_loop(sock), name=f"{self._name}-accept")
        bound = sock.getsockname()
        return bound[0], bound[1]

    def close(self) -> None:
        """Stop accepting; connections in flight go on to their end."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def wait_idle(self, timeout: float) -> None:
        if self._open:
            await asyncio.wait(set(self._open), timeout=timeout)

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _peer = await loop.sock_accept(sock)
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    if exc.errno in (errno.EBADF, errno.EINVAL):
                        return  # the socket was closed under us: close() is stopping
                    continue  # the client went away between connect and accept
                self._log({"event": "listener_error", "listener": self._name,
                           "error": f"cannot accept a connection: {exc.strerror}; "
                                    f"{len(self._open)} open, the cap is {self.cap}"})
                await self._pause()
                continue
            if len(self._open) >= self.cap:
                self._refuse(conn)
                continue
            task = asyncio.create_task(self._one(conn))
            self._open.add(task)
            task.add_done_callback(self._closed)

    async def _one(self, conn: socket.socket) -> None:
        try:
            await self._serve(conn)
        finally:
            conn.close()

    def _closed(self, task: asyncio.Task) -> None:
        self._open.discard(task)
        self._closed_one.set()
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self._log({"event": "listener_error", "listener": self._name,
                       "error": f"{type(exc).__name__}: {exc}"})

    def _refuse(self, conn: socket.socket) -> None:
        # Non-blocking: a client that reads nothing must not hold the accept loop.
        with contextlib.suppress(OSError):
            conn.setblocking(False)
            conn.send(self._busy)
            conn.shutdown(socket.SHUT_WR)
            # Unread request bytes would turn the close into a reset that loses the 503.
            conn.recv(65536)
        conn.close()
        self._log({"event": "connection_refused", "listener": self._name,
                   "why": f"{self.cap} connections open, the cap"})

    async def _pause(self) -> None:
        self._closed_one.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed_one.wait(), ACCEPT_PAUSE_SECONDS)
