"""textual-serve's server, fitted for `rostersync console --web`.

What changes from the stock server, and why:
- it listens on a socket bound before it starts, so port 0 works and the address it
  prints is the one it listens on, printed only once it is listening;
- a websocket whose Origin is not the console's own address is refused: any web page the
  operator visits could otherwise open the console's websocket on 127.0.0.1 and read HR
  data (cross-site websocket hijacking, DNS rebinding);
- its log lines are plain: the stock handler prints a failing frame's local variables,
  and a session's environment (which carries the connectors' secrets) is one of them;
- no banner: one line says where the console is and in which mode.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import sys
from urllib.parse import urlsplit

from aiohttp import web
from textual_serve.server import Server

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# Open browser sessions get this long to close when the server is stopped.
SHUTDOWN_SECONDS = 3.0


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(public_url: str, bound_host: str, port: int) -> frozenset[str]:
    """The page's own origin; on loopback, also the other names of the same address."""
    origins = {origin_of(public_url)}
    if bound_host in ("127.0.0.1", "localhost", "::1"):
        origins |= {f"http://{name}:{port}" for name in LOOPBACK_HOSTS}
    return frozenset(origins)


class ConsoleServer(Server):
    def __init__(self, command: str, sock: socket.socket, *, public_url: str | None,
                 mode: str) -> None:
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        super().__init__(command, host=host, port=port, title="rostersync console",
                         public_url=(public_url or f"http://{shown}:{port}").rstrip("/"))
        self.sock = sock
        self.mode = mode
        self.origins = allowed_origins(self.public_url, host, port)

    def initialize_logging(self) -> None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("rostersync console --web: %(message)s"))
        log = logging.getLogger("textual-serve")
        log.handlers[:] = [handler]
        log.setLevel(logging.INFO)
        log.propagate = False

    async def on_startup(self, app: web.Application) -> None:
        """No banner (the stock one prints the session command)."""

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.on_cleanup.append(self._collect)
        return app

    async def _collect(self, app: web.Application) -> None:
        # The ended sessions' process transports are finalised while the loop still
        # runs; left to the collector after it closes, each prints a traceback on stop.
        gc.collect()

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        origin = request.headers.get("Origin")
        # Browsers always send Origin on a websocket; a client without one is not a web
        # page acting for someone, so there is no one to protect from it.
        if origin is not None and origin.lower() not in self.origins:
            raise web.HTTPForbidden(text=f"origin {origin} may not open this console\n")
        return await super().handle_websocket(request)

    def _announce(self, *_: object) -> None:
        print(f"rostersync console ({self.mode}) at {self.public_url}/ ; Ctrl+C stops it",
              flush=True)

    def serve(self, debug: bool = False) -> None:
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_exit)
        web.run_app(self._make_app(), sock=self.sock, handle_signals=False, loop=loop,
                    print=self._announce, shutdown_timeout=SHUTDOWN_SECONDS,
                    access_log=None)
