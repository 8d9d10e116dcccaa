"""Two `rostersync serve` nodes sharing one database, for the failover drills.

Each node is a child process with its own config (node name, lease) and its own TCP link
to the LMS (and, for PostgreSQL, to the database): the link counts what the node sent and
can be cut, so a test tells the two nodes' traffic apart and partitions one node alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rostersync.storage import lease
from rostersync.storage.audit_key import default_key_path
from rostersync.storage.store_factory import make_store
from rostersync.sync.config import load_config
from tests.scim_fixtures import SCIM_TOKEN
from tests.serve_process import ServeProcess
from tests.support import TOKEN_ENV, give_audit_key

POLL = 0.02  # how often a wait looks again; every wait has a deadline


def wait_for(check: Callable[[], Any], deadline: float, what: str, every: float = POLL
             ) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {deadline:g} s waiting for {what}")


class TcpLink:
    """A loopback TCP proxy: counts the bytes the client sent and when it last sent, and
    can be cut (every connection dropped, new ones refused) and mended."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.sent = 0
        self.chunks: list[bytes] = []  # what the client sent, in order
        self.last_sent_at: float | None = None  # time.time() of the last byte passed on
        self.cut = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="tcp-link")
        self._server: asyncio.Server | None = None

    def __enter__(self) -> TcpLink:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def sever(self) -> None:
        """The network between the node and its peer fails: nothing more gets through."""
        self.cut = True

        async def drop() -> None:
            for writer in list(self._writers):
                writer.transport.abort()

        asyncio.run_coroutine_threadsafe(drop(), self._loop).result(10)

    def mend(self) -> None:
        self.cut = False

    def sent_bytes(self) -> int:
        with self._lock:
            return self.sent

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    counted: bool) -> None:
        try:
            while chunk := await reader.read(65536):
                if self.cut:
                    break
                if counted:
                    with self._lock:
                        self.chunks.append(chunk)
                        self.sent += len(chunk)
                        self.last_sent_at = time.time()
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1",
                                                                 self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer, True),
                                 self._pipe(up_reader, writer, False))
        finally:
            self._writers.difference_update((writer, up_writer))


def node_config(base: Path, folder: Path, node: str, lms_url: str, lease_seconds: float,
                lms_base_url: str, *, database_url: str | None = None,
                concurrency: int | None = None) -> Path:
    """``base`` (a tests.support.write_config file) as node ``node``'s config: its own
    LMS link, [ha] on, a full run as soon as it leads."""
    text = base.read_text().replace(lms_base_url, lms_url)
    if database_url is not None:
        text = re.sub(r"(?m)^(path|url) = .*$", f'url = "{database_url}"', text, count=1)
    if concurrency is not None:
        text = text.replace("concurrency = 8", f"concurrency = {concurrency}")
    text += (f'\n[ha]\nenabled = true\nnode = "{node}"\nlease_seconds = {lease_seconds}\n'
             "\n[schedule]\nfull_every_minutes = 0.02\n")
    path = folder / f"{node}.toml"
    path.write_text(text, encoding="utf-8")
    # Every node signs the audit log with the same key (docs/ha.md): the base config's
    # key file, copied beside each node's config as an operator would.
    shared = give_audit_key(base)
    key = default_key_path(path)
    if not key.exists():
        with os.fdopen(os.open(key, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "wb") as f:
            f.write(shared.read_bytes())
    return path


class Node(ServeProcess):
    """One node: `rostersync serve` with the LMS token; its output's last 60 lines."""

    def __init__(self, name: str, config: Path) -> None:
        super().__init__(config, {TOKEN_ENV: SCIM_TOKEN}, name=name)

    def output(self, last: int | None = 60) -> str:
        return super().output(last)


@contextlib.contextmanager
def leader_and_standby(a_conf: Path, b_conf: Path,
                       on_leading: Callable[[Node], None] = lambda _node: None,
                       ) -> Iterator[tuple[Node, Node]]:
    """node-a started and leading (``on_leading`` called then, before node-b exists),
    node-b started and standing by; both stopped on the way out."""
    a = Node("node-a", a_conf)
    b = None
    try:
        wait_for(lambda: a.logged(event="leadership", state="leading"), 60,
                 f"node-a to lead\n{a.output()}")
        on_leading(a)
        b = Node("node-b", b_conf)
        wait_for(lambda: b.logged(event="leadership", state="standby"), 60,
                 f"node-b to stand by\n{b.output()}")
        yield a, b
    finally:
        a.stop()
        if b is not None:
            b.stop()


def leader_of(config: Path) -> lease.LeaseHolder | None:
    """The leader lease row as it stands (a fresh connection each time)."""
    store = make_store(load_config(config).database)
    try:
        return lease.last(store, "leader")
    finally:
        with contextlib.suppress(Exception):
            store.close()


def now_led_by(config: Path, node: str) -> lease.LeaseHolder | None:
    row = leader_of(config)
    if row is None or row.node != node or row.expires_at is None:
        return None
    return row if row.expires_at > datetime.now(UTC) else None
