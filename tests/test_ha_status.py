"""`status --json` and the metrics name the leader when [ha] is enabled."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from rostersync.console.cli import main
from rostersync.storage import lease
from rostersync.storage.store_factory import make_store
from rostersync.sync.config import load_config
from tests.support import give_audit_key
from tests.test_metrics import scrape


def _enable(workspace, extra: str = "") -> None:
    with workspace.config_path.open("a") as f:
        f.write('\n[ha]\nenabled = true\nnode = "sync-a"\nlease_seconds = 30\n' + extra)
    give_audit_key(workspace.config_path)


def _status(workspace, capsys) -> dict:
    capsys.readouterr()
    main(workspace.args("status", "--json"))
    return json.loads(capsys.readouterr().out)


def test_status_and_metrics_name_the_leader(workspace, capsys):
    _enable(workspace, '\n[metrics]\nenabled = true\nlisten = "127.0.0.1:0"\n')
    config = load_config(workspace.config_path)
    store = make_store(config.database)
    now = datetime.now(UTC)
    lease.take(store, "b-holder", now - timedelta(seconds=40), 30, "leader", "sync-b")
    taken, _ = lease.take(store, "b-holder", now, 30, "leader", "sync-b")  # a new term
    status = _status(workspace, capsys)
    assert status["leader"] == {"node": "sync-b", "since": now.isoformat(), "token": 2,
                                "until": taken.expires_at.isoformat()}
    assert not any("leader lease" in r for r in status["reasons"])
    metrics = scrape(config)
    assert metrics["rostersync_leader"] == {(("node", "sync-b"),): 1}
    assert metrics["rostersync_leader_token"][()] == 2
    assert metrics["rostersync_leader_since_timestamp_seconds"][()] == now.timestamp()


def test_without_a_leader_status_warns_and_the_metric_is_absent(workspace, capsys):
    _enable(workspace, '\n[metrics]\nenabled = true\nlisten = "127.0.0.1:0"\n')
    config = load_config(workspace.config_path)
    store = make_store(config.database)
    status = _status(workspace, capsys)
    assert status["leader"] is None
    assert "no node has led yet" in " ".join(status["reasons"])
    lease.take(store, "b-holder", datetime.now(UTC), 30, "leader", "sync-b")
    lease.release(store, "b-holder", "leader")
    status = _status(workspace, capsys)
    assert status["leader"] is None and status["status"] != "OK"
    assert "no node holds the leader lease (the last leader, node sync-b" in \
        " ".join(status["reasons"])
    assert "rostersync_leader" not in scrape(config)


def test_without_ha_the_status_document_has_no_leader(workspace, capsys):
    assert "leader" not in _status(workspace, capsys)
