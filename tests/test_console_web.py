"""`rostersync console --web`: the real command serves the console over a seeded database
on a free loopback port; a websocket client speaks textual-serve's page protocol (always),
and a headless Chromium loads the page itself (when Chromium is installed: Debian's
`chromium` package; nothing is installed at test time).

Each session is a console process of its own, with the real clock: the figures checked
are the status document's, computed over the same database.
"""

from __future__ import annotations

import socket
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from rostersync.console import web
from rostersync.console.cli import main
from rostersync.storage.db import Store
from rostersync.sync.config import load_config
from rostersync.sync.status import build_status
from tests.chromium import find_browser, headless_chromium
from tests.console_harness import Seeded, fresh_db
from tests.support import write_config
from tests.web_console import open_session, web_console

pytestmark = pytest.mark.anyio
SIZE = (160, 45)
# Resync is the dangerous key every person screen has, whatever the person's state.
REFUSED = "'Resync' is not available in read-only mode"
CONFIRM = "now: read their HR record and LMS account and"


@pytest.fixture
def world(seeded: Seeded, tmp_path: Path) -> Path:
    """A config over a private copy of the seeded database; returns the config's path."""
    db = fresh_db(seeded, tmp_path / "web")
    return write_config(db.parent, seeded.base_url, seeded.csv_path)


def live_figures(config_path: Path) -> list[str]:
    """What the dashboard must show, from the status document: the level, every reason
    that does not quote an age (an age can tick between here and the page), and the
    operations and drift counts as their panels write them."""
    store = Store(config_path.parent / "rostersync.db")
    try:
        doc = build_status(store, load_config(config_path), datetime.now(UTC))
    finally:
        store.close()
    reasons = [r for r in doc["reasons"] if " old)" not in r]
    return [doc["status"], *reasons, f"held {doc['ops']['held']}",
            f"failed {doc['ops']['failed']}", f"total {doc['drift_total']}"]


def runs_and_audit(config_path: Path) -> tuple[int, list[tuple[str, str]]]:
    """How many runs there are, and the audit log's (action, actor) pairs."""
    with sqlite3.connect(config_path.parent / "rostersync.db") as conn:
        runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        return runs, list(conn.execute("SELECT action, actor FROM audit ORDER BY id"))


async def open_first_drift_person(session) -> None:
    """The drift list (key 2), then the person of its first row (Enter)."""
    mark = len(session.stream)
    await session.press("2")
    await session.until("Drift · 1-", "/ Filter", since=mark)
    mark = len(session.stream)
    await session.press("\r")
    # Loaded, not only laid out: an action key waits for the data ("still loading").
    await session.until("HRIS record", "employee_id E0", "Audit trail", since=mark)


# -- served, over the websocket (always runs) --------------------------------------------

