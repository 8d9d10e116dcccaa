"""The audit key lives outside the database: beside the config (written by `init`,
owner-only) or in the environment. A key others can read, one too short, a missing one on
a keyed log, or another key than the sealing one is one sentence, never a second chain."""

from __future__ import annotations

import json
import os
import stat

import pytest

from rostersync.storage.audit_key import KEY_ENV, KEY_FILE_ENV
from rostersync.storage.db import Store
from tests.audit_support import Install

pytestmark = pytest.mark.reliability  # `make reliability` runs them too


def test_init_writes_an_owner_only_key_and_force_keeps_it(tmp_path, capsys):
    site = Install(tmp_path)
    assert stat.S_IMODE(site.key_file.stat().st_mode) == 0o600
    key = site.key_file.read_text()
    assert len(key.strip()) == 64 and key.strip() not in capsys.readouterr().out
    code, out, _err = site.cli_init(capsys, "--force")
    assert code == 0 and "kept the audit key" in out and site.key_file.read_text() == key


@pytest.mark.parametrize(("mode", "refused"), [(0o600, False), (0o400, False), (0o640, True),
                                               (0o604, True), (0o644, True)])
def test_a_key_file_others_can_read_is_refused(tmp_path, capsys, mode, refused):
    site = Install(tmp_path)
    os.chmod(site.key_file, mode)
    code, _out, err = site.cli(capsys, "pause")
    if not refused:
        assert code == 0, err
        return
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"{site.key_file} is readable by others (mode {mode:04o})" in err
    assert f"chmod 600 {site.key_file}" in err
    assert Store(site.db).scalar("SELECT count(*) FROM audit") == 0


@pytest.mark.parametrize(("length", "ok"), [(31, False), (32, True), (33, True)])
def test_an_environment_key_needs_32_characters(tmp_path, capsys, monkeypatch, length, ok):
    site = Install(tmp_path)
    site.key_file.unlink()
    monkeypatch.setenv(KEY_ENV, "k" * length)
    code, _out, err = site.cli(capsys, "pause")
    assert (code == 0) is ok
    if not ok:
        assert f"the audit key in ${KEY_ENV} is 31 characters long" in err
        assert "k" * 31 not in err
    assert not site.key_file.exists()  # an environment key: no file is made beside it


def test_a_key_file_named_by_the_environment(tmp_path, capsys, monkeypatch):
    site = Install(tmp_path)
    elsewhere = tmp_path / "secrets" / "audit.key"
    elsewhere.parent.mkdir()
    site.key_file.rename(elsewhere)
    monkeypatch.setenv(KEY_FILE_ENV, str(elsewhere))
    site.act(capsys, 2)
    code, out, _err = site.cli(capsys, "audit", "verify")
    assert code == 0 and "keyed" in out and not site.key_file.exists()


def test_a_keyed_log_without_its_key_refuses_to_write_and_to_verify(tmp_path, capsys):
    site = Install(tmp_path)
    site.act(capsys, 2)
    site.key_file.unlink()
    code, _out, err = site.cli(capsys, "pause")
    assert code == 2 and "is keyed, but no audit key was found" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not site.key_file.exists()  # never a new key for a keyed log: no second chain
    code, out, _err = site.cli(capsys, "audit", "verify")
    assert code == 2 and "no audit key was found" in out
    assert site.cli(capsys, "status", "--json")[0] in (0, 1, 2)  # reading needs no key


def test_another_key_than_the_sealing_one_is_refused(tmp_path, capsys, monkeypatch):
    site = Install(tmp_path)
    site.act(capsys, 2)
    monkeypatch.setenv(KEY_ENV, "x" * 64)
    code, _out, err = site.cli(capsys, "pause")
    assert code == 2 and f"the audit key from ${KEY_ENV} is not the key" in err
    assert "x" * 32 not in err
    code, out, _err = site.cli(capsys, "audit", "verify")
    assert code == 2 and "does not carry a valid signature" in out
    monkeypatch.delenv(KEY_ENV)
    assert site.cli(capsys, "audit", "verify")[0] == 0


def test_the_key_never_reaches_the_database(tmp_path, capsys):
    site = Install(tmp_path)
    site.act(capsys, 3)
    key = site.key_file.read_text().strip()
    for path in site.folder.glob("rostersync.db*"):
        assert key.encode() not in path.read_bytes()


def test_doctor_names_the_audit_key_and_refuses_a_readable_one(tmp_path, capsys):
    site = Install(tmp_path)
    code, out, _err = site.cli(capsys, "doctor", "--json")
    [check] = [c for c in json.loads(out)["checks"] if c["check"] == "audit key"]
    assert check["result"] == "ok" and check["detail"] == f"from {site.key_file}"
    os.chmod(site.key_file, 0o644)
    code, out, _err = site.cli(capsys, "doctor", "--json")
    assert code == 2
    [check] = [c for c in json.loads(out)["checks"] if c["check"] == "audit key"]
    assert check["result"] == "error" and "readable by others (mode 0644)" in check["detail"]
    site.key_file.unlink()
    _code, out, _err = site.cli(capsys, "doctor", "--json")
    [check] = [c for c in json.loads(out)["checks"] if c["check"] == "audit key"]
    assert check["result"] == "ok" and "the next command writes" in check["detail"]
    assert not site.key_file.exists()  # doctor looks; it never writes a key
