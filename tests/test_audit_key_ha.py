"""Several nodes on one database share one audit log, so they must share its key: with
[ha] enabled no node makes a key of its own (the first to write would lock the others out
of the log), a node without one is refused in one sentence, and `serve` or the console
with the wrong key is refused at start, not at an operator's first action."""

from __future__ import annotations

import json
import os

import pytest

from rostersync.storage.audit_key import KEY_FILE_ENV
from rostersync.storage.db import Store
from tests.audit_support import Install

pytestmark = pytest.mark.reliability  # `make reliability` runs them too


def _ha(site: Install, enabled: bool = True) -> None:
    text = site.config.read_text()
    site.config.write_text(text.replace(
        "[ha]                              # several",
        f'[ha]\nenabled = {"true" if enabled else "false"}\nnode = "node-a"\n#', 1)
        .replace("enabled = false                   # true: nodes", "# true: nodes", 1))


@pytest.mark.parametrize("ha", [True, False])
def test_with_ha_a_node_without_a_key_is_refused_and_makes_none(tmp_path, capsys, ha):
    site = Install(tmp_path)
    site.key_file.unlink()
    _ha(site, ha)
    code, _out, err = site.cli(capsys, "pause", "--reason", "window")
    if not ha:  # one node: the key is made beside the config, as ever
        assert code == 0, err
        assert site.key_file.exists()
        return
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "[ha] is enabled, so every node must sign the audit log with the same key" in err
    assert f"copy the key file of the first node to {site.key_file}" in err
    assert not site.key_file.exists()
    assert Store(site.db).scalar("SELECT count(*) FROM audit") == 0


def test_with_ha_the_shared_key_named_by_the_environment_is_used(tmp_path, capsys,
                                                                 monkeypatch):
    site = Install(tmp_path)
    shared = tmp_path / "shared.key"
    site.key_file.rename(shared)
    _ha(site)
    monkeypatch.setenv(KEY_FILE_ENV, str(shared))
    code, _out, err = site.cli(capsys, "pause", "--reason", "window")
    assert code == 0, err
    assert not site.key_file.exists()
    code, out, err = site.cli(capsys, "audit", "verify")
    assert code == 0, err
    assert "chain intact (keyed;" in out


