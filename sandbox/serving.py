"""Serve an ASGI app on loopback from a background thread (uvicorn, HTTP/1.1).

Synchronous test code and an asyncio client in the main thread can both talk to it;
start() returns once the socket listens, or raises with the reason.
"""

from __future__ import annotations

import threading
from typing import Any

import uvicorn

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0


class _Server(uvicorn.Server):
    """uvicorn.Server that signals when startup has finished, successfully or not."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.startup_done = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            # A failed bind ends in sys.exit() inside startup(); still wake the waiter.
            self.startup_done.set()


class LoopbackServer:
    def __init__(self, app: Any, name: str, host: str = HOST, port: int = 0,
                 lifespan: str = "on") -> None:
        self.name = name
        self._config = uvicorn.Config(
            app, host=host, port=port, interface="asgi3", http="h11", ws="none",
            lifespan=lifespan, access_log=False, log_config=None, log_level="warning")
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        """Serving (the thread has not ended on its own)."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> tuple[str, int]:
        """Start serving; returns the (host, port) it listens on."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already started")
        server = _Server(self._config)
        thread = threading.Thread(target=server.run, name=self.name, daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        if not server.startup_done.wait(START_TIMEOUT_SECONDS):
            self.stop()
            raise RuntimeError(f"{self.name} did not start within {START_TIMEOUT_SECONDS:g}s")
        if not server.started:
            self.stop()
            raise RuntimeError(f"{self.name} failed to start on {self._config.host}:"
                               f"{self._config.port} (see the uvicorn error above)")
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        return host, port

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(STOP_TIMEOUT_SECONDS)
        if thread.is_alive():
            server.force_exit = True
            thread.join(STOP_TIMEOUT_SECONDS)


class LoopbackSandbox:
    """What the sandboxes share: a LoopbackServer in ``_server``, a context manager."""

    _server: LoopbackServer

    def start(self) -> LoopbackSandbox:
        raise NotImplementedError

    def stop(self) -> None:
        self._server.stop()

    @property
    def alive(self) -> bool:
        return self._server.alive

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AppSandbox(LoopbackSandbox):
    """A sandbox whose ASGI ``app`` takes a ``fault`` hook (tests and the demo inject error
    shapes through it) and records the ``requests`` it saw."""

    app: Any

    @property
    def fault(self) -> Any:
        return self.app.fault

    @fault.setter
    def fault(self, value: Any) -> None:
        self.app.fault = value

    @property
    def requests(self) -> list[Any]:
        """Every request seen so far, in the form the app records."""
        return self.app.requests


def run_from_command_line(sandbox: LoopbackSandbox, parser: Any,
                          announce: Any) -> None:
    """`python -m rostersync.sandbox.X` after its arguments are parsed: start (a failure is one line
    and exit 1), print ``announce(sandbox)``, serve until Ctrl+C or SIGTERM."""
    try:
        sandbox.start()
    except RuntimeError as exc:
        parser.exit(1, f"{exc}\n")
    serve_in_foreground(sandbox, announce(sandbox))


def serve_in_foreground(sandbox: LoopbackSandbox, announce: str) -> None:
    """`python -m rostersync.sandbox.X`: print where it listens, run until Ctrl+C or SIGTERM."""
    import signal

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        print(announce, flush=True)
        # Short waits: the loop also ends if the server thread dies on its own.
        while not stop.wait(0.5) and sandbox.alive:
            pass
    finally:
        sandbox.stop()
