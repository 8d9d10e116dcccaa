"""Alerts: one notice per state change, one on recovery, to a webhook receiver on
127.0.0.1 and to a command."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rostersync.console.cli import main
from rostersync.storage.store_factory import make_store
from rostersync.sync.alerts import Alerter, channel_ids, conditions, owed
from rostersync.sync.config import load_config


class Receiver:
    """A webhook receiver on 127.0.0.1 that records what it takes; ``answer`` is the
    HTTP status it replies with (a 5xx: the notice was not taken)."""

    def __init__(self) -> None:
        self.received: list[dict] = []  # notices taken (answered 2xx)
        self.refused: list[dict] = []   # notices answered with an error
        self.answer = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                doc = json.loads(self.rfile.read(length))
                (owner.received if owner.answer < 300 else owner.refused).append(doc)
                self.send_response(owner.answer)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make() -> Receiver:
        made.append(Receiver())
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def receiver(receivers):
    r = receivers()
    return r.url, r.received


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
    alerter = Alerter(make_store(config.database), config)

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
    store = make_store(config.database)
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


def test_a_notice_one_channel_missed_is_resent_to_that_channel_only(workspace, receivers,
                                                                    monkeypatch, capsys):
    slack, pager = receivers(), receivers()
    pager.answer = 503  # down when the job is quarantined
    with workspace.config_path.open("a") as f:
        for r in (slack, pager):
            f.write(f'\n[[alerts.channels]]\ntype = "webhook"\nurl = "{r.url}"\n')
    config = load_config(workspace.config_path)
    store = make_store(config.database)
    records: list[dict] = []
    alerter = Alerter(store, config, log=records.append)

    monkeypatch.setenv("ROSTERSYNC_TEST_LMS_TOKEN", "revoked")
    assert main(workspace.args("sync")) == 5
    assert [d["alert"] for d in alerter.check()] == ["quarantine"]  # one channel took it
    assert [d["alert"] for d in slack.received] == ["quarantine"]
    assert [d["alert"] for d in pager.refused] == ["quarantine"] and pager.received == []
    assert records[-1]["delivered"] is False
    assert sorted(records[-1]["channels"].values()) == ["ok", "webhook channel answered HTTP 503"]
    row = store.rows("SELECT * FROM alert_state WHERE key = 'quarantine'")[0]
    assert row["notified"] is None and "503" in row["last_error"]

    alerter.check()  # still down: owed to the pager alone
    assert len(slack.received) == 1 and len(pager.refused) == 2

    pager.answer = 200
    # A new process (a restart) remembers who took what.
    assert [d["alert"] for d in Alerter(store, config).check()] == ["quarantine"]
    assert len(slack.received) == 1, "the channel that took the notice got it twice"
    assert [(d["alert"], d["state"]) for d in pager.received] == [("quarantine", "firing")]
    assert Alerter(store, config).check() == []
    row = store.rows("SELECT * FROM alert_state WHERE key = 'quarantine'")[0]
    assert row["notified"] == 1 and row["last_error"] is None

    # The recovery: the pager fails this time, and is owed the recovery only.
    pager.answer = 500
    monkeypatch.setenv("ROSTERSYNC_TEST_LMS_TOKEN", workspace.token)
    assert main(workspace.args("resume")) == 0
    assert [d["state"] for d in alerter.check()] == ["resolved"]
    pager.answer = 200
    alerter.check()
    capsys.readouterr()
    assert [d["state"] for d in slack.received] == ["firing", "resolved"]
    assert [d["state"] for d in pager.received] == ["firing", "resolved"]
    assert slack.url not in json.dumps(store.rows("SELECT * FROM alert_deliveries"))


def test_channel_ids_are_stable_digests_and_owed_follows_the_announced_state():
    ids = channel_ids(["webhook https://hooks.example/T0/B0/secret", "command [\"notify\"]",
                       "webhook https://hooks.example/T0/B0/secret"])
    assert ids[0].startswith("webhook:") and "secret" not in ids[0]
    assert ids[2] == ids[0] + "#2" and ids[1].startswith("command:")
    assert channel_ids(["webhook https://a"]) == channel_ids(["webhook https://a"])
    assert owed(None, True) and not owed(None, False)
    assert owed(1, False) and owed(0, True) and not owed(1, True) and not owed(0, False)


def test_a_webhook_that_fails_with_an_os_error_leaves_the_notice_owed(workspace, receiver,
                                                                      monkeypatch, tmp_path):
    """An OSError from the webhook's client (here: the CA bundle it is told to load does
    not exist) is that channel's failure, not a crash of the check."""
    url, received = receiver
    with workspace.config_path.open("a") as f:
        f.write(f'\n[[alerts.channels]]\ntype = "webhook"\nurl = "{url}"\n')
    config = load_config(workspace.config_path)
    store = make_store(config.database)
    monkeypatch.setenv("ROSTERSYNC_TEST_LMS_TOKEN", "revoked")
    assert main(workspace.args("sync")) == 5
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-bundle.pem"))
    assert Alerter(store, config).check() == []
    row = store.rows("SELECT * FROM alert_state WHERE key = 'quarantine'")[0]
    assert row["active"] == 1 and row["notified"] is None
    assert received == []

    monkeypatch.delenv("SSL_CERT_FILE")
    assert [d["alert"] for d in Alerter(store, config).check()] == ["quarantine"]
    assert len(received) == 1


@pytest.mark.parametrize("hostile", ["endless", "drip"])
def test_a_receiver_that_answers_without_end_costs_nothing(workspace, monkeypatch, hostile):
    """The receiver's status says it took the notice; its body is never read. Before, the
    whole answer was read: 64 MiB into memory, or a drip of 400 bytes 50 ms apart
    (20 s) holding every other alert back."""
    from tests.reliability.hostile_server import HostileServer, drip, endless

    size = 64 * 1024 * 1024
    answer = endless(b"{", size, declare=False) if hostile == "endless" \
        else drip(b"{" + b" " * 399, every=0.05)
    with HostileServer(answer) as server:
        with workspace.config_path.open("a") as f:
            f.write(f'\n[[alerts.channels]]\ntype = "webhook"\n'
                    f'url = "{server.base_url}/hook"\n')
        config = load_config(workspace.config_path)
        store = make_store(config.database)
        monkeypatch.setenv("ROSTERSYNC_TEST_LMS_TOKEN", "revoked")
        assert main(workspace.args("sync")) == 5
        assert [d["alert"] for d in Alerter(store, config).check()] == ["quarantine"]
        assert len(server.requests) == 1
        assert server.sent < (size // 2 if hostile == "endless" else 400), server.sent
    row = store.rows("SELECT * FROM alert_state WHERE key = 'quarantine'")[0]
    assert row["notified"] is not None  # delivered
