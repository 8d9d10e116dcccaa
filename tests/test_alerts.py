"""Alerts: one notice per state change, one on recovery, to a webhook receiver on
127.0.0.1 and to a command."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from console.cli import main
from storage.db import Store
from sync.alerts import Alerter, conditions
from sync.config import load_config


@pytest.fixture
def receiver():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def test_a_quarantine_gives_one_alert_and_one_recovery(workspace, receiver, tmp_path,
                                                       monkeypatch, capsys):
    url, received = receiver
    log = tmp_path / "alerts.jsonl"
    script = f"import sys; open({str(log)!r}, 'a').write(sys.stdin.read() + '\\n')"
    with workspace.config_path.open("a") as f:
        f.write(f'\n[[alerts.channels]]\ntype = "webhook"\nurl = "{url}"\n'
                f'\n[[alerts.channels]]\ntype = "command"\n'
                f'command = [{json.dumps(sys.executable)}, "-c", {json.dumps(script)}]\n')
    config = load_config(workspace.config_path)
    alerter = Alerter(Store(config.database.path), config)

    monkeypatch.setenv("ROSTERSYNC_TEST_LMS_TOKEN", "revoked")  # the LMS answers 401
    assert main(workspace.args("sync")) == 5
    assert [d["alert"] for d in alerter.check()] == ["quarantine"]
    assert alerter.check() == [] and alerter.check() == []  # still quarantined: no repeat

    monkeypatch.setenv("ROSTERSYNC_TEST_LMS_TOKEN", workspace.token)
    assert main(workspace.args("resume")) == 0
    assert [(d["alert"], d["state"]) for d in alerter.check()] == [("quarantine", "resolved")]
    assert alerter.check() == []
    capsys.readouterr()

    assert [(d["alert"], d["state"]) for d in received] == [("quarantine", "firing"),
                                                            ("quarantine", "resolved")]
    assert "quarantined" in received[0]["text"] and "RECOVERED" in received[1]["text"]
    commands = [json.loads(line) for line in log.read_text().splitlines()]
    assert commands == received


def test_an_undelivered_notice_is_owed_until_delivered(workspace, receiver, monkeypatch):
    url, received = receiver
    with workspace.config_path.open("a") as f:
        f.write('\n[[alerts.channels]]\ntype = "webhook"\nurl_env = "ROSTERSYNC_TEST_HOOK"\n')
    monkeypatch.setenv("ROSTERSYNC_TEST_HOOK", "http://127.0.0.1:9/nobody")  # refused
    config = load_config(workspace.config_path)
    store = Store(config.database.path)
    monkeypatch.setenv("ROSTERSYNC_TEST_LMS_TOKEN", "revoked")
    assert main(workspace.args("sync")) == 5
    assert Alerter(store, config).check() == []
    row = store.rows("SELECT * FROM alert_state WHERE key = 'quarantine'")[0]
    assert row["active"] == 1 and row["notified"] is None
    assert "127.0.0.1:9" not in row["last_error"]  # the URL may be a secret

    monkeypatch.setenv("ROSTERSYNC_TEST_HOOK", url)
    assert [d["alert"] for d in Alerter(store, config).check()] == ["quarantine"]
    assert len(received) == 1


def test_conditions_follow_the_status_document():
    status = {"job": {"state": "active", "reason": None}, "ops": {"held": 3},
              "terminations": {"overdue": 1, "sla_minutes": 60},
              "staleness": {"hris": {"state": "warning", "age_seconds": 100000},
                            "lms": {"state": "ok", "age_seconds": 5}}}
    got = {k: v[0] for k, v in conditions(status, "critical").items()}
    assert got == {"quarantine": False, "held": True, "sla": True, "stale:hris": False,
                   "stale:lms": False}
    assert conditions(status, "warning")["stale:hris"][0] is True
