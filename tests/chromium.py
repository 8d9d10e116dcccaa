"""A headless Chromium driven over the DevTools protocol (a websocket, through aiohttp):
open a page, read what its websockets receive, type keys, take a screenshot.

Only loopback is reachable: every other address goes to a proxy that does not exist, so
a page cannot reach the network (textual-serve's page asks a font server for a font and
falls back to a local one when it cannot).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from tests.web_console import SCREEN_SECONDS, not_shown, screen_text

BROWSERS = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome")
START_SECONDS = 60.0
# What Input.dispatchKeyEvent needs for the keys the tests press besides characters.
NAMED_KEYS = {"enter": ("Enter", "Enter", 13, "\r"), "escape": ("Escape", "Escape", 27, "")}


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


class Page:
    """One tab: DevTools commands, and the bytes its websockets received."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.stream = b""
        self.frame = asyncio.Event()  # set whenever a websocket frame arrives
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data:
                future = self.pending.pop(data["id"])
                if "error" in data:
                    future.set_exception(RuntimeError(f"DevTools: {data['error']}"))
                else:
                    future.set_result(data.get("result", {}))
            elif data.get("method") == "Network.webSocketFrameReceived":
                response = data["params"]["response"]
                if response["opcode"] == 2:  # binary: the terminal's bytes
                    self.stream += base64.b64decode(response["payloadData"])
                    self.frame.set()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        key = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[key] = future
        await self.ws.send_str(json.dumps({"id": key, "method": method, "params": params}))
        return await asyncio.wait_for(future, START_SECONDS)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression,
                                 returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    async def until(self, *phrases: str, since: int = 0,
                    seconds: float = SCREEN_SECONDS) -> str:
        """Wait for frames until every phrase has reached the page (after byte
        ``since``); returns that text."""
        deadline = time.monotonic() + seconds
        while True:
            text = screen_text(self.stream[since:])
            if all(p in text for p in phrases):
                return text
            left = deadline - time.monotonic()
            if left <= 0:
                raise not_shown(text, phrases, seconds, "page")
            self.frame.clear()
            try:
                await asyncio.wait_for(self.frame.wait(), left)
            except TimeoutError:
                continue

    async def press(self, *keys: str) -> None:
        """Type into the focused element as a keyboard would."""
        for key in keys:
            if key in NAMED_KEYS:
                name, code, number, text = NAMED_KEYS[key]
            else:  # one character: it is its own key and text
                name, code, number, text = key, "", ord(key.upper()), key
            event = {"key": name, "code": code, "windowsVirtualKeyCode": number}
            await self.send("Input.dispatchKeyEvent", type="keyDown", text=text, **event)
            await self.send("Input.dispatchKeyEvent", type="keyUp", **event)

    async def screenshot(self) -> bytes:
        shot = await self.send("Page.captureScreenshot", format="png")
        return base64.b64decode(shot["data"])


@asynccontextmanager
async def headless_chromium(browser: str, size: tuple[int, int]) -> AsyncIterator[Page]:
    """A fresh profile, a window of ``size`` pixels, one blank tab."""
    width, height = size
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", "--remote-debugging-port=0", f"--user-data-dir={profile}",
            "--proxy-server=127.0.0.1:9", f"--window-size={width},{height}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        drain: asyncio.Task[None] | None = None
        try:
            port = await _devtools_port(process)
            # Chromium goes on writing to stderr: read it, or a full pipe stalls it.
            drain = asyncio.get_running_loop().create_task(_drain(process))
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/json/list") as answer:
                    targets = await answer.json()
                tab = next(t for t in targets if t["type"] == "page")
                async with http.ws_connect(tab["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    page = Page(ws)
                    await page.send("Network.enable")
                    await page.send("Page.enable")
                    try:
                        yield page
                    finally:
                        page.reader.cancel()
        finally:
            process.kill()
            await process.wait()
            if drain is not None:
                drain.cancel()


async def _devtools_port(process: asyncio.subprocess.Process) -> int:
    """Chromium prints the DevTools address on stderr once it listens."""
    assert process.stderr is not None
    seen: list[str] = []
    while True:
        line = await asyncio.wait_for(process.stderr.readline(), START_SECONDS)
        if not line:
            raise AssertionError("Chromium exited before it listened: " + "".join(seen))
        seen.append(line.decode(errors="replace"))
        found = re.search(rb"DevTools listening on ws://[^:]+:(\d+)/", line)
        if found:
            return int(found.group(1))


async def _drain(process: asyncio.subprocess.Process) -> None:
    assert process.stderr is not None
    while await process.stderr.read(65536):
        pass
