"""Security hardening (issue 17, items 1-2 and the weak spots): plain HTTP only to
loopback or by an explicit allow_insecure_http that stays in sight; CSV cells a
spreadsheet would run are neutralised; a secret pasted into a *_env key is never echoed;
alert commands see an allow-listed environment; report and alert files are owner-only;
`init` refuses bad targets in one sentence; the metrics textfile resolves beside the
config; `sync --json` always prints one document; a closed pipe ends quietly.

Real parts throughout: the SCIM sandbox and a webhook receiver on 127.0.0.1, SQLite
files, real subprocesses and pipes."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import stat
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rostersync.console.cli import main
from rostersync.sandbox import alert_file
from rostersync.storage import lease as lease_store
from rostersync.storage.db import Store
from rostersync.sync import config_safety
from rostersync.sync.alerts import Alerter, Channel, command_env
from rostersync.sync.config import ConfigError, config_from_dict, load_config
from rostersync.sync.config_realtime import CommandChannel
from rostersync.sync.metrics import MetricsService
from rostersync.sync.reports.tabular import FORMULA_STARTS, neutralise, to_csv
from tests.reliability import figures
from tests.support import TOKEN_ENV

pytestmark = pytest.mark.reliability

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SECRET = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"  # shaped like a GitHub token
DDE = "=cmd|' /C calc'!A0"  # OWASP's example of a formula that runs a program


def example(name: str) -> dict:
    return tomllib.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)


# -- 1. cleartext tokens -----------------------------------------------------------------

@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.0", True), ("127.255.255.255", True),  # the /8's edges
    ("126.255.255.255", False), ("128.0.0.0", False),  # just outside it
    ("[::1]", True), ("[::2]", False), ("[::]", False),
    ("localhost", True), ("LOCALHOST", True), ("localhost.example.com", False),
    ("127.0.0.1.nip.io", False), ("127.0.0.1@lms.example.com", False), ("10.0.0.1", False),
])
def test_plain_http_is_cleartext_unless_the_host_is_loopback(host, loopback):
    assert config_safety.is_cleartext(f"http://{host}:8080/v2") is not loopback
    figures.add("security: hosts tried against the loopback rule")
    assert not config_safety.is_cleartext(f"https://{host}/v2")  # TLS: always fine


# Each connector section with a URL key, as its example config writes it.
SECTIONS = [
    ("bamboohr.toml", "hris", "base_url"), ("workday.toml", "hris", "base_url"),
    ("workday.toml", "hris", "token_url"), ("successfactors.toml", "hris", "base_url"),
    ("successfactors.toml", "hris", "token_url"), ("bamboohr.toml", "lms", "base_url"),
    ("moodle.toml", "lms", "base_url"), ("canvas.toml", "lms", "base_url"),
]


@pytest.mark.parametrize("name, section, key", SECTIONS)
def test_every_connector_refuses_plain_http_beyond_loopback(name, section, key):
    data = example(name)
    if key == "token_url" and data[section].get("auth") != "oauth":
        data[section]["auth"] = "oauth"
        data[section].update({"workday.toml": {"client_id": "c", "client_secret_env": "CS",
                                               "refresh_token_env": "RT"},
                              "successfactors.toml": {"client_id": "c", "user_id": "u",
                                                      "private_key_env": "PK"}}[name])
    data[section][key] = "http://user:pw@hr.example.com:8080/x"
    try:
        config_from_dict(data)
    except ConfigError as exc:
        message = str(exc)
        assert f"'{section}.{key}'" in message
        assert "plain http://" in message and f"{section}.allow_insecure_http" in message
        assert "pw" not in message and "user" not in message  # never the credentials
    else:
        pytest.fail(f"{section}.{key} accepted plain http:// to another host")
    data[section]["allow_insecure_http"] = True
    assert config_from_dict(data) is not None
    data[section][key] = "http://127.0.0.1:8080/x"  # loopback: no allow needed
    del data[section]["allow_insecure_http"]
    assert config_from_dict(data) is not None
    figures.add("security: URL keys refusing plain http beyond loopback")


def test_the_alert_webhook_refuses_plain_http_beyond_loopback(monkeypatch):
    data = example("bamboohr.toml")
    data["alerts"] = {"channels": [{"type": "webhook", "url": "http://hooks.example.com/x"}]}
    with pytest.raises(ConfigError, match=r"'alerts\.channels\.0\.url'.*plain http://"):
        config_from_dict(data)
    data["alerts"]["channels"][0]["allow_insecure_http"] = True
    config_from_dict(data)
    # A URL named by a variable is a secret: checked when read, and never shown.
    secret_url = "http://hooks.example.com/services/T000/B000/XXXXSECRETXXXX"
    monkeypatch.setenv("ROSTERSYNC_TEST_HOOK", secret_url)
    data["alerts"] = {"channels": [{"type": "webhook", "url_env": "ROSTERSYNC_TEST_HOOK"}]}
    config = config_from_dict(data)
    with pytest.raises(ConfigError) as caught:
        Alerter(None, config)  # type: ignore[arg-type] - refused before the store is used
    assert "$ROSTERSYNC_TEST_HOOK" in str(caught.value) and "SECRET" not in str(caught.value)
    monkeypatch.setenv("ROSTERSYNC_TEST_HOOK", "http://127.0.0.1:9/hook")
    assert Alerter(None, config).channels  # type: ignore[arg-type]
    figures.add("security: URL keys refusing plain http beyond loopback", 2)


def test_an_allowed_insecure_url_is_named_at_load_by_doctor_and_on_the_dashboard(
        workspace, capsys, caplog):
    _code, out, _err = run_cli(capsys, *workspace.args("status", "--json"))
    assert not any("plain http://" in r for r in json.loads(out)["reasons"])  # loopback
    text = workspace.config_path.read_text(encoding="utf-8")
    text = text.replace(f'base_url = "{workspace.lms.base_url}"',
                        'base_url = "http://rs:pw@lms.example.invalid/v2"\n'
                        "allow_insecure_http = true\ntimeout_seconds = 2")
    workspace.config_path.write_text(text, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="rostersync.sync.config"):
        load_config(workspace.config_path)
    said = [r.getMessage() for r in caplog.records if r.name == "rostersync.sync.config"]
    assert len(said) == 1
    assert "lms.base_url" in said[0] and "http://lms.example.invalid/v2" in said[0]
    assert "pw" not in said[0]
    code, out, _err = run_cli(capsys, *workspace.args("doctor", "--json"))
    checks = json.loads(out)["checks"]
    transport = [c for c in checks if c["check"] == "transport"]
    assert [c["result"] for c in transport] == ["warning"]
    assert "lms.base_url" in transport[0]["detail"]
    code, out, _err = run_cli(capsys, *workspace.args("status", "--json"))
    doc = json.loads(out)
    assert code >= 1 and doc["status"] in ("WARNING", "CRITICAL")
    assert any("plain http://" in r and "lms.base_url" in r for r in doc["reasons"])


# -- 2. CSV formula injection -------------------------------------------------------------

@pytest.mark.parametrize("cell, expected", [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), (DDE, "'" + DDE),
    ("a=1", "a=1"), (" =1", " =1"), ("", ""), ("'=1", "'=1"), ("Ann", "Ann"),
    (-3, -3), (2.5, 2.5), (None, None),  # numbers we computed are not formulas
])
def test_a_cell_that_starts_like_a_formula_is_prefixed_with_a_quote(cell, expected):
    assert neutralise(cell) == expected


def dangerous(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row
            if cell.startswith(FORMULA_STARTS)]


def test_every_report_table_neutralises_hostile_cells():
    hostile = {"report": "operator", "by_actor": [{"actor": "@evil", "total": 1}],
               "entries": [{"id": 1, "actor": "+x", "target": DDE, "what": "-2+3",
                            "people": ["=A1"]}]}
    for table in ("entries", "by_actor"):
        assert not dangerous(to_csv(hostile, table))
    assert "'" + DDE in to_csv(hostile)


def hostile_world(workspace) -> None:
    """HR values that a spreadsheet would run, in names, a department and a reason."""
    rows = workspace.world.rows
    keys = list(rows)
    rows[keys[10]].update({"First Name": DDE, "Last Name": "+1", "Status": "Terminated",
                           "Termination Date": "2020-01-01"})
    rows[keys[11]]["Department"] = "@SUM(1+1)*cmd|' /C calc'!A0"  # unmapped: drift
    workspace.world.write(workspace.csv_path)


def test_report_csv_files_neutralise_hr_values(workspace, capsys):
    assert main(workspace.args("sync")) in (0, 1)
    hostile_world(workspace)
    assert main(workspace.args("sync")) in (0, 1, 3)
    # An operator's entry whose target is what they typed.
    main(workspace.args("resync", DDE, "--dry-run"))
    seen = {}
    for report, tables in (("terminations", ("rows",)),
                           ("drift", ("series", "time_to_resolve", "oldest_open",
                                      "data_quality", "failures")),
                           ("operator", ("entries", "by_actor"))):
        for table in tables:
            code, out, _err = run_cli(capsys, *workspace.args(
                "report", report, "--format", "csv", "--table", table))
            assert code in (0, 2), out
            assert not dangerous(out), (report, table)
            seen[report, table] = out
            figures.add("security: report CSV tables with no cell a spreadsheet runs")
    assert f"'{DDE}" in seen["terminations", "rows"]  # the name, neutralised, still there
    assert f"'{DDE}" in seen["operator", "entries"]


# -- weak: a secret pasted into a *_env key ------------------------------------------------

@pytest.mark.parametrize("value, secret", [
    ("LMS_TOKEN", False), ("ROSTERSYNC_HRIS_KEY_2024", False), ("X", False),
    ("lms_token", False), ("A" * 64, False), ("A" * 65, True),  # the length edge
    (SECRET, True), ("a" * 23 + "1", True), ("a" * 22 + "1", False),  # hex-like edge
    ("sk-live-abc", True), ("tok.en", True), ("has space", True), ("1ABC", True),
    ("Abcdefghijklmnopqrs1", True), ("Abcdefghijklmnopqr1", False),  # mixed-case edge
])
def test_a_value_that_is_no_variable_name_looks_like_a_secret(value, secret):
    assert config_safety.looks_like_secret(value) is secret


def test_a_secret_pasted_into_token_env_is_never_echoed(workspace, capsys):
    text = workspace.config_path.read_text(encoding="utf-8")
    workspace.config_path.write_text(text.replace(f'token_env = "{TOKEN_ENV}"',
                                                  f'token_env = "{SECRET}"'), encoding="utf-8")
    for argv in (("doctor",), ("doctor", "--json"), ("sync",), ("sync", "--json"),
                 ("status",)):
        code, out, err = run_cli(capsys, *workspace.args(*argv))
        assert code == 2, argv
        assert SECRET not in out + err, argv
        assert "the value of lms.token_env looks like a secret, not a variable name" \
            in out + err, argv
        figures.add("security: commands that did not echo a secret pasted into token_env")


# -- weak: the alert command's environment ---------------------------------------------------

def test_an_alert_command_sees_only_the_allow_listed_environment(workspace, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("ROSTERSYNC_TEST_RELAY", "relay-1")
    dump = tmp_path / "env.json"
    script = f"import json, os; open({str(dump)!r}, 'w').write(json.dumps(dict(os.environ)))"
    config = load_config(workspace.config_path)
    alerter = Alerter(Store(config.database.path), config)
    channel = Channel("command:x", CommandChannel(command=[sys.executable, "-c", script],
                                                  pass_env=["ROSTERSYNC_TEST_RELAY"]))
    doc = {"alert": "held", "state": "firing"}
    assert alerter.send(channel, b"{}", doc) is None
    env = json.loads(dump.read_text())
    assert os.environ[TOKEN_ENV]  # the LMS token is in our environment...
    assert TOKEN_ENV not in env  # ...and not in the command's
    assert set(env) - {"PATH", "HOME", "LANG", "TZ", "ROSTERSYNC_TEST_RELAY",
                       "ROSTERSYNC_ALERT", "ROSTERSYNC_ALERT_STATE"} <= {"LC_CTYPE"}
    assert env["ROSTERSYNC_ALERT"] == "held" and env["ROSTERSYNC_TEST_RELAY"] == "relay-1"
    assert env["PATH"] == os.environ["PATH"]


def test_command_env_is_the_allow_list_and_the_alert():
    environ = {"PATH": "/bin", "HOME": "/h", "LANG": "C", "TZ": "UTC", "SECRET_X": "s",
               "LMS_TOKEN": "t"}
    env = command_env(environ, {"alert": "sla", "state": "resolved"})
    assert env == {"PATH": "/bin", "HOME": "/h", "LANG": "C", "TZ": "UTC",
                   "ROSTERSYNC_ALERT": "sla", "ROSTERSYNC_ALERT_STATE": "resolved"}
    assert "LMS_TOKEN" in command_env(environ, {"alert": "a", "state": "firing"},
                                      ["LMS_TOKEN"])


# -- weak: report and alert files are owner-only -----------------------------------------------

@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_report_files_are_owner_only(workspace, tmp_path, capsys, umask_022):
    fresh, existing = tmp_path / "fresh.csv", tmp_path / "existing.html"
    existing.write_text("old", encoding="utf-8")
    existing.chmod(0o644)
    for target, fmt in ((fresh, "csv"), (existing, "html")):
        code, _out, err = run_cli(capsys, *workspace.args(
            "report", "operator", "--format", fmt, "-o", str(target)))
        assert code in (0, 2) and f"wrote {target}" in err
        assert mode(target) == 0o600
    assert existing.read_text(encoding="utf-8") != "old"


def test_the_demo_alert_file_is_owner_only(tmp_path, monkeypatch, umask_022):
    path = tmp_path / "alerts.jsonl"
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"alert": "held"}'))
    assert alert_file.main([str(path)]) == 0
    assert mode(path) == 0o600
    path.chmod(0o644)  # left by an older version: narrowed on the next notice
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"alert": "sla"}'))
    assert alert_file.main([str(path)]) == 0
    assert mode(path) == 0o600
    assert [n["alert"] for n in alert_file.read_notices(path)] == ["held", "sla"]


# -- weak: init ------------------------------------------------------------------------------

def one_sentence(err: str) -> bool:
    return "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_init_refuses_bad_targets_in_one_sentence(tmp_path, capsys, umask_022):
    cases = {
        "missing folder": (tmp_path / "nope" / "rostersync.toml", [], "does not exist"),
        "a folder": (tmp_path, [], "is a folder"),
        "a folder with --force": (tmp_path, ["--force"], "is a folder"),
        "an existing file": (tmp_path / "exists.toml", [], "already exists"),
    }
    (tmp_path / "exists.toml").write_text("keep", encoding="utf-8")
    for what, (path, extra, words) in cases.items():
        code, _out, err = run_cli(capsys, "init", str(path), *extra)
        assert code == 2, what
        assert one_sentence(err) and words in err, (what, err)
        figures.add("security: init targets refused in one sentence")
    assert (tmp_path / "exists.toml").read_text(encoding="utf-8") == "keep"
    assert not (tmp_path / "nope").exists()


def test_init_force_over_a_file_readable_by_others_makes_it_owner_only(tmp_path, capsys,
                                                                      umask_022):
    path = tmp_path / "rostersync.toml"
    path.write_text("old", encoding="utf-8")
    path.chmod(0o644)
    code, _out, _err = run_cli(capsys, "init", str(path), "--force")
    assert code == 0 and mode(path) == 0o600
    assert "[hris]" in path.read_text(encoding="utf-8")
    assert not list(tmp_path.glob("*.tmp"))  # no temporary file left behind


@pytest.mark.parametrize("force", [False, True])
def test_init_never_writes_through_a_symbolic_link(tmp_path, capsys, force):
    elsewhere = tmp_path / "elsewhere.toml"
    dangling, live = tmp_path / "dangling.toml", tmp_path / "live.toml"
    dangling.symlink_to(elsewhere)
    target = tmp_path / "target.toml"
    target.write_text("precious", encoding="utf-8")
    live.symlink_to(target)
    for link in (dangling, live):
        code, _out, err = run_cli(capsys, "init", str(link), *(["--force"] if force else []))
        assert code == 2 and one_sentence(err) and "symbolic link" in err, err
        assert link.is_symlink()
        figures.add("security: init targets refused in one sentence")
    assert not elsewhere.exists()
    assert target.read_text(encoding="utf-8") == "precious"


# -- weak: the metrics textfile -----------------------------------------------------------------

def test_a_relative_metrics_textfile_resolves_beside_the_config(workspace, tmp_path,
                                                                 monkeypatch):
    append(workspace.config_path, '\n[metrics]\nenabled = true\nlisten = ""\n'
                                  'textfile = "prom/rostersync.prom"\n')
    (workspace.folder / "prom").mkdir()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(workspace.config_path)
    assert config.metrics.textfile == workspace.folder / "prom" / "rostersync.prom"
    service = MetricsService(Store(config.database.path), config, FrozenNow())
    service.write_textfile()
    assert (workspace.folder / "prom" / "rostersync.prom").exists()
    assert not (elsewhere / "prom").exists()


class FrozenNow:
    def now(self) -> datetime:
        return datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def test_a_missing_metrics_folder_is_one_sentence_not_an_error_every_interval(
        workspace, capsys, caplog):
    append(workspace.config_path, '\n[metrics]\nenabled = true\nlisten = ""\n'
                                  'textfile = "missing/rostersync.prom"\n')
    with caplog.at_level(logging.WARNING, logger="rostersync.sync.config"):
        config = load_config(workspace.config_path)
    said = [r.getMessage() for r in caplog.records if r.name == "rostersync.sync.config"]
    assert len(said) == 1 and "metrics.textfile" in said[0] and "does not exist" in said[0]
    code, out, _err = run_cli(capsys, *workspace.args("doctor", "--json"))
    check = [c for c in json.loads(out)["checks"] if c["check"] == "metrics textfile"]
    assert [c["result"] for c in check] == ["error"] and code == 2
    logged: list[dict] = []
    service = MetricsService(Store(config.database.path), config, FrozenNow(),
                             log=logged.append)
    failing = None
    for _ in range(5):  # five intervals with the folder missing: one line
        failing = service.textfile_step(failing)
    assert [r["event"] for r in logged] == ["job_error"]
    assert "does not exist" in logged[0]["error"]
    (workspace.folder / "missing").mkdir()
    for _ in range(3):  # it comes back: one line saying so, then quiet
        failing = service.textfile_step(failing)
    assert [r["event"] for r in logged] == ["job_error", "job_recovered"]
    assert (workspace.folder / "missing" / "rostersync.prom").exists()


# -- weak: one JSON document; a closed pipe ------------------------------------------------------

def test_sync_json_prints_one_document_when_the_lease_is_held(workspace, capsys):
    config = load_config(workspace.config_path)
    store = Store(config.database.path)
    assert lease_store.acquire(store, "other-host:1:abcd", datetime.now(UTC), 600) is None
    for argv in (("sync", "--json"), ("sync", "--dry-run", "--json"),
                 ("resync", "E00001", "--json")):
        code, out, err = run_cli(capsys, *workspace.args(*argv))
        doc = json.loads(out)  # exactly one document: json.loads refuses trailing data
        if "--dry-run" in argv:  # a dry run changes nothing: it needs no lease
            assert doc["dry_run"] and doc["status"] != "busy"
            continue
        assert code == 5, argv
        assert doc["status"] == "busy" and doc["exit_code"] == 5
        assert "writer lease" in doc["message"] and "writer lease" in err
        assert doc["kind"] == {"sync": "full", "resync": "resync"}[argv[0]]


def test_a_closed_pipe_ends_quietly(workspace):
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has read all it wanted
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    try:
        done = subprocess.run([sys.executable, "-m", "rostersync.console.cli", "ops", "list", "--json",
                               "--config", str(workspace.config_path)],
                              stdout=write_end, stderr=subprocess.PIPE, env=env,
                              timeout=60, check=False)
    finally:
        os.close(write_end)
    err = done.stderr.decode()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert done.returncode == 141
