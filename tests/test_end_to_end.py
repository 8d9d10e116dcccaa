"""The engine issue's acceptance path, driven through the command line against a real
scim2-server on 127.0.0.1."""

from __future__ import annotations

import json

from rostersync.console.cli import main
from tests.support import World, by_external_id, lms_users

PAST = "2026-01-15"


def run(capsys, workspace, *argv: str) -> tuple[int, dict]:
    code = main(workspace.args(*argv, "--json"))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def users(workspace) -> dict[str, dict]:
    found = by_external_id(lms_users(workspace.lms.base_url, workspace.token))
    duplicates = {k: len(v) for k, v in found.items() if len(v) > 1}
    assert not duplicates, f"duplicate LMS accounts: {duplicates}"
    return {k: v[0] for k, v in found.items()}


def test_first_sync_reaches_zero_drift_with_managers_resolved(capsys, workspace):
    code, report = run(capsys, workspace, "sync")
    assert code == 0, report
    assert report["counts"]["planned"] == {"create": 500}
    code, status = run(capsys, workspace, "status")
    assert status["drift_total"] == 0
    assert status["ops"]["succeeded"] == 500
    assert code == 0, status["reasons"]
    lms = users(workspace)
    assert len(lms) == 500
    ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    person = lms["E00123"]
    manager = lms[World.person(123)["Manager ID"]]
    assert person[ent]["manager"]["value"] == manager["id"]
    assert person[ent]["department"] == World.person(123)["Department"]
    assert person["userName"] == World.person(123)["Work Email"]

    # A second run finds nothing to do.
    code, report = run(capsys, workspace, "sync")
    assert code == 0
    assert report["counts"].get("planned") == {}


def test_lifecycle_edits_converge_in_one_run(capsys, workspace):
    assert run(capsys, workspace, "sync")[0] == 0
    rows = workspace.world.rows
    for i in (450, 451):  # leave, so that they can come back as rehires
        rows[f"E00{i}"].update({"Status": "Terminated", "Termination Date": PAST})
    workspace.world.write(workspace.csv_path)
    assert run(capsys, workspace, "sync")[0] == 0
    assert users(workspace)["E00450"]["active"] is False

    terminated = [f"E00{i}" for i in range(400, 410)]
    for key in terminated:
        rows[key].update({"Status": "Terminated", "Termination Date": PAST})
    transfers = [f"E00{i}" for i in range(300, 305)]
    for key in transfers:
        rows[key].update({"Department": "Finance", "Manager ID": "E00002"})
    hires = [f"E00{i}" for i in range(501, 504)]
    for i in range(501, 504):
        rows[f"E00{i}"] = World.person(i)
    for key in ("E00450", "E00451"):
        rows[key].update({"Status": "Active", "Termination Date": PAST,
                          "Hire Date": "2026-11-02"})
    rows["E00200"]["Work Email"] = "broken@@acme.example"
    rows["E00201"]["Termination Date"] = "2099-06-30"
    workspace.world.write(workspace.csv_path)

    code, report = run(capsys, workspace, "sync")
    assert code == 0, report
    lms = users(workspace)
    assert all(lms[k]["active"] is False for k in terminated)
    ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    for key in transfers:
        assert lms[key][ent]["department"] == "Finance"
        assert lms[key][ent]["manager"]["value"] == lms["E00002"]["id"]
    assert all(lms[k]["active"] is True for k in hires)
    assert lms["E00450"]["active"] is True and lms["E00451"]["active"] is True
    assert lms["E00200"]["userName"] == World.person(200)["Work Email"]  # last good state
    assert lms["E00201"]["active"] is True

    code, status = run(capsys, workspace, "status")
    assert {k: v for k, v in status["drift"].items() if v} == {"invalid": 1}
    assert status["terminations"]["scheduled"] == 1
    assert status["terminations"]["pending"] == 0
    assert code == 1  # WARNING: a record needs HR's attention
    code, pending = run(capsys, workspace, "ops", "list", "--status", "pending")
    assert [(op["employee_id"], op["kind"]) for op in pending] == [("E00201", "deactivate")]
    assert pending[0]["next_attempt_at"].startswith("2099-07-0")  # end of 30 June, Berlin


def test_truncated_feed_is_rejected_and_nothing_is_deactivated(capsys, workspace):
    assert run(capsys, workspace, "sync")[0] == 0
    kept = list(workspace.world.rows.values())[:200]
    workspace.world.write(workspace.csv_path, kept)
    code, report = run(capsys, workspace, "sync")
    assert code == 4
    assert report["status"] == "rejected"
    assert any("record count fell from 500 to 200" in r for r in report["reasons"])
    assert sum(1 for u in users(workspace).values() if u["active"]) == 500
    code, ops = run(capsys, workspace, "ops", "list", "--json")
    assert not [op for op in ops if op["kind"] == "deactivate"]
    code, status = run(capsys, workspace, "status")
    assert code == 2 and not status["last_feed"]["accepted"]


def test_mass_termination_is_held_until_approved(capsys, workspace):
    assert run(capsys, workspace, "sync")[0] == 0
    leavers = [f"E00{i}" for i in range(400, 460)]
    for key in leavers:
        workspace.world.rows[key].update({"Status": "Terminated", "Termination Date": PAST})
    workspace.world.write(workspace.csv_path)
    code, report = run(capsys, workspace, "sync")
    assert code == 3, report
    assert report["counts"]["held_new"] == 60
    assert sum(1 for u in users(workspace).values() if u["active"]) == 500
    code, held = run(capsys, workspace, "ops", "list", "--status", "held")
    assert len(held) == 60

    code, applied = run(capsys, workspace, "ops", "approve", "--run", str(report["run_id"]))
    assert code == 0, applied
    lms = users(workspace)
    assert all(lms[k]["active"] is False for k in leavers)
    code, audit_rows = run(capsys, workspace, "audit", "list")
    assert any(r["action"] == "approve" for r in audit_rows)
