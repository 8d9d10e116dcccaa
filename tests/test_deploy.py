"""deploy/: the systemd unit and its companions, checked against the product itself.

The unit is read directive by directive and, where systemd is installed, verified by
`systemd-analyze verify`; its command line, and every command docs/deploy.md shows, is
parsed by rostersync's own parser; logrotate rotates a real file with the shipped rules.
The dashboard and the alert rules: tests/test_deploy_monitoring.py.
"""

from __future__ import annotations

import getpass
import grp
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from rostersync.console.cli import build_parser
from rostersync.sync.engine import EXIT_USAGE
from rostersync.sync.sample import SAMPLE_CONFIG

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "rostersync.service"
SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD", re.IGNORECASE)

# -- the systemd unit -----------------------------------------------------------------

def unit_directives(text: str) -> dict[str, dict[str, list[str]]]:
    """Section -> directive -> every value it is given, in order."""
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, sep, value = line.partition("=")
        assert sep and section, f"{UNIT.name}:{number}: not a directive: {raw!r}"
        out[section][key.strip()].append(value.strip())
    return out


def one(directives: dict[str, list[str]], key: str) -> str:
    values = directives.get(key, [])
    assert len(values) == 1, f"{UNIT.name}: {key} should be set once, is {values}"
    return values[0]


def test_the_unit_runs_serve_as_its_own_user_in_a_read_only_system():
    unit = unit_directives(UNIT.read_text())
    service = unit["Service"]
    argv = shlex.split(one(service, "ExecStart"))
    assert Path(argv[0]).is_absolute() and Path(argv[0]).name == "rostersync"
    args = build_parser().parse_args(argv[1:])  # rostersync's own parser reads it
    assert args.command == "serve" and args.config is not None and args.config.is_absolute()
    user = one(service, "User")
    assert user not in ("", "root", "0") and one(service, "Group") == user
    sysusers = (DEPLOY / "rostersync.sysusers").read_text().split("\n")
    assert any(line.split()[:2] == ["u", user] for line in sysusers if line.strip()
               and not line.startswith("#"))
    state = one(service, "StateDirectory")
    assert one(service, "WorkingDirectory") == f"/var/lib/{state}"
    for key, value in {"ProtectSystem": "strict", "NoNewPrivileges": "yes",
                       "PrivateTmp": "yes", "ProtectHome": "yes", "Restart": "on-failure",
                       "KillMode": "mixed", "Type": "exec"}.items():
        assert one(service, key) == value, key
    # A config error needs a person: restarting would only repeat it.
    assert str(EXIT_USAGE) in one(service, "RestartPreventExitStatus").split()
    assert one(service, "TimeoutStopSec").endswith("s")
    assert one(service, "CapabilityBoundingSet") == ""
    # Secrets arrive from a root-only file, never from the unit; a missing file fails the
    # start (no "-" prefix) instead of running without credentials.
    env_file = one(service, "EnvironmentFile")
    assert env_file.startswith("/") and env_file.endswith(".env")
    for assignment in service.get("Environment", []):
        assert not SECRET_NAME.search(assignment.partition("=")[0]), assignment
    assert one(unit["Install"], "WantedBy") == "multi-user.target"
    assert int(one(unit["Unit"], "StartLimitBurst")) > 1


def test_the_environment_file_example_names_the_samples_secrets_and_holds_none():
    lines = [line for line in (DEPLOY / "rostersync.env.example").read_text().splitlines()
             if line and not line.startswith("#")]
    names = {line.partition("=")[0] for line in lines}
    assert all(line.endswith("=") for line in lines), "an example must hold no secret"
    named = set(re.findall(r'^\s*#?\s*\w+_env\s*=\s*"(\w+)"', SAMPLE_CONFIG, re.MULTILINE))
    assert "ROSTERSYNC_LMS_TOKEN" in names and "ROSTERSYNC_LMS_TOKEN" in named


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (apt-get install systemd)")
def test_systemd_analyze_verifies_the_unit(tmp_path):
    # verify checks that ExecStart's program exists and is executable (it runs nothing):
    # point it at one that exists here.
    entry = Path(sys.executable).parent / "rostersync"
    entry = entry if entry.is_file() else Path(sys.executable)
    argv0 = shlex.split(one(unit_directives(UNIT.read_text())["Service"], "ExecStart"))[0]
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(argv0, str(entry)))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                          capture_output=True, text=True, timeout=120)
    # Unknown or malformed directives are only warnings (exit 0): none is allowed.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.skipif(shutil.which("logrotate") is None,
                    reason="logrotate is not installed (apt-get install logrotate)")
def test_logrotate_rotates_the_log_in_place(tmp_path):
    log = tmp_path / "log" / "serve.jsonl"
    log.parent.mkdir()
    log.write_text('{"event": "serving"}\n')
    text = (DEPLOY / "rostersync.logrotate").read_text()
    assert "/var/log/rostersync/serve.jsonl {" in text and "su rostersync rostersync" in text
    config = tmp_path / "logrotate.conf"
    me = f"su {getpass.getuser()} {grp.getgrgid(os.getgid()).gr_name}"
    config.write_text(text.replace("/var/log/rostersync/serve.jsonl", str(log))
                      .replace("su rostersync rostersync", me))
    done = subprocess.run(["logrotate", "--force", "--state", str(tmp_path / "state"),
                           str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # copytruncate: the file the service holds open stays, emptied; the lines moved on.
    assert log.exists() and log.read_text() == ""
    assert (tmp_path / "log" / "serve.jsonl.1").read_text() == '{"event": "serving"}\n'


def test_the_commands_docs_deploy_shows_parse_as_rostersync_commands():
    argv0 = shlex.split(one(unit_directives(UNIT.read_text())["Service"], "ExecStart"))[0]
    text = (ROOT / "docs" / "deploy.md").read_text()
    commands = [line.split(argv0 + " ", 1)[1].split(" #")[0] for line in text.splitlines()
                if argv0 + " " in line]
    assert len(commands) >= 8
    for command in commands:
        args = build_parser().parse_args(shlex.split(command))  # exits on a wrong one
        config = args.path if args.command == "init" else args.config
        assert str(config) == "/etc/rostersync/rostersync.toml", command


def test_serve_exits_as_the_units_restart_policy_expects(workspace):
    """A config error exits with the status the unit does not restart on; SIGTERM (what
    `systemctl stop` sends) stops the scheduler cleanly, exit 0."""
    service = unit_directives(UNIT.read_text())["Service"]
    argv = shlex.split(one(service, "ExecStart"))
    entry = Path(sys.executable).parent / "rostersync"
    missing = workspace.folder / "absent.toml"
    bad = subprocess.run([str(entry), *argv[1:-1], str(missing)], capture_output=True,
                         text=True, timeout=120)
    assert str(bad.returncode) in one(service, "RestartPreventExitStatus").split()
    assert bad.stderr.startswith(f"rostersync: {missing}") and "Traceback" not in bad.stderr
    serving = subprocess.Popen([str(entry), *argv[1:-1], str(workspace.config_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = iter(serving.stdout.readline, "")
        # The scheduler is up once it says so (its first line of that kind).
        first = next(json.loads(line) for line in lines if '"serving"' in line)
        assert first["event"] == "serving"
        serving.send_signal(signal.SIGTERM)
        rest = serving.stdout.read()
        assert serving.wait(120) == 0, serving.stderr.read()
        assert json.loads(rest.strip().splitlines()[-1]) == {"event": "stopped"}
    finally:
        if serving.poll() is None:
            serving.kill()
            serving.wait(30)