def test_two_nodes_with_their_own_keys_the_second_is_refused_at_serve(tmp_path, capsys):
    """The trap: node-b's key file is not node-a's. Its serve stops before it campaigns."""
    site = Install(tmp_path)
    _ha(site)
    assert site.cli(capsys, "pause", "--reason", "seal")[0] == 0  # node-a seals the log
    node_b = tmp_path / "node-b.toml"
    node_b.write_text(site.config.read_text().replace('node = "node-a"', 'node = "node-b"'))
    own = tmp_path / "node-b.auditkey"
    with os.fdopen(os.open(own, os.O_CREAT | os.O_WRONLY, 0o600), "w") as f:
        f.write("b" * 64)
    from rostersync.console.cli import main

    capsys.readouterr()
    code = main(["serve", "--config", str(node_b)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"the audit key from {own} is not the key the audit log" in err
    store = Store(site.db)
    assert store.scalar("SELECT count(*) FROM lease WHERE name = 'leader'") == 0
    assert store.scalar("SELECT count(*) FROM audit") == 1


def test_serve_on_a_keyed_log_without_any_key_is_refused_at_start(tmp_path, capsys,
                                                                   monkeypatch):
    site = Install(tmp_path)
    assert site.cli(capsys, "pause", "--reason", "seal")[0] == 0
    site.key_file.unlink()
    monkeypatch.setenv(KEY_FILE_ENV, "")
    code, _out, err = site.cli(capsys, "serve")
    assert code == 2 and err.count("\n") == 1
    assert "is keyed, but no audit key was found" in err
    assert not site.key_file.exists()


def test_doctor_names_a_missing_key_with_ha(tmp_path, capsys):
    site = Install(tmp_path)
    site.key_file.unlink()
    _ha(site)
    _code, out, _err = site.cli(capsys, "doctor", "--json")
    assert '"check": "audit key"' in out
    assert _doctor_line(out, "audit key")["detail"].startswith(
        "[ha] is enabled, so every node must sign the audit log with the same key")


def _doctor(site: Install, capsys, config=None) -> tuple[int, list[dict]]:
    from rostersync.console.cli import main

    capsys.readouterr()
    code = main(["doctor", "--json", "--config", str(config or site.config)])
    return code, json.loads(capsys.readouterr().out)["checks"]


def _doctor_line(out: str | list[dict], check: str) -> dict:
    checks = json.loads(out)["checks"] if isinstance(out, str) else out
    found = [c for c in checks if c["check"] == check]
    return found[-1]


def _second_node(site: Install, tmp_path, key: str | None) -> object:
    node_b = tmp_path / "node-b" / "rostersync.toml"
    node_b.parent.mkdir()
    node_b.write_text(site.config.read_text()
                      .replace('node = "node-a"', 'node = "node-b"')
                      .replace('path = "rostersync.db"', f'path = "{site.db}"'))
    if key is not None:
        with os.fdopen(os.open(node_b.parent / "rostersync.auditkey",
                               os.O_CREAT | os.O_WRONLY, 0o600), "w") as f:
            f.write(key)
    return node_b


@pytest.mark.parametrize("same_key", [True, False])
def test_doctor_on_a_second_node_compares_its_key_with_the_seal(tmp_path, capsys, same_key):
    """Setting up node-b: doctor says whether its key is the one the log was sealed
    with, before serve would refuse to start."""
    site = Install(tmp_path)
    _ha(site)
    assert site.cli(capsys, "pause", "--reason", "seal")[0] == 0  # node-a seals the log
    key = site.key_file.read_text().strip() if same_key else "b" * 64
    node_b = _second_node(site, tmp_path, key)
    code, checks = _doctor(site, capsys, node_b)
    line = _doctor_line(checks, "audit key")
    if same_key:
        assert line == {"check": "audit key", "result": "ok",
                        "detail": "it is the key the audit log was sealed with"}
    else:
        assert code == 2 and line["result"] == "error"
        assert line["detail"] == (f"the audit key from {node_b.parent / 'rostersync.auditkey'}"
                                  f" is not the key the audit log in {site.db} was sealed with")
    assert Store(site.db).scalar("SELECT count(*) FROM audit") == 1  # doctor wrote nothing


def test_doctor_names_a_keyed_log_whose_key_is_gone(tmp_path, capsys, monkeypatch):
    """One node: "the next command writes a key" is not true of a keyed log; doctor
    says the key is missing, as the commands would."""
    site = Install(tmp_path)
    assert site.cli(capsys, "pause", "--reason", "seal")[0] == 0
    site.key_file.unlink()
    monkeypatch.setenv(KEY_FILE_ENV, "")
    code, checks = _doctor(site, capsys)
    assert code == 2
    assert _doctor_line(checks, "audit key")["detail"].startswith(
        f"the audit log in {site.db} is keyed, but no audit key was found")
    assert not site.key_file.exists()


def test_doctor_on_a_fresh_install_creates_no_database(tmp_path, capsys):
    site = Install(tmp_path)
    _code, checks = _doctor(site, capsys)
    assert _doctor_line(checks, "audit key")["result"] == "ok"
    assert not site.db.exists()


def test_doctor_without_the_lms_token_still_checks_the_database_and_the_key(
        tmp_path, capsys, monkeypatch):
    site = Install(tmp_path)
    assert site.cli(capsys, "pause", "--reason", "seal")[0] == 0
    token_env = next(line.split('"')[1] for line in site.config.read_text().splitlines()
                     if line.startswith("token_env"))
    monkeypatch.delenv(token_env, raising=False)
    code, checks = _doctor(site, capsys)
    names = [c["check"] for c in checks]
    assert code == 2 and "lms" not in names
    assert _doctor_line(checks, "lms credentials")["result"] == "error"
    assert "database folder" in names
    assert _doctor_line(checks, "audit key")["detail"] == (
        "it is the key the audit log was sealed with")
