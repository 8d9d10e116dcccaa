"""Several nodes on one database share one audit log, so they must share its key: with
[ha] enabled no node makes a key of its own (the first to write would lock the others out
of the log), a node without one is refused in one sentence, and `serve` or the console
with the wrong key is refused at start, not at an operator's first action."""

from __future__ import annotations

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
    assert "[ha] is enabled: every node needs the same key" in out
