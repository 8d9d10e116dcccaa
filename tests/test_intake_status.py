"""`rostersync status` and `rostersync events list` report real-time intake: events by
outcome, refused webhook requests (stored, so another process sees them), events gated
behind a rejected feed; and the metrics endpoint agrees with the status document."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import httpx

from rostersync.console.cli import main
from rostersync.storage import intake as intake_store
from rostersync.storage.db import Store
from rostersync.storage.store_factory import make_store
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from rostersync.sync.realtime import signatures
from rostersync.sync.realtime.service import RealtimeService
from rostersync.sync.status import REFUSED_WARNING_MINUTES, build_status
from tests.test_metrics import scrape

EVENT_ENV, EVENT_KEY = "ROSTERSYNC_TEST_EVENT_KEY", "intake-status-key"


def enable_realtime(workspace, monkeypatch) -> None:
    monkeypatch.setenv(EVENT_ENV, EVENT_KEY)
    with workspace.config_path.open("a") as f:
        f.write(f'\n[realtime]\nenabled = true\nlisten = "127.0.0.1:0"\n'
                f'generic_secret_env = "{EVENT_ENV}"\n'
                '\n[metrics]\nenabled = true\nlisten = "127.0.0.1:0"\n')


def signed(employee_id: str, stamp: int, key: str = EVENT_KEY) -> tuple[bytes, dict]:
    body = json.dumps({"employee_id": employee_id, "event": "terminated"}).encode()
    signature = signatures.generic_signature(key.encode(), body, str(stamp))
    return body, {"X-Rostersync-Signature": signature, "X-Rostersync-Timestamp": str(stamp)}


def deliver(workspace, requests: list[tuple[bytes, dict]]) -> list[int]:
    """Post the requests to a real listener, then sync what was queued; the answers."""
    config = load_config(workspace.config_path)

    async def scenario() -> list[int]:
        service = RealtimeService(Engine(config), config)
        await service.listener.start()
        try:
            async with httpx.AsyncClient() as client:
                answers = [await client.post(service.listener.url + "/webhooks/event",
                                             content=body, headers=headers)
                           for body, headers in requests]
            await service.dispatcher.drain()
            return [a.status_code for a in answers]
        finally:
            await service.stop()

    return asyncio.run(scenario())


def status_json(workspace, capsys) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(workspace.args("status", "--json"))
    return code, json.loads(capsys.readouterr().out)


def test_status_reports_intake_and_warns_while_the_listener_refuses(workspace, monkeypatch,
                                                                  capsys):
    assert main(workspace.args("sync")) == 0
    code, before = status_json(workspace, capsys)
    assert code == 0 and "intake" not in before  # [realtime] off: the document is unchanged
    enable_realtime(workspace, monkeypatch)
    now = int(time.time())
    answers = deliver(workspace, [
        signed("E00042", now), signed("E00042", now + 1),  # a burst: one sync
        signed("E00043", now),
        (b'{"employee_id": "E00044"}', {}),                  # unsigned
        signed("E00044", now, key="guessed"),                # forged
    ])
    assert answers == [202, 202, 202, 401, 401]

    code, status = status_json(workspace, capsys)
    intake = status["intake"]
    assert (code, status["status"]) == (1, "WARNING")
    assert any(r.startswith("the webhook listener refused 2 request(s) in the last 60 "
                            "minutes") for r in status["reasons"]), status["reasons"]
    assert intake["mode"] == "hybrid"
    assert intake["kinds"] == {"create": "realtime", "deactivate": "realtime",
                               "delete": "realtime", "link": "batch",
                               "reactivate": "realtime", "update": "batch"}
    assert intake["events_24h"]["synced"] == 2 and intake["events_24h"]["coalesced"] == 1
    assert intake["events_24h"]["gated"] == 0 and intake["events_24h_total"] == 3
    assert (intake["queued"], intake["gated"]) == (0, 0)
    assert intake["last_event_at"] is not None
    assert intake["refused_24h"] == intake["refused_recent"] == 2
    assert "Signature does not match" in intake["last_refused_why"]
    assert EVENT_KEY not in json.dumps(status)

    capsys.readouterr()
    assert main(workspace.args("status")) == 1
    text = capsys.readouterr().out
    assert "intake: hybrid (create, deactivate, delete, reactivate in real time)" in text
    assert "coalesced 1, synced 2" in text and "webhooks refused in 24 h: 2" in text

    # The metrics say what status says.
    metrics = scrape(load_config(workspace.config_path))
    assert metrics["rostersync_status"][()] == status["exit_code"]
    received = {k[0][1]: v for k, v in metrics["rostersync_events_received_24h"].items()}
    assert received == intake["events_24h"]
    assert metrics["rostersync_webhooks_refused_24h"][()] == intake["refused_24h"]
    assert metrics["rostersync_events_queued"][()] == intake["queued"] + intake["gated"]

    # An hour on, the refusals still count for the day but no longer warn.
    config = load_config(workspace.config_path)
    later = build_status(make_store(config.database), config,
                         status_now(status) + timedelta(minutes=REFUSED_WARNING_MINUTES + 2))
    assert later["intake"]["refused_24h"] == 2 and later["intake"]["refused_recent"] == 0
    assert not any("refused" in r for r in later["reasons"])


def status_now(status: dict):
    from datetime import datetime

    return datetime.fromisoformat(status["generated_at"])


def test_events_gated_behind_a_rejected_feed_make_a_warning(workspace, monkeypatch, capsys):
    assert main(workspace.args("sync")) == 0
    enable_realtime(workspace, monkeypatch)
    lines = workspace.csv_path.read_text().splitlines()
    workspace.csv_path.write_text("\n".join(lines[:300]) + "\n")  # 40% gone: rejected
    assert main(workspace.args("sync")) == 4
    assert deliver(workspace, [signed("E00007", int(time.time()))]) == [202]

    code, status = status_json(workspace, capsys)
    assert code == 2 and status["intake"]["gated"] == 1
    assert status["intake"]["events_24h"]["gated"] == 1
    assert "1 HR event(s) wait behind the rejected HRIS feed (gated)" in status["reasons"]
    metrics = scrape(load_config(workspace.config_path))
    assert metrics["rostersync_events_queued"][()] == 1

    capsys.readouterr()
    assert main(workspace.args("events", "list", "--outcome", "gated", "--json")) == 0
    [event] = json.loads(capsys.readouterr().out)
    assert (event["employee_id"], event["outcome"], event["run_id"]) == ("E00007", "gated", None)
    assert "feed gate" in event["detail"]


def test_events_list_shows_who_what_outcome_and_run(workspace, monkeypatch, capsys):
    assert main(workspace.args("sync")) == 0
    enable_realtime(workspace, monkeypatch)
    now = int(time.time())
    assert deliver(workspace, [signed("E00010", now), signed("E00010", now + 1),
                               signed("E00011", now)]) == [202, 202, 202]
    capsys.readouterr()
    assert main(workspace.args("events", "list", "--json")) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["employee_id"], r["outcome"]) for r in rows] == [
        ("E00011", "synced"), ("E00010", "coalesced"), ("E00010", "synced")]
    assert {r["source"] for r in rows} == {"event"}
    assert {r["action"] for r in rows} == {"terminated"}
    assert len({r["run_id"] for r in rows}) == 1 and rows[0]["run_id"] is not None

    assert main(workspace.args("events", "list", "--outcome", "coalesced,gated",
                               "--json")) == 0
    assert [r["outcome"] for r in json.loads(capsys.readouterr().out)] == ["coalesced"]
    assert main(workspace.args("events", "list")) == 0
    text = capsys.readouterr().out
    assert "OUTCOME" in text and "E00010" in text and "coalesced" in text

    assert main(workspace.args("events", "list", "--outcome", "lost")) == 2
    err = capsys.readouterr().err
    assert "--outcome 'lost' is not an event outcome" in err and "Traceback" not in err
    assert main(workspace.args("events", "list", "--since", "yesterday")) == 2
    assert "--since 'yesterday'" in capsys.readouterr().err
    assert main(workspace.args("events", "list", "--since", "2020-01-01", "--outcome",
                               "held")) == 0
    assert "no events received since 2020-01-01" in capsys.readouterr().out


def test_refusals_are_counted_per_minute(tmp_path):
    from datetime import UTC, datetime

    store = Store(tmp_path / "r.db")
    t0 = datetime(2026, 11, 26, 9, 0, 10, tzinfo=UTC)
    for n in range(50):  # a flood within one minute: one row
        intake_store.record_refusal(store, t0 + timedelta(seconds=n), "event", 401, f"bad {n}")
    intake_store.record_refusal(store, t0 + timedelta(minutes=3), "bamboohr", 409, "replay")
    assert store.scalar("SELECT count(*) FROM webhook_refusals") == 2
    got = intake_store.refusals_since(store, t0)
    assert (got["count"], got["last_why"], got["last_status"]) == (51, "replay", 409)
    assert intake_store.refusals_since(store, t0 + timedelta(minutes=2))["count"] == 1
    assert intake_store.prune_refusals(store, t0 + timedelta(minutes=1)) == 1
