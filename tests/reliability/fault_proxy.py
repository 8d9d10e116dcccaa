"""A TCP proxy on loopback that puts network faults in front of any sandbox.

The sandboxes answer with HTTP-level faults of their own (429, 503, bodies cut short);
what they cannot do uniformly is misbehave at the TCP level. This proxy can, for every
connector alike: reset the next connections (RST on accept), or hold each answer back
(a slow LMS or HRIS, which a client with a short timeout sees as a read timeout).

    with FaultProxy(sandbox_port) as proxy:
        proxy.reset_next(2)
        proxy.delay = 1.0
        url = f"http://127.0.0.1:{proxy.port}"
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading


class FaultProxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.upstream_port = upstream_port
        self.port = 0
        self.delay = 0.0  # seconds before each chunk of an answer is passed on
        self.resets = 0  # connections reset on accept so far
        self._reset_left = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy",
                                        daemon=True)
        self._server: asyncio.Server | None = None

    def reset_next(self, count: int) -> None:
        with self._lock:
            self._reset_left += count

    def clear(self) -> None:
        with self._lock:
            self._reset_left = 0
        self.delay = 0.0

    def _take_reset(self) -> bool:
        with self._lock:
            if self._reset_left > 0:
                self._reset_left -= 1
                self.resets += 1
                return True
            return False

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    delayed: bool) -> None:
        try:
            while chunk := await reader.read(65536):
                if delayed and self.delay:
                    await asyncio.sleep(self.delay)  # the fault itself, not synchronisation
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._take_reset():
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        await asyncio.gather(self._pipe(reader, up_writer, False),
                             self._pipe(up_reader, writer, True))

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, self.host, 0), self._loop)
        self._server = started.result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
