"""A new user's first steps: the README's quick start and the commands the demo prints
when it ends, run as written from a shell where the virtualenv is not active."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

from rostersync.console.invocation import program
from rostersync.sandbox.demo import closing_message

ROOT = Path(__file__).resolve().parents[1]
# A login shell's PATH: the virtualenv is not active, its `rostersync` is not on it.
PLAIN_ENV = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
             "LANG": "C.UTF-8"}


def quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_quick_start_is_two_make_targets_that_use_the_virtualenvs_programs():
    assert quick_start() == ["make demo", "make test"]
    for command in quick_start():
        # What make would run, without running it: nothing relies on an active virtualenv.
        done = subprocess.run([*shlex.split(command), "--dry-run", "--always-make"],
                              cwd=ROOT, env=PLAIN_ENV, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        recipe = [line for line in done.stdout.splitlines() if line.startswith(".venv/bin/")]
        assert recipe, done.stdout
        assert not any(re.match(r"(rostersync|pytest|ruff)\b", line)
                       for line in done.stdout.splitlines())


def test_the_closing_message_names_only_what_outlives_the_demo(tmp_path):
    config = tmp_path / "my demo" / "rostersync.toml"
    text = closing_message(tmp_path, config, {
        "metrics": "http://127.0.0.1:9/metrics", "webhooks": "http://127.0.0.1:9/webhooks",
        "alerts": str(tmp_path / "alerts.jsonl")}, command="/venv/bin/rostersync")
    assert "http://" not in text and "stopped with it" in text
    assert f"alerts: {tmp_path / 'alerts.jsonl'}" in text
    lines = [line.split("Explore them:")[-1].strip() for line in text.splitlines()
             if "/venv/bin/rostersync" in line]
    # A folder with a space stays one argument.
    assert [shlex.split(line)[1:] for line in lines] == [
        ["status", "--config", str(config)], ["audiences", "list", "--config", str(config)],
        ["console", "--read-only", "--config", str(config)]]


def test_the_commands_the_demo_prints_run_as_printed_without_the_virtualenv(tmp_path):
    entry = Path(sys.executable).parent / "rostersync"
    folder = tmp_path / "demo"
    # As `make demo` runs it: the virtualenv's entry point by a relative path.
    done = subprocess.run([os.path.relpath(entry, ROOT), "demo", "--headless", "--seconds",
                           "1", "--keep", str(folder)], cwd=ROOT, env=PLAIN_ENV,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.split("Explore them:", 1)[1].strip().splitlines()
    commands = [line.strip() for line in printed]
    assert len(commands) == 3 and all(shlex.split(c)[0] == str(entry) for c in commands)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    status, audiences, console = commands

    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, shell=True, cwd=elsewhere, env=PLAIN_ENV,
                              capture_output=True, text=True, timeout=120)

    ran = run(status)
    assert ran.returncode in (0, 1, 2) and ran.stdout.startswith("rostersync "), ran.stderr
    ran = run(audiences)
    assert ran.returncode == 0 and "sales-enablement" in ran.stdout, ran.stderr
    # The console needs a terminal: the same program and subcommand answer --help.
    ran = run(console.replace("--read-only", "--help", 1))
    assert ran.returncode == 0 and "--read-only" in ran.stdout, ran.stderr


def test_the_license_is_an_spdx_expression_with_its_file():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # The table form ({text = ...}) is deprecated by setuptools 77 and warns on install.
    assert project["project"]["license"] == "Apache-2.0"
    for name in project["project"]["license-files"]:
        assert "Apache License" in (ROOT / name).read_text()[:200]
    build = " ".join(project["build-system"]["requires"])
    minimum = re.search(r"setuptools>=(\d+)", build)
    assert minimum and int(minimum.group(1)) >= 77, build


def test_the_program_is_named_by_its_path_unless_path_finds_this_very_one(tmp_path):
    entry = tmp_path / "venv" / "bin" / "rostersync"
    entry.parent.mkdir(parents=True)
    entry.write_text("#!/bin/sh\n")
    other = tmp_path / "elsewhere" / "rostersync"
    assert program(str(entry), which=lambda _name: str(entry)) == "rostersync"
    assert program(str(entry), which=lambda _name: str(other)) == str(entry)
    assert program(str(entry), which=lambda _name: None) == str(entry)
    assert program("/somewhere/console/cli.py", "/opt/py") == "/opt/py -m rostersync.console.cli"


def test_init_prints_a_doctor_command_that_runs_as_printed(tmp_path):
    entry = Path(sys.executable).parent / "rostersync"
    for path, expected in ((PLAIN_ENV["PATH"], str(entry)),
                           (f"{entry.parent}:{PLAIN_ENV['PATH']}", "rostersync")):
        env = {**PLAIN_ENV, "PATH": path}
        folder = tmp_path / str(len(path))
        folder.mkdir()
        done = subprocess.run([str(entry), "init", "my config.toml"], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        printed = re.search(r"run `([^`]+)`", done.stdout).group(1)
        assert shlex.split(printed) == [expected, "doctor", "--config", "my config.toml"]
        ran = subprocess.run(printed, shell=True, cwd=folder, env=env, capture_output=True,
                             text=True, timeout=120)
        # The program runs and answers (the sample's LMS token is not set): not a shell's
        # "not found" (127), not a traceback.
        assert ran.returncode == 2 and "Traceback" not in ran.stderr, ran.stderr
