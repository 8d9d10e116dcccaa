"""The command line's promises: one-sentence errors, exit codes, owner-only files,
audit entries, and a headless engine."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys

from rostersync.console.cli import main
from rostersync.storage import audit
from rostersync.storage.db import Store
from tests.support import Refusing


def test_init_writes_a_private_sample_that_loads(tmp_path, capsys):
    path = tmp_path / "rostersync.toml"
    assert main(["init", str(path)]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    from rostersync.sync.config import load_config
    config = load_config(path)
    assert config.lms.token_env == "ROSTERSYNC_LMS_TOKEN"
    assert "token" not in path.read_text().split("token_env")[0].lower()
    assert main(["init", str(path)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_bad_config_is_one_sentence_naming_the_key(tmp_path, capsys):
    path = tmp_path / "rostersync.toml"
    main(["init", str(path)])
    text = path.read_text().replace("page_size = 200", "page_size = -3")
    path.write_text(text)
    assert main(["status", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "lms.page_size" in err and "-3" in err and "Traceback" not in err

    path.write_text(text.replace("page_size = -3", "page_size = 200\ncolour = 1"))
    assert main(["status", "--config", str(path)]) == 2
    assert "'lms.colour' is not a known setting" in capsys.readouterr().err

    assert main(["status", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_missing_token_variable_is_named(workspace, capsys, monkeypatch):
    monkeypatch.delenv("ROSTERSYNC_TEST_LMS_TOKEN")
    code = main(workspace.args("sync"))
    err = capsys.readouterr().err
    assert code == 2
    assert "ROSTERSYNC_TEST_LMS_TOKEN is not set" in err


def test_malformed_rows_become_invalid_drift_naming_file_line_and_field(workspace, capsys):
    text = workspace.csv_path.read_text().splitlines()
    text[5] = text[5].replace("@acme.example", "@@acme.example", 1)
    text[9] = text[9] + ",extra,fields"
    text[12] = text[12].replace("2020-03-01", "2020-13-45", 1)
    workspace.csv_path.write_text("\r\n".join(text) + "\r\n")
    assert main(workspace.args("sync", "--json")) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["drift"]["invalid"] == 3
    assert report["counts"]["planned"] == {"create": 497}
    db = sqlite3.connect(workspace.folder / "rostersync.db")
    details = sorted(json.loads(d)["problems"][0] for (d,) in db.execute(
        "SELECT detail FROM drift WHERE kind = 'invalid' AND resolved_at IS NULL"))
    assert details[0] == "employees.csv:10: has 17 fields, the header has 15"
    assert details[1].startswith("employees.csv:13 field hire_date")
    assert details[2].startswith("employees.csv:6 field email") and "@@acme" in details[2]


def test_status_exit_codes_follow_the_monitoring_convention(workspace, capsys):
    assert main(workspace.args("status")) == 1  # never synced: WARNING
    capsys.readouterr()
    assert main(workspace.args("sync")) == 0
    capsys.readouterr()
    assert main(workspace.args("status")) == 0
    assert "rostersync OK" in capsys.readouterr().out
    assert main(workspace.args("pause", "--reason", "maintenance window")) == 0
    assert main(workspace.args("status")) == 2
    assert "paused" in capsys.readouterr().out
    assert main(workspace.args("sync")) == 5
    assert main(workspace.args("resume")) == 0


def test_operator_actions_are_audited_and_the_chain_detects_tampering(workspace, capsys):
    main(workspace.args("sync"))
    main(workspace.args("ops", "suppress", "--employee", "E00002", "--reason", "HR asked",
                        "--until", "7d"))
    main(workspace.args("ops", "unsuppress", "E00002"))
    capsys.readouterr()
    assert main(workspace.args("audit", "verify", "--json")) == 0
    check = json.loads(capsys.readouterr().out)
    assert check["ok"] and check["entries"] == 3
    store = Store(workspace.folder / "rostersync.db")
    rows = audit.entries(store)
    assert [r["action"] for r in rows] == ["unsuppress", "suppress", "sync"]
    assert rows[1]["actor"] and json.loads(rows[1]["detail"])["reason"] == "HR asked"
    db = sqlite3.connect(workspace.folder / "rostersync.db")
    try:
        db.execute("UPDATE audit SET actor = 'mallory' WHERE id = 2")
        raise AssertionError("the audit log accepted an UPDATE")
    except sqlite3.DatabaseError as exc:
        assert "append-only" in str(exc)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET actor = 'mallory' WHERE id = 2")
    db.commit()
    assert main(workspace.args("audit", "verify")) == 2
    assert "entry 2 was altered" in capsys.readouterr().out


def test_database_is_owner_only(workspace, capsys):
    main(workspace.args("sync"))
    mode = stat.S_IMODE(os.stat(workspace.folder / "rostersync.db").st_mode)
    assert mode == 0o600


def test_engine_and_storage_never_import_textual():
    code = ("import sys, sync.engine, sync.scheduler, sync.status, storage.db; "
            "print(any(m == 'textual' or m.startswith('textual.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_secret_never_reaches_output_or_database(workspace, capsys):
    main(workspace.args("sync", "--json"))
    main(workspace.args("status", "--json"))
    main(workspace.args("ops", "list", "--json"))
    captured = capsys.readouterr()
    assert workspace.token not in captured.out + captured.err
    raw = b"".join(p.read_bytes() for p in workspace.folder.glob("rostersync.db*"))
    assert workspace.token.encode() not in raw


def test_dead_operation_is_retried_by_the_operator(workspace, capsys):
    assert main(workspace.args("sync")) == 0
    workspace.world.rows["E00042"]["Job Title"] = "Principal"
    workspace.world.write(workspace.csv_path)
    body = (b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400",'
            b'"scimType":"invalidValue","detail":"title is too long for this LMS"}')
    workspace.lms.fault = Refusing(lambda method, path: (
        400, {"Content-Type": "application/scim+json"}, body) if method == "PATCH" else None)
    capsys.readouterr()
    assert main(workspace.args("sync", "--json")) == 1
    assert json.loads(capsys.readouterr().out)["counts"]["applied"] == {"dead": 1}
    assert main(workspace.args("ops", "list", "--status", "dead", "--json")) == 0
    dead = json.loads(capsys.readouterr().out)
    assert dead[0]["error_class"] == "data" and "too long" in dead[0]["last_error"]
    assert main(workspace.args("ops", "show", str(dead[0]["id"]))) == 0
    assert "too long" in capsys.readouterr().out
    workspace.lms.fault = None
    assert main(workspace.args("ops", "retry", str(dead[0]["id"]), "--json")) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["applied"] == {"succeeded": 1}
    assert main(workspace.args("ops", "retry", str(dead[0]["id"]))) == 2
    assert "only failed or dead" in capsys.readouterr().err


def test_doctor_reports_each_check(workspace, capsys):
    assert main(workspace.args("doctor", "--json")) in (0, 1)
    doc = json.loads(capsys.readouterr().out)
    results = {c["check"]: c["result"] for c in doc["checks"]}
    assert results["config"] == "ok" and results["hris"] == "ok" and results["lms"] == "ok"
    os.environ["ROSTERSYNC_TEST_LMS_TOKEN"] = "wrong"
    try:
        assert main(workspace.args("doctor", "--json")) == 2
        doc = json.loads(capsys.readouterr().out)
        lms = next(c for c in doc["checks"] if c["check"] == "lms")
        assert lms["result"] == "error" and "wrong" not in lms["detail"]
    finally:
        os.environ["ROSTERSYNC_TEST_LMS_TOKEN"] = workspace.token


def test_delta_without_a_delta_feed_is_a_config_error(workspace, capsys):
    assert main(workspace.args("sync", "--delta")) == 2
    err = capsys.readouterr().err
    assert "set hris.delta_path" in err and "Traceback" not in err
