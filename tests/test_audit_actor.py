"""Who did it: the real uid's user name, whatever SUDO_USER, LOGNAME or USER say; --actor
recorded beside it, never instead of it; and nothing an operator or HR typed can drive the
terminal of whoever reads it back."""

from __future__ import annotations

import json
import os
import pwd

import pytest

from rostersync.console.safe_text import escape_controls, escape_output
from rostersync.storage import audit
from rostersync.storage.db import Store
from rostersync.sync.clock import Clock
from tests.audit_support import Install, attacker, rewrite_from

pytestmark = pytest.mark.reliability  # `make reliability` runs them too

ME = pwd.getpwuid(os.getuid()).pw_name
ESC, BEL, RLO, CSI_CLEAR = "\x1b", "\x07", "\u202e", "\x1b[2J"


def test_the_actor_is_the_real_uid_whatever_the_environment_says(tmp_path, capsys,
                                                                  monkeypatch):
    site = Install(tmp_path)
    for name in ("SUDO_USER", "LOGNAME", "USER"):
        monkeypatch.setenv(name, "mallory")
    site.act(capsys, 1)
    [entry] = audit.entries(Store(site.db))
    assert entry["actor"] == ME and entry["os_user"] == ME
    assert audit.current_actor() == ME


def test_a_given_actor_is_recorded_beside_the_os_user(tmp_path, capsys):
    site = Install(tmp_path)
    code, _out, err = site.cli(capsys, "pause", "--actor", "alice")
    assert code == 0, err
    [entry] = audit.entries(Store(site.db))
    assert (entry["actor"], entry["os_user"]) == ("alice", ME)
    code, out, _err = site.cli(capsys, "audit", "list")
    assert f"{ME} (as alice)" in out
    # The OS user is inside the keyed link: rewriting it shows.
    conn = attacker(site.db)
    conn.execute("UPDATE audit SET os_user = 'alice'")
    rewrite_from(conn, 1)
    code, out, _err = site.cli(capsys, "audit", "verify")
    assert code == 2 and "entry 1 was altered" in out


@pytest.mark.parametrize("name", ["", "  ", f"bob{ESC}[31m", f"bob{RLO}", "bob\nroot"])
def test_a_given_actor_with_control_characters_is_refused(tmp_path, capsys, name):
    site = Install(tmp_path)
    code, _out, err = site.cli(capsys, "pause", "--actor", name)
    assert code == 2 and "--actor" in err and ESC not in err and RLO not in err
    assert Store(site.db).scalar("SELECT count(*) FROM audit") == 0


@pytest.mark.parametrize(("raw", "shown"), [
    (f"a{ESC}]0;pwned{BEL}b", "a\\x1b]0;pwned\\x07b"),
    (f"evil{RLO}txt.exe", "evil\\u202etxt.exe"),
    ("one\ntwo\rthree\tfour", "one\\x0atwo\\x0dthree\\x09four"),
    ("\u2066isolate\u2069 \u200fmark", "\\u2066isolate\\u2069 \\u200fmark"),
    ("\x9bC1 and DEL\x7f", "\\x9bC1 and DEL\\x7f"),
    ("Zoë Ångström 山田", "Zoë Ångström 山田"),
    (None, ""),
])
def test_escape_controls(raw, shown):
    assert escape_controls(raw) == shown


def test_escape_output_keeps_lines_and_csv_line_ends():
    assert escape_output("a\tb\r\nc\n") == "a\tb\r\nc\n"
    assert escape_output(f"x\ry{ESC}[2J{BEL}") == "x\\x0dy\\x1b[2J\\x07"


def test_audit_list_escapes_actor_target_and_detail(tmp_path, capsys):
    site = Install(tmp_path)
    site.act(capsys, 1)  # keys and seals the log, as any command would
    store = Store(site.db)
    if site.key_file.exists():
        store.audit_key = site.key_file.read_text().strip().encode()
    hostile = f"ops{ESC}]0;owned{BEL}{RLO}"
    audit.record(store, Clock().now(), "suppress", f"E1{CSI_CLEAR}",
                 {"reason": f"HR{ESC}[31m said"}, actor=hostile)
    code, out, _err = site.cli(capsys, "audit", "list")
    assert code == 0
    assert ESC not in out and BEL not in out and RLO not in out
    assert "ops\\x1b]0;owned\\x07\\u202e" in out and "E1\\x1b[2J" in out
    code, out, _err = site.cli(capsys, "audit", "list", "--json")
    assert ESC not in out and json.loads(out)[0]["actor"] == hostile


def test_other_commands_escape_what_they_print(tmp_path, capsys):
    site = Install(tmp_path)
    code, _out, err = site.cli(capsys, "pause", "--reason", f"maintenance{CSI_CLEAR}{RLO}")
    assert code == 0, err
    code, out, _err = site.cli(capsys, "status")
    assert "maintenance\\x1b[2J\\u202e" in out and ESC not in out and RLO not in out
