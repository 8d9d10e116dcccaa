"""Retention against the audit chain, end to end (issue 17, "not yet tried").

An installation made by `rostersync init`; audit entries written by the product (four of
them ten days ago, through the same writer the commands use, then three operator actions
through the CLI); head anchors taken with `status --json` along the way, as monitoring
keeps them. Then the real `rostersync prune` command with `audit_days = 1`: `audit verify`
passes, alone and with every anchor taken before the prune (at the head, and of entries
the prune deleted, which its signed checkpoint covers); truncating the log after the prune
still fails against the anchor taken before it. tests/test_audit_attacks.py calls
storage.retention.prune() directly and checks no anchor across a prune; this goes through
the command line.
"""

from __future__ import annotations

import json
from datetime import timedelta

from rostersync.storage import audit
from rostersync.storage.db import Store
from rostersync.sync.clock import Clock
from tests.audit_support import Install, attacker
from tests.reliability import figures

OLD = 4  # entries older than the retention horizon


def verify(site: Install, capsys, *extra: str) -> tuple[int, dict]:
    code, out, _err = site.cli(capsys, "audit", "verify", "--json", *extra)
    return code, json.loads(out)


def test_prune_keeps_audit_verify_and_every_earlier_anchor_passing(tmp_path, capsys):
    site = Install(tmp_path)
    site.config.write_text(site.config.read_text().replace(
        "# audit_days = 2555", "audit_days = 1").replace("# runs_days = 400", "runs_days = 1"))
    store = Store(site.db)
    store.audit_key = site.key_file.read_text().strip().encode()
    ten_days_ago = Clock().now() - timedelta(days=10)
    anchors: dict[int, str] = {}
    for n in range(OLD):
        audit.record(store, ten_days_ago + timedelta(minutes=n), "resync", f"E{n:05d}",
                     {"n": n}, actor="ops")
        anchors[n + 1] = site.anchor(capsys)
    store.close()
    site.act(capsys, 3)
    head = site.anchor(capsys)
    assert head.startswith("7:") and anchors[2].startswith("2:")

    code, out, _err = site.cli(capsys, "prune", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["deleted"]["audit"] == OLD
    assert site.anchor(capsys) == head  # a dry run changes nothing
    code, out, err = site.cli(capsys, "prune", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["deleted"]["audit"] == OLD, (out, err)
    assert doc["audit_chain"]["ok"], doc
    figures.add("prune: audit entries pruned through the CLI", OLD)

    code, result = verify(site, capsys)
    assert code == 0 and result["ok"], result
    # Every anchor taken before the prune still holds: the head it saw is kept, and the
    # entries it deleted are covered by its signed checkpoint.
    for anchor in (head, *anchors.values()):
        code, result = verify(site, capsys, "--expect-head", anchor)
        assert code == 0, (anchor, result)
        figures.add("prune: anchors taken before the prune that verify after it")
    # The checkpoint names the last entry it deleted, hash included: an anchor of that
    # entry with another hash fails. (Of the entries before it only the count is left.)
    through = anchors[OLD]
    forged = f"{OLD}:{'0' * 64}"
    assert forged != through
    code, result = verify(site, capsys, "--expect-head", forged)
    assert code == 2 and f"audit entry {OLD} is not the one the anchor saw" in \
        result["message"], result
    after = site.anchor(capsys)
    assert after.startswith("8:")  # the prune's own entry; the count is entries ever written
    code, out, _err = site.cli(capsys, "prune", "--json")  # nothing older is left
    assert code == 0 and json.loads(out)["deleted"]["audit"] == 0
    assert verify(site, capsys, "--expect-head", after)[0] == 0

    # Truncating the log after the prune shows against the anchor taken before it.
    attacker(site.db).execute("DELETE FROM audit WHERE id > 5")
    code, result = verify(site, capsys, "--expect-head", head)
    assert code == 2 and "anchor saw entry 7" in result["message"], result
    code, result = verify(site, capsys, "--expect-head", after)
    assert code == 2, result
    figures.add("prune: truncations after a prune caught by an earlier anchor", 2)
