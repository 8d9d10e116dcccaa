"""Helpers for the web console's tests and screenshot: start the real `rostersync console
--web` in a process of its own, and talk to it as textual-serve's page does (a websocket
carrying the terminal's bytes one way and keystrokes the other), or through a headless
Chromium (tests/chromium.py).

Waiting is on events with a deadline (a line printed, a frame received), never a sleep.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
# Escape sequences of a terminal stream: CSI (colours, cursor moves, modes), OSC (titles,
# clipboard), charset selection and the two-byte ones. A cursor move becomes a line break
# so that text from two places on the screen never reads as one phrase.
_ESCAPES = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
                      r"|\x1b[()][0-9A-Za-z]|\x1b[=>NOM78]")
_SPACES = re.compile(r"[ \u00a0]+")
STARTUP_SECONDS = 60.0
SCREEN_SECONDS = 60.0


def not_shown(text: str, phrases: tuple[str, ...], seconds: float, where: str
              ) -> AssertionError:
    """The failure of a wait for ``phrases``: what is missing and the last lines shown."""
    missing = [p for p in phrases if p not in text]
    lines = dict.fromkeys(line.strip() for line in text.splitlines())
    shown = "\n".join(line for line in lines if line)[-3000:]
    return AssertionError(f"not on the {where} after {seconds:.0f} s: {missing}; the "
                          f"{where}'s last lines:\n{shown}")


def screen_text(stream: bytes) -> str:
    """The words a terminal stream writes, one screen run per line, runs of spaces as
    one space (a figure right-aligned in its panel reads "held 30")."""
    text = _ESCAPES.sub(lambda m: "\n" if m.group().endswith(("H", "f")) else "",
                        stream.decode("utf-8", "replace"))
    return _SPACES.sub(" ", text)


@contextmanager
def web_console(config: Path, *flags: str, env: dict[str, str] | None = None
                ) -> Iterator[str]:
    """`rostersync console --web` on a free loopback port; yields its URL (ending in /).
    Stopped with SIGTERM, as a service manager stops it."""
    argv = [sys.executable, "-m", "rostersync.console.cli", "console", "--web",
            "--web-listen", "127.0.0.1:0", "--config", str(config), *flags]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, **(env or {})})
    try:
        yield _announced_url(process)
    except BaseException:
        _stop(process)
        raise
    code, output = _stop(process)
    # Stopped with its sessions open, it exits 0 and says nothing alarming.
    assert code == 0 and "Traceback" not in output, (code, output[-3000:])


def _stop(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    """SIGTERM, as a service manager stops it; its exit code and what it wrote after the
    announced line."""
    process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return process.returncode, (out + err).decode(errors="replace")


def _announced_url(process: subprocess.Popen[bytes]) -> str:
    """The URL from the line the server prints once it listens."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=STARTUP_SECONDS):
            raise AssertionError("rostersync console --web printed nothing in "
                                 f"{STARTUP_SECONDS:.0f} s")
    line = process.stdout.readline().decode()
    found = re.search(r"at (http://\S+/) ", line)
    if found is None:
        process.wait(timeout=30)
        assert process.stderr is not None
        raise AssertionError(f"no URL announced: {line!r}; stderr: "
                             f"{process.stderr.read().decode()!r}")
    return found.group(1)


class Session:
    """One browser session's websocket, spoken as textual-serve's page speaks it."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.stream = b""

    async def press(self, *keys: str) -> None:
        for key in keys:
            await self.ws.send_str(json.dumps(["stdin", key]))

    async def until(self, *phrases: str, since: int = 0,
                    seconds: float = SCREEN_SECONDS) -> str:
        """Read frames until every phrase is on screen (in what arrived after byte
        ``since``); returns that text. Fails naming what is missing."""
        deadline = time.monotonic() + seconds
        while True:
            text = screen_text(self.stream[since:])
            if all(p in text for p in phrases):
                return text
            left = deadline - time.monotonic()
            if left <= 0:
                raise not_shown(text, phrases, seconds, "screen")
            try:
                message = await asyncio.wait_for(self.ws.receive(), left)
            except TimeoutError:
                continue
            if message.type == aiohttp.WSMsgType.BINARY:
                self.stream += message.data
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                  aiohttp.WSMsgType.ERROR):
                raise AssertionError(f"the session closed while waiting for {phrases}: "
                                     f"{screen_text(self.stream)[-2000:]}")


async def open_session(http: aiohttp.ClientSession, url: str, size: tuple[int, int],
                       origin: str | None = None) -> Session:
    width, height = size
    headers = {"Origin": origin} if origin is not None else {}
    ws = await http.ws_connect(f"{url.replace('http', 'ws', 1)}ws?width={width}"
                               f"&height={height}", headers=headers)
    await ws.send_str(json.dumps(["resize", {"width": width, "height": height}]))
    return Session(ws)
