"""The webhook listener under hostile input, on 127.0.0.1: signed bodies nested far too
deep, employee ids that are not ids, more connections than the process has descriptors
for, and the log flood that used to follow."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime

import httpx
import pytest

from rostersync.storage import events as event_store
from rostersync.storage import intake as intake_store
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import Config
from rostersync.sync.engine import Engine
from rostersync.sync.realtime import intake, signatures
from rostersync.sync.realtime.accept import connection_cap
from rostersync.sync.realtime.intake import MAX_NESTING, IntakeError, nesting_depth
from rostersync.sync.realtime.log_limit import RateLimitedLog
from rostersync.sync.realtime.service import RealtimeService
from tests.reliability import figures
from tests.scim_fixtures import SCIM_TOKEN
from tests.support import TOKEN_ENV, World, write_config

pytestmark = pytest.mark.reliability  # `make reliability` prints the figures

EVENT_KEY, EVENT_ENV = "generic-event-key", "ROSTERSYNC_TEST_EVENT_KEY"
HOOK_KEY, HOOK_ENV = "bamboo-private-key", "ROSTERSYNC_TEST_HOOK_KEY"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
STAMP = str(int(NOW.timestamp()))


@pytest.fixture
def service_for(tmp_path, scim_server, monkeypatch):
    """A RealtimeService on 127.0.0.1:0 over a CSV source (its dispatcher not started:
    these tests look at what the listener accepts, not at runs)."""
    monkeypatch.setenv(EVENT_ENV, EVENT_KEY)
    monkeypatch.setenv(HOOK_ENV, HOOK_KEY)
    csv_path = World.generate(5).write(tmp_path / "employees.csv")

    def make(**realtime) -> RealtimeService:
        config = Config.model_validate({
            "database": {"path": str(tmp_path / "rostersync.db")},
            "hris": {"type": "csv", "path": str(csv_path)},
            "lms": {"type": "scim", "base_url": scim_server.base_url, "token_env": TOKEN_ENV},
            "realtime": {"enabled": True, "listen": "127.0.0.1:0",
                         "generic_secret_env": EVENT_ENV, "bamboohr_secret_env": HOOK_ENV,
                         **realtime},
        })
        engine = Engine(config, Store(config.database.path), clock=FrozenClock(NOW))
        return RealtimeService(engine, config)

    return make


def signed(body: bytes) -> dict[str, str]:
    return {"X-Rostersync-Signature": signatures.generic_signature(EVENT_KEY.encode(), body,
                                                                   STAMP),
            "X-Rostersync-Timestamp": STAMP}


def bamboo_signed(body: bytes) -> dict[str, str]:
    return {"X-BambooHR-Signature": signatures.bamboohr_signature(HOOK_KEY.encode(), body,
                                                                  STAMP),
            "X-BambooHR-Timestamp": STAMP}


def nested(depth: int) -> bytes:
    """A generic event whose extra field brings the body's nesting to ``depth``."""
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    return ('{"employee_id": "3", "event": "changed", "x": ' + inner + "}").encode()


def deliver(service: RealtimeService, bodies: list[tuple[str, bytes, dict[str, str]]]
            ) -> list[httpx.Response]:
    async def scenario() -> list[httpx.Response]:
        await service.listener.start()
        try:
            async with httpx.AsyncClient(base_url=service.listener.url) as client:
                return [await client.post(path, content=body, headers=headers)
                        for path, body, headers in bodies]
        finally:
            await service.stop()

    return asyncio.run(scenario())


# -- nesting -------------------------------------------------------------------------------

def test_nesting_is_bounded_at_its_edge(service_for):
    service = service_for()
    bodies = [nested(MAX_NESTING - 1), nested(MAX_NESTING), nested(MAX_NESTING + 1),
              nested(100_000)]  # past the interpreter's recursion limit
    answers = deliver(service, [("/webhooks/event", b, signed(b)) for b in bodies])
    assert [a.status_code for a in answers] == [202, 202, 400, 400]
    assert answers[2].json() == {"error": f"generic event: the JSON nests deeper than "
                                          f"{MAX_NESTING} levels"}
    assert answers[3].json() == answers[2].json()
    assert service.refused == 2
    store = service.engine.store
    assert intake_store.refusals_since(store, NOW)["count"] == 2
    figures.add("webhooks: signed bodies nested too deep, refused 400", 2)


