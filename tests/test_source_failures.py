"""An HRIS that cannot be read is a source failure, not a rejected feed: the run fails
(exit 1) with its own error class, no snapshot is recorded (the gate's verdict on the
last feed stands) and the banner says "HRIS UNREACHABLE" on a line of its own.

Real parts only: a closed port on 127.0.0.1, the BambooHR sandbox answering 503 or 401,
a CSV file that is not there, and a real scim2-server as the LMS."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from datetime import UTC, datetime

import pytest

from rostersync.console.cli import main
from rostersync.console.widgets.banner import alerts
from rostersync.sandbox.bamboohr import ERROR_HEADER, BambooSandbox, generate
from rostersync.storage import console_queries as q
from rostersync.storage import runs as run_store
from rostersync.storage import source_health
from rostersync.storage.db import Store
from rostersync.storage.store_factory import make_store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import Config
from rostersync.sync.connectors.bamboohr import BambooHRSource
from rostersync.sync.engine import Engine
from tests.support import TOKEN_ENV

KEY = "sandbox-key"
KEY_ENV = "ROSTERSYNC_TEST_BAMBOOHR_KEY"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: bound, then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def banner(store: Store) -> list[str]:
    figures = q.banner_figures(store)
    figures["hris_outage"] = source_health.hris_outage(store)
    return alerts(figures)


def snapshots(store: Store) -> list[tuple[int, int]]:
    return [(r[0], r[1]) for r in store.conn.execute(
        "SELECT id, accepted FROM snapshots ORDER BY id")]


def bamboo_engine(base_url: str, scim_base: str, tmp_path, clock) -> Engine:
    config = Config.model_validate({
        "database": {"path": str(tmp_path / "rostersync.db")},
        "hris": {"type": "bamboohr", "base_url": base_url, "api_key_env": KEY_ENV},
        "lms": {"type": "scim", "base_url": scim_base, "token_env": TOKEN_ENV},
        "mapping": {"status_values": {"full-time": "active", "terminated": "terminated",
                                      "inactive": "terminated"}},
    })
    # Retries back off through an injected sleep: no real waiting in the test.
    source = BambooHRSource(config.hris, now=clock.now, sleep=lambda _s: None)
    return Engine(config, make_store(config.database), source=source, clock=clock)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


def test_connection_refused_fails_the_run_without_rejecting_the_feed(
        tmp_path, scim_server, lms_token, clock):
    os.environ[KEY_ENV] = KEY
    url = f"http://127.0.0.1:{closed_port()}/api/gateway.php/acme"
    engine = bamboo_engine(url, scim_server.base_url, tmp_path, clock)
    report = asyncio.run(engine.sync("full"))
    assert report.status == "failed" and report.exit_code == 1
    assert report.error_class == "source_unreachable"
    assert report.message.startswith("HRIS unreachable: BambooHR POST /v1/reports/custom: "
                                     "ConnectError")
    assert snapshots(engine.store) == []  # no verdict on a feed that was never read
    run = run_store.get_run(engine.store, report.run_id)
    assert (run["status"], run["error_class"]) == ("failed", "source_unreachable")
    outage = source_health.hris_outage(engine.store)
    assert outage["error_class"] == "source_unreachable"
    assert outage["since"] == "2026-11-26T09:00:00.000000Z"
    [line] = banner(engine.store)
    assert line.startswith("HRIS UNREACHABLE since 2026-11-26 09:00:00 UTC: BambooHR POST")
    assert "REJECTED" not in line

    # Still down an hour later: the outage keeps its start.
    clock.advance(hours=1)
    asyncio.run(engine.sync("full"))
    assert source_health.hris_outage(engine.store)["since"] == "2026-11-26T09:00:00.000000Z"


def test_server_errors_and_refused_credentials_keep_the_last_good_snapshot(
        tmp_path, scim_server, lms_token, clock):
    os.environ[KEY_ENV] = KEY
    with BambooSandbox(api_key=KEY, clock=clock.now) as hris:
        for employee in generate(7):
            hris.put(employee)
        clock.advance(minutes=1)
        engine = bamboo_engine(hris.base_url, scim_server.base_url, tmp_path, clock)
        assert asyncio.run(engine.sync("full")).status == "succeeded"
        good = snapshots(engine.store)
        assert good == [(1, 1)]

        clock.advance(minutes=15)
        hris.fault = lambda method, path: (503, {ERROR_HEADER: "Maintenance"}, b"")
        down = asyncio.run(engine.sync("full"))
        assert (down.status, down.exit_code, down.error_class) == (
            "failed", 1, "source_unreachable")
        assert "503 (Maintenance); still throttled after 4 tries" in down.message
        assert snapshots(engine.store) == good
        assert run_store.last_accepted_snapshot(engine.store)["id"] == 1
        assert banner(engine.store)[0].startswith("HRIS UNREACHABLE since 2026-11-26 09:16:00 UTC")

        hris.fault = None
        os.environ[KEY_ENV] = "a-rotated-key"  # read when a source opens its client
        engine = bamboo_engine(hris.base_url, scim_server.base_url, tmp_path, clock)
        clock.advance(minutes=15)
        refused = asyncio.run(engine.sync("full"))
        assert (refused.status, refused.exit_code, refused.error_class) == (
            "failed", 1, "source_auth")
        assert refused.message.startswith("HRIS refused our credentials: ")
        assert "401 unauthorised (Invalid API key)" in refused.message
        assert "a-rotated-key" not in refused.message
        assert snapshots(engine.store) == good
        [line] = banner(engine.store)
        assert line.startswith("HRIS REFUSED OUR CREDENTIALS since 2026-11-26 09:31:00 UTC")

        os.environ[KEY_ENV] = KEY
        engine = bamboo_engine(hris.base_url, scim_server.base_url, tmp_path, clock)
        clock.advance(minutes=15)
        assert asyncio.run(engine.sync("full")).status == "succeeded"
        assert source_health.hris_outage(engine.store) is None
        assert banner(engine.store) == []


def cli(capsys, workspace, *argv: str) -> tuple[int, dict]:
    code = main(workspace.args(*argv, "--json"))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_a_missing_csv_is_a_source_failure_and_a_malformed_one_a_rejection(
        capsys, workspace):
    assert cli(capsys, workspace, "sync")[0] == 0
    content = workspace.csv_path.read_bytes()
    workspace.csv_path.unlink()
    code, report = cli(capsys, workspace, "sync")
    assert code == 1, report
    assert report["status"] == "failed" and report["error_class"] == "source_unreachable"
    assert report["message"].startswith(f"HRIS unreachable: {workspace.csv_path}: the CSV "
                                        "file does not exist")
    store = workspace.store()
    assert [a for _i, a in snapshots(store)] == [1]  # only the first, accepted
    code, status = cli(capsys, workspace, "status")
    assert status["last_feed"]["accepted"] is True
    assert not any("rejected" in r for r in status["reasons"])
    # Its own line and error class in `status`, CRITICAL: nothing is being read.
    assert code == 2 and status["sources"]["hris"]["outage"]["error_class"] == \
        "source_unreachable"
    assert any(r.startswith("the HRIS is unreachable since ") for r in status["reasons"])

    # A file that is there but empty is read and refused: a rejected feed (exit 4).
    workspace.csv_path.write_bytes(b"")
    code, report = cli(capsys, workspace, "sync")
    assert code == 4 and report["status"] == "rejected"
    assert report["error_class"] == "feed_rejected"
    assert source_health.hris_outage(store) is None
    lines = banner(store)
    assert lines == ["LAST HRIS FEED REJECTED: " + report["reasons"][0]]

    workspace.csv_path.write_bytes(content)
    code, report = cli(capsys, workspace, "sync")
    assert code == 0, report
    assert report["error_class"] is None