def session_processes(config_path: Path) -> list[int]:
    """The console processes serving browser sessions over this config."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        if b"--web-session" in argv and str(config_path.resolve()).encode() in argv:
            found.append(int(cmdline.parent.name))
    return found


async def test_the_page_and_its_websocket_serve_the_dashboard_with_live_numbers(world):
    figures = live_figures(world)
    async with aiohttp.ClientSession() as http:
        with web_console(world) as url:
            async with http.get(url) as page:
                assert page.status == 200
                html = await page.text()
            port = url.rsplit(":", 1)[1].rstrip("/")
            assert f'data-session-websocket-url="ws://127.0.0.1:{port}/ws"' in html
            session = await open_session(http, url, SIZE, origin=url.rstrip("/"))
            text = await session.until("rostersync — read-only", *figures)
            assert "read-only: this console starts no runs" in text  # no scheduler here
            assert len(session_processes(world)) == 1
        # Stopped with the session open (web_console checks it exits 0, quietly): the
        # session's console process is gone with it, and the browser's socket is closed.
        assert session_processes(world) == []
        while (message := await session.ws.receive()).type == aiohttp.WSMsgType.BINARY:
            pass  # frames sent before the stop, still buffered here
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_the_read_only_web_console_refuses_an_action_key(world):
    before = runs_and_audit(world)
    with web_console(world) as url:
        async with aiohttp.ClientSession() as http:
            session = await open_session(http, url, SIZE)
            await session.until("held 30")
            await open_first_drift_person(session)
            mark = len(session.stream)
            await session.press("y")
            text = await session.until(REFUSED, since=mark)
            assert CONFIRM not in text
            await session.ws.close()
    assert runs_and_audit(world) == before  # nothing ran, nothing was recorded


async def test_actions_in_the_browser_only_when_allowed(world):
    with web_console(world, "--web-allow-actions") as url:
        async with aiohttp.ClientSession() as http:
            session = await open_session(http, url, SIZE)
            await session.until("held 30")
            await open_first_drift_person(session)
            mark = len(session.stream)
            await session.press("y")
            text = await session.until(CONFIRM, since=mark)
            assert REFUSED not in text
            mark = len(session.stream)
            await session.press("y")
            await session.until("resync of E", "requested", since=mark)
            # The person's audit trail shows the entry once it is written, actor first.
            await session.until(f"{web.WEB_ACTOR} resync", since=mark)
            await session.ws.close()
    # The browser's action is in the audit log under the web console's name (beside the
    # server's OS user, which the chain records as well).
    assert ("resync", web.WEB_ACTOR) in runs_and_audit(world)[1]


async def test_a_page_from_another_origin_cannot_open_the_console(world):
    with web_console(world) as url:
        async with aiohttp.ClientSession() as http:
            for origin in ("http://evil.example", "http://127.0.0.1:1"):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await open_session(http, url, SIZE, origin=origin)
                assert refused.value.status == 403
            # The page's own origin, and the other names of loopback, are let in.
            port = url.rsplit(":", 1)[1].rstrip("/")
            session = await open_session(http, url, SIZE, origin=f"http://localhost:{port}")
            await session.until("held 30")
            await session.ws.close()


# -- in Chromium -------------------------------------------------------------------------

async def test_chromium_renders_the_dashboard_and_the_read_only_refusal(world):
    browser = find_browser()
    if browser is None:
        pytest.skip("no Chromium on PATH (Debian: apt-get install chromium); the websocket "
                    "tests above cover the server without it")
    figures, before = live_figures(world), runs_and_audit(world)
    with web_console(world) as url:
        async with headless_chromium(browser, (1600, 1000)) as page:
            await page.send("Page.navigate", url=url)
            await page.until("rostersync — read-only", *figures)
            # The terminal is on screen: textual.js marks the page once bytes arrived.
            assert await page.evaluate("document.body.classList.contains('-first-byte')")
            assert await page.evaluate("document.querySelectorAll('.xterm canvas').length "
                                       "> 0 || !!document.querySelector('.xterm-screen')")
            # Keys go to the terminal's input, as after a click into it.
            await page.evaluate("document.querySelector('.xterm-helper-textarea').focus()")
            mark = len(page.stream)
            await page.press("2")
            await page.until("Drift · 1-", "/ Filter", since=mark)
            mark = len(page.stream)
            await page.press("enter")
            await page.until("HRIS record", "employee_id E0", "Audit trail", since=mark)
            mark = len(page.stream)
            await page.press("y")
            await page.until(REFUSED, since=mark)
            shot = await page.screenshot()
            assert shot.startswith(b"\x89PNG")
    assert runs_and_audit(world) == before


# -- where it may listen, and the flags' mistakes -----------------------------------------

@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.0", True), ("127.255.255.255", True),
    ("126.255.255.255", False), ("128.0.0.0", False),
    ("::1", True), ("::", False), ("::2", False),
    ("localhost", True), ("LocalHost", True), ("localhost.example.org", False),
    ("0.0.0.0", False), ("10.0.0.5", False), ("rostersync.example.org", False),
])
def test_only_loopback_addresses_are_loopback(host, loopback):
    assert web.is_loopback(host) is loopback


def test_a_remote_address_needs_its_flag():
    with pytest.raises(Exception, match="not a loopback address") as refused:
        web.listen_address("0.0.0.0:8790", allow_remote=False)
    assert "--web-allow-remote" in str(refused.value)
    assert web.listen_address("0.0.0.0:8790", allow_remote=True) == ("0.0.0.0", 8790)
    assert web.listen_address("[::1]:0", allow_remote=False) == ("::1", 0)
    assert web.listen_address(None, allow_remote=False) == ("127.0.0.1", 8790)


@pytest.mark.parametrize(("argv", "sentence"), [
    (["--web", "--web-listen", "0.0.0.0:0"],
     "0.0.0.0 is not a loopback address; the web console has no login or TLS of its own"),
    (["--web", "--web-listen", "8790"], "--web-listen must be host:port"),
    (["--web", "--web-listen", "127.0.0.1:65536"], "--web-listen must be host:port"),
    (["--web-allow-actions"], "--web-allow-actions only applies with --web"),
    (["--web-listen", "127.0.0.1:0"], "--web-listen only applies with --web"),
    (["--web", "--read-only", "--web-allow-actions"],
     "--read-only and --web-allow-actions contradict each other"),
    (["--web", "--web-public-url", "rostersync.example.org"],
     "--web-public-url 'rostersync.example.org' must start with http:// or https://"),
])
def test_a_mistaken_flag_is_one_sentence_and_exit_2(world, capsys, argv, sentence):
    assert main(["console", *argv, "--config", str(world)]) == 2
    err = capsys.readouterr().err
    assert sentence in err and "Traceback" not in err and err.count("\n") == 1


def test_a_port_in_use_is_one_sentence(world, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code = main(["console", "--web", "--web-listen", f"127.0.0.1:{port}",
                     "--config", str(world)])
    assert code == 2
    assert f"--web-listen 127.0.0.1:{port}: cannot listen there" in capsys.readouterr().err


def test_without_textual_serve_the_extra_is_named(world, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "textual_serve", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)
    monkeypatch.delitem(sys.modules, "rostersync.console.web_server", raising=False)
    assert main(["console", "--web", "--web-listen", "127.0.0.1:0",
                 "--config", str(world)]) == 2
    assert "pip install 'rostersync[web]'" in capsys.readouterr().err


def test_a_session_runs_read_only_unless_actions_are_allowed(tmp_path):
    config = tmp_path / "rostersync.toml"
    read_only = web.session_command("/py", config, None, None, allow_actions=False)
    assert read_only == (f"/py -m {web.CLI_MODULE} console --web-session --config {config} "
                         "--read-only")
    acting = web.session_command("/py", config, tmp_path / "x y.db", None, allow_actions=True)
    assert acting.endswith(f"--db '{tmp_path / 'x y.db'}' --actor 'web console'")
    assert "--read-only" not in acting
    named = web.session_command("/py", config, None, "alice", allow_actions=True)
    assert named.endswith("--actor alice")