def test_nesting_depth_counts_containers():
    assert nesting_depth("x") == 0
    assert nesting_depth([]) == 1
    assert nesting_depth({"a": [{}]}) == 3
    assert nesting_depth(json.loads(nested(MAX_NESTING))) == MAX_NESTING


# -- employee ids ----------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "kind"), [
    ({"a": 1}, "a JSON object"), ([1], "a JSON array"), (True, "a JSON boolean"),
    (1.5, "a JSON number"), ("x" * 257, "257 characters long"),
])
def test_an_employee_id_that_is_not_an_id_is_refused(service_for, value, kind):
    service = service_for()
    generic = json.dumps({"employee_id": value}).encode()
    bamboo = json.dumps({"employees": [{"id": value, "action": "Updated"}]}).encode()
    answers = deliver(service, [("/webhooks/event", generic, signed(generic)),
                                ("/webhooks/bamboohr", bamboo, bamboo_signed(bamboo))])
    assert [a.status_code for a in answers] == [400, 400]
    assert answers[0].json()["error"].startswith(
        f"generic event: events[0].employee_id is {kind}")
    assert answers[1].json()["error"].startswith(
        f"BambooHR webhook: employees[0].id is {kind}")
    assert service.refused == 2
    assert event_store.queued(service.engine.store) == []
    figures.add("webhooks: non-scalar or overlong employee ids, refused 400", 2)


def test_string_and_integer_ids_are_queued_as_text(service_for):
    service = service_for()
    bodies = [json.dumps({"employee_id": 412}).encode(),
              json.dumps({"employee_id": " 413 "}).encode(),
              json.dumps({"employee_id": "x" * 256}).encode()]
    answers = deliver(service, [("/webhooks/event", b, signed(b)) for b in bodies])
    assert [a.status_code for a in answers] == [202, 202, 202]
    queued = sorted(e["employee_id"] for e in event_store.queued(service.engine.store))
    assert queued == ["412", "413", "x" * 256]


def test_an_action_that_is_not_text_is_refused():
    with pytest.raises(IntakeError, match=r"employees\[0\]\.action is a JSON object"):
        intake.parse_bamboohr(b'{"employees": [{"id": "4", "action": {"a": 1}}]}')
    with pytest.raises(IntakeError, match=r"events\[0\]\.event is a JSON array"):
        intake.parse_generic(b'{"employee_id": "4", "event": []}')


# -- connections -------------------------------------------------------------------------------

def test_connection_cap_at_its_edges():
    assert connection_cap(64, None) == 64
    assert connection_cap(64, 128) == 64  # exactly half: the configured cap stands
    assert connection_cap(64, 127) == 63
    assert connection_cap(64, 129) == 64
    assert connection_cap(5, 4) == 2
    assert connection_cap(5, 1) == 1  # never none


def test_one_connection_over_the_cap_is_answered_503(service_for):
    cap = 4
    service = service_for(max_connections=cap)

    async def healthz() -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.get(service.listener.url + "/healthz")

    async def scenario() -> list[int]:
        await service.listener.start()
        host, port = service.listener.host, service.listener.port
        slow = [await asyncio.open_connection(host, port) for _ in range(cap - 1)]
        codes = [(await healthz()).status_code]  # the cap-th connection: served
        slow.append(await asyncio.open_connection(host, port))
        busy = await healthz()  # one over the cap
        codes.append(busy.status_code)
        assert busy.headers["retry-after"] == "1"
        for _reader, writer in slow:
            writer.close()
        # A slot frees once the listener reads the end of a slow client's connection;
        # a sender that honours the 503 retries.
        for _attempt in range(100):
            answer = await healthz()
            if answer.status_code == 200:
                break
        codes.append(answer.status_code)
        await service.stop()
        return codes

    assert asyncio.run(scenario()) == [200, 503, 200]


# -- few descriptors, many slow clients, one `serve` -------------------------------------------

SLOW_CLIENTS = 400
NOFILE = 64


