"""The audit log against someone who can edit the database file (sqlite3, triggers
dropped) but cannot read the audit key: each rewrite the unkeyed chain let through is
caught, by the keyed chain, the signed checkpoints, or the head published outside the
database (status, metrics, alerts, reports)."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

import pytest

from rostersync.storage import audit, retention
from rostersync.storage.db import Store
from rostersync.sync import alerts
from rostersync.sync.clock import Clock
from rostersync.sync.config import load_config
from rostersync.sync.status import build_status
from tests.audit_support import Install, attacker, rewrite_from
from tests.test_metrics import scrape

pytestmark = pytest.mark.reliability  # `make reliability` runs them too


@pytest.fixture
def install(tmp_path, capsys) -> Install:
    site = Install(tmp_path)
    site.act(capsys, 6)
    return site


def verify(site: Install, capsys, *extra: str) -> tuple[int, dict]:
    code, out, _err = site.cli(capsys, "audit", "verify", "--json", *extra)
    return code, json.loads(out)


def test_an_intact_keyed_log_verifies(install, capsys):
    code, doc = verify(install, capsys)
    assert code == 0 and doc["ok"] and doc["keyed"] and doc["entries"] == 6
    assert doc["head"]["count"] == 6


def test_editing_a_row_and_recomputing_every_hash_fails(install, capsys):
    conn = attacker(install.db)
    conn.execute("UPDATE audit SET actor = 'mallory' WHERE id = 3")
    rewrite_from(conn, 3)  # every later link recomputed: the unkeyed chain accepted this
    code, doc = verify(install, capsys)
    assert code == 2 and doc["broken_at"] == 3
    assert "audit entry 3 was altered" in doc["message"]


def test_rewriting_the_whole_log_without_the_key_fails(install, capsys):
    conn = attacker(install.db)
    conn.execute("UPDATE audit SET detail = '{}'")
    rewrite_from(conn, 1)
    code, doc = verify(install, capsys)
    assert code == 2 and doc["broken_at"] == 1


def test_a_forged_checkpoint_hiding_a_deleted_prefix_fails(install, capsys):
    conn = attacker(install.db)
    through_hash, through_at = conn.execute(
        "SELECT hash, at FROM audit WHERE id = 3").fetchone()
    conn.execute("DELETE FROM audit WHERE id <= 3")
    # What retention writes, minus a signature the attacker cannot make.
    conn.execute("INSERT INTO audit_checkpoints(at, through_id, through_hash, through_at, "
                 "pruned, actor) VALUES (?,?,?,?,?,?)",
                 (through_at, 3, through_hash, through_at, 3, "retention"))
    code, doc = verify(install, capsys)
    assert code == 2 and "checkpoint 2 is unsigned" in doc["message"]


def test_a_checkpoint_with_a_made_up_signature_fails(install, capsys):
    conn = attacker(install.db)
    through_hash, through_at = conn.execute(
        "SELECT hash, at FROM audit WHERE id = 3").fetchone()
    conn.execute("DELETE FROM audit WHERE id <= 3")
    seal_mac = conn.execute("SELECT mac FROM audit_checkpoints WHERE kind = 'seal'").fetchone()
    for mac in (secrets.token_hex(32), seal_mac[0]):
        conn.execute("DELETE FROM audit_checkpoints WHERE kind = 'prune'")
        conn.execute("INSERT INTO audit_checkpoints(at, kind, through_id, through_hash, "
                     "through_at, pruned, actor, start_id, start_hash, mac) "
                     "VALUES (?,?,?,?,?,?,?,?,?,?)",
                     (through_at, "prune", 3, through_hash, through_at, 3, "retention", 4,
                      through_hash, mac))
        code, doc = verify(install, capsys)
        assert code == 2 and "checkpoint 2 does not carry a valid signature" in doc["message"]


def test_deleting_a_prefix_without_a_checkpoint_fails(install, capsys):
    attacker(install.db).execute("DELETE FROM audit WHERE id <= 2")
    code, doc = verify(install, capsys)
    assert code == 2 and "audit entries 1..2 are missing" in doc["message"]


def test_truncation_shows_against_the_published_head(install, capsys):
    anchor = install.anchor(capsys)
    assert anchor.startswith("6:")
    assert verify(install, capsys, "--expect-head", anchor)[0] == 0
    attacker(install.db).execute("DELETE FROM audit WHERE id > 4")
    # Within the database a shorter chain is valid in itself...
    code, doc = verify(install, capsys)
    assert code == 0 and doc["head"]["count"] == 4
    # ...but not against a head seen before.
    code, doc = verify(install, capsys, "--expect-head", anchor)
    assert code == 2 and "ends at entry 4, but the anchor saw entry 6" in doc["message"]
    # New entries take the deleted numbers; the anchor's entry is not the same one.
    install.act(capsys, 2)
    code, doc = verify(install, capsys, "--expect-head", anchor)
    assert code == 2 and "audit entry 6 is not the one the anchor saw" in doc["message"]


def test_the_anchor_edges(install, capsys):
    head = install.anchor(capsys)
    _count, digest = head.split(":")
    store = Store(install.db)
    five = store.scalar("SELECT hash FROM audit WHERE id = 5")
    assert verify(install, capsys, "--expect-head", f"6:{digest}")[0] == 0     # at the head
    assert verify(install, capsys, "--expect-head", f"5:{five}")[0] == 0      # one before
    assert verify(install, capsys, "--expect-head", f"7:{digest}")[0] == 2    # one beyond
    assert verify(install, capsys, "--expect-head", f"6:{digest[:16]}")[0] == 0  # 16 digits
    code, _out, err = install.cli(capsys, "audit", "verify", "--expect-head", f"6:{digest[:15]}")
    assert code == 2 and "16 to 64 hex digits, not 15" in err and "Traceback" not in err
    code, _out, err = install.cli(capsys, "audit", "verify", "--expect-head", f"6:{digest}0")
    assert code == 2 and "not 65" in err
    code, _out, err = install.cli(capsys, "audit", "verify", "--expect-head", "six")
    assert code == 2 and "is not COUNT:HASH" in err


def test_the_head_is_published_in_metrics_alerts_and_every_report(install, capsys):
    anchor = install.anchor(capsys)
    config = load_config(install.config)
    samples = scrape(config)
    assert samples["rostersync_audit_entries"][()] == 6
    [(labels, value)] = samples["rostersync_audit_head"].items()
    assert f"{dict(labels)['count']}:{dict(labels)['hash']}" == anchor and value == 1
    status = build_status(Store(install.db), config, Clock().now())
    assert alerts.notice("stale", True, "HRIS data is stale", status)["audit_head"] == anchor
    for name in ("terminations", "drift", "operator"):
        code, out, _err = install.cli(capsys, "report", name, "--json")
        assert code == 0 and json.loads(out)["audit_head"]["anchor"] == anchor
        for fmt in ("text", "html"):
            code, out, _err = install.cli(capsys, "report", name, "--format", fmt)
            assert code == 0 and anchor in out


def test_pruning_writes_a_signed_checkpoint_and_dropping_it_shows(install, capsys):
    store = Store(install.db)
    store.audit_key = install.key_file.read_text().strip().encode()
    later = Clock().now() + timedelta(days=10)
    result = retention.prune(store, later, {"audit": 1}, actor="auditor")
    assert result["deleted"]["audit"] == 5  # the newest entry is always kept
    code, doc = verify(install, capsys)
    assert code == 0 and doc["entries"] == 2, doc  # the kept one and the prune's own entry
    signed = store.rows("SELECT kind, mac FROM audit_checkpoints ORDER BY id")
    assert [c["kind"] for c in signed] == ["seal", "prune"] and all(c["mac"] for c in signed)
    attacker(install.db).execute("DELETE FROM audit_checkpoints WHERE kind = 'prune'")
    code, doc = verify(install, capsys)
    assert code == 2 and "audit entries 1..5 are missing" in doc["message"]


def test_an_unkeyed_log_is_sealed_at_migration_and_its_prefix_stays_checked(tmp_path, capsys):
    site = Install(tmp_path)
    site.key_file.unlink()  # an installation from before keys: nothing beside the config
    legacy = Store(site.db)
    for i in range(3):
        audit.record(legacy, Clock().now(), "retry", f"E{i}", {"ops": [i]}, actor="bob")
    assert not audit.verify(legacy).keyed
    site.act(capsys, 2)  # the first command makes the key; its first entry seals the log
    assert site.key_file.exists()
    code, doc = verify(site, capsys)
    assert code == 0 and doc["keyed"] and "after 3 unkeyed entries" in doc["message"]
    conn = attacker(site.db)
    conn.execute("UPDATE audit SET target = 'E9' WHERE id = 2")
    rewrite_from(conn, 2)
    code, doc = verify(site, capsys)
    assert code == 2 and "entries up to 3 are not the ones checkpoint 1 sealed" in doc["message"]


def test_an_unkeyed_entry_slipped_in_after_the_seal_fails(install, capsys):
    conn = attacker(install.db)
    last = conn.execute("SELECT id, hash, at FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    conn.execute("INSERT INTO audit(id, at, actor, action, target, detail, prev_hash, hash) "
                 "VALUES (?,?,?,?,?,?,?,?)",
                 (last[0] + 1, last[2], "root", "approve", None, "{}", last[1], "0" * 64))
    rewrite_from(conn, last[0] + 1)
    code, doc = verify(install, capsys)
    assert code == 2 and doc["broken_at"] == 7