def _few_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def test_400_slow_connections_with_64_descriptors(tmp_path, scim_server, monkeypatch):
    monkeypatch.setenv(EVENT_ENV, EVENT_KEY)
    csv_path = World.generate(5).write(tmp_path / "employees.csv")
    config = write_config(tmp_path, scim_server.base_url, csv_path)
    with config.open("a", encoding="utf-8") as fh:
        fh.write(f'\n[realtime]\nenabled = true\nlisten = "127.0.0.1:0"\n'
                 f'generic_secret_env = "{EVENT_ENV}"\n')
    env = {**os.environ, TOKEN_ENV: SCIM_TOKEN, EVENT_ENV: EVENT_KEY}
    proc = subprocess.Popen([sys.executable, "-m", "rostersync.console.cli", "serve", "--config",
                             str(config)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_few_descriptors)
    slow: list[socket.socket] = []
    try:
        url = None
        for line in proc.stdout:
            record = json.loads(line)
            if record.get("what") == "webhooks":
                url = record["url"]
                break
        assert url, proc.stderr.read()
        host, port = url.removeprefix("http://").split(":")
        for _ in range(SLOW_CLIENTS):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex((host, int(port)))
            slow.append(sock)
        with httpx.Client(timeout=30) as client:
            busy = client.get(url + "/healthz")
            assert busy.status_code == 503  # every slot held by a slow client
            for sock in slow:
                sock.close()
            slow.clear()
            for _attempt in range(200):
                if client.get(url + "/healthz").status_code == 200:
                    break
            else:
                raise AssertionError("the listener never served again")
    finally:
        for sock in slow:
            sock.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    logged = out + err
    assert "Traceback" not in logged, logged[-3000:]
    assert "Too many open files" not in logged
    refusals = [json.loads(line) for line in out.splitlines()
                if '"connection_refused"' in line]
    # One line when it began, one with the count at the stop: not one per connection.
    assert len(refusals) == 2, refusals
    assert refusals[0]["why"] == f"{NOFILE // 2} connections open, the cap"
    assert refusals[1]["repeated"] >= 1
    figures.add(f"webhooks: slow connections opened ({NOFILE} descriptors)", SLOW_CLIENTS)
    figures.add("webhooks: connections answered 503 over the cap", refusals[1]["repeated"] + 1)
    figures.add("webhooks: log lines for those refusals", len(refusals))
    figures.add("webhooks: tracebacks or 'Too many open files' lines", 0)


# -- the out-of-descriptors accept path, and the log limiter ---------------------------------

_EXHAUSTED_LISTENER = """
import asyncio, json, os, resource, sys
from rostersync.sync.realtime.http import HttpListener, Response
from rostersync.sync.realtime.log_limit import RateLimitedLog

async def ok(request):
    return Response(200, b"{}")

async def main():
    log = RateLimitedLog(lambda r: print(json.dumps(r), flush=True))
    listener = HttpListener("127.0.0.1", 0, ok, log=log, max_connections=16)
    await listener.start()
    # Fewer descriptors now than the cap was sized for: accepts fail with EMFILE.
    open_now = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 2, open_now + 2))
    print(listener.port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    listener.close()
    log.flush()

asyncio.run(main())
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_accepts_out_of_descriptors_are_rate_limited_lines():
    proc = subprocess.Popen([sys.executable, "-c", _EXHAUSTED_LISTENER], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    port = int(proc.stdout.readline())
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    with httpx.Client(timeout=30) as client:
        pending = client.build_request("GET", f"http://127.0.0.1:{port}/healthz")
        for sock in slow:
            sock.close()
        assert client.send(pending).status_code == 200  # served once descriptors free
    out, err = proc.communicate("stop\n", timeout=60)
    assert "Traceback" not in err, err[-3000:]
    lines = [json.loads(line) for line in out.splitlines()]
    emfile = [r for r in lines if "Too many open files" in r.get("error", "")]
    assert 1 <= len(emfile) <= 2, lines  # the first, and the count of the rest at stop
    figures.add("webhooks: failed accepts (out of descriptors)",
                1 + sum(r.get("repeated", 0) for r in emfile))
    figures.add("webhooks: log lines for failed accepts", len(emfile))
    assert all(r["event"] == "listener_error" for r in emfile)


def test_log_limiter_at_its_interval_edge():
    now = [0.0]
    lines: list[dict] = []
    log = RateLimitedLog(lines.append, 60.0, now=lambda: now[0])
    line = {"event": "webhook_refused", "why": "forged"}
    log(line)
    log(line)
    now[0] = 59.9  # just inside the interval: held back
    log(line)
    log({"event": "webhook_refused", "why": "stale"})  # a distinct message goes through
    assert lines == [line, {"event": "webhook_refused", "why": "stale"}]
    now[0] = 60.0  # exactly the interval: written again, with the count held back
    log(line)
    assert lines[2:] == [{**line, "repeated": 2, "over_seconds": 60.0}, line]
    log(line)
    log.flush()
    assert lines[4:] == [{**line, "repeated": 1, "over_seconds": 0.0}]
    log.flush()  # nothing more held: nothing written
    assert len(lines) == 5
