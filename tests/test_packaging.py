"""The installed product: one `rostersync` namespace, no generic top-level names, and a
built wheel that works in an empty environment (init, doctor, sync, the demo)."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.import_contract import PACKAGES

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "wheel-check-token-0123456789"


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _package_folders() -> set[str]:
    return {".".join(("rostersync", *init.parent.relative_to(ROOT).parts))
            for package in PACKAGES for init in (ROOT / package).rglob("__init__.py")
            if "__pycache__" not in init.parts}


def test_every_package_folder_is_installed_under_the_namespace():
    """A folder left out of the list would be missing from the wheel only, where no test
    of the clone would notice."""
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    assert listed == _package_folders()
    assert not any(name.split(".")[1] == "bench" for name in listed)


def test_every_data_file_in_a_package_is_shipped():
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["*"]
    shipped = {pattern.removeprefix("*") for pattern in patterns}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".py":
                assert path.suffix in shipped, f"{path.relative_to(ROOT)} would not be installed"


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """The wheel, built from this checkout and installed with the sandbox extra into an
    empty virtual environment: (its bin folder, the wheel)."""
    folder = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools leaves a build/ folder in the tree it builds, whose
    # stale files (a module since removed) would go into the next wheel.
    source = folder / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".mutation",
        "mutants", ".mypy_cache", ".pytest_cache", ".ruff_cache", "tests", "screenshots"))
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                  str(folder / "dist"), str(source)], folder, dict(os.environ))
    assert built.returncode == 0, built.stderr
    (wheel,) = (folder / "dist").glob("rostersync-*.whl")
    venv = folder / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], folder, dict(os.environ))
    assert made.returncode == 0, made.stderr
    pip = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                f"rostersync[sandbox] @ {wheel.as_uri()}"], folder, dict(os.environ), 600)
    assert pip.returncode == 0, pip.stderr
    return venv / "bin", wheel


def _clean_env(bin_folder: Path) -> dict[str, str]:
    """The environment of someone who installed the tool: its bin folder on PATH, no
    PYTHONPATH, and nothing of this checkout's virtual environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("ROSTERSYNC_")}
    env["PATH"] = f"{bin_folder}{os.pathsep}/usr/bin:/bin"
    return env


def test_the_wheel_holds_one_namespace_and_no_benchmarks(installed):
    _bin, wheel = installed
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
        names = archive.namelist()
    assert {top for top in tops if not top.endswith(".dist-info")} == {"rostersync"}
    assert "rostersync/console/app.tcss" in names
    assert not any(name.startswith(("bench/", "rostersync/bench/", "tests/")) for name in names)


def test_in_an_empty_environment_only_the_namespace_imports(installed, tmp_path):
    bin_folder, _wheel = installed
    env = _clean_env(bin_folder)
    for bare in ("console", "sync", "storage", "sandbox", "bench"):
        done = _run(["python", "-c", f"import {bare}"], tmp_path, env)
        assert done.returncode == 1 and "ModuleNotFoundError" in done.stderr, bare
    done = _run(["python", "-c", "import rostersync.sync.engine, rostersync.console.app"],
                tmp_path, env)
    assert done.returncode == 0, done.stderr


def _employees(path: Path) -> None:
    """Three people, with every column `rostersync init`'s config names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ["Employee ID", "Employee Number", "First Name", "Last Name", "Preferred Name",
              "Work Email", "Department", "Job Title", "Location", "Manager ID", "Status",
              "Hire Date", "Termination Date", "Time Zone", "Worker Type"]
    rows = [[f"E{n:03}", str(n), f"First{n}", f"Last{n}", "", f"person{n}@example.com",
             "Sales", "Rep", "Berlin", "", "Active", f"2024-01-0{n}", "", "Europe/Berlin",
             "Employee"] for n in range(1, 4)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])


def test_init_doctor_sync_and_status_work_from_the_installed_wheel(installed, tmp_path):
    bin_folder, _wheel = installed
    env = _clean_env(bin_folder) | {"ROSTERSYNC_LMS_TOKEN": TOKEN}
    lms = subprocess.Popen(["python", "-m", "rostersync.sandbox.scim_server", "--port", "0",
                            "--token", TOKEN], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert lms.stdout is not None
        base_url = ""
        for line in lms.stdout:  # the sandbox prints its address once it listens
            found = re.search(r"http://127\.0\.0\.1:\d+\S*", line)
            if found:
                base_url = found.group(0)
                break
        assert base_url, "the SCIM sandbox did not start"
        done = _run(["rostersync", "init", "rostersync.toml"], tmp_path, env)
        assert done.returncode == 0, done.stderr
        config = tmp_path / "rostersync.toml"
        text = config.read_text(encoding="utf-8").replace(
            'base_url = "https://lms.example.com/scim/v2"',
            f'base_url = "{base_url}"')
        config.write_text(text, encoding="utf-8")
        _employees(tmp_path / "hr" / "employees.csv")
        for argv in (["doctor"], ["sync"], ["status"]):
            done = _run(["rostersync", *argv, "--config", "rostersync.toml"], tmp_path, env)
            assert done.returncode == 0, (argv, done.stdout[-3000:], done.stderr)
            assert "Traceback" not in done.stderr
        assert done.stdout.startswith("rostersync OK"), done.stdout
        # The sync created the three people in the LMS.
        users = httpx.get(f"{base_url}/Users", headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=30).json()
        assert sorted(u["externalId"] for u in users["Resources"]) == ["E001", "E002", "E003"]
    finally:
        lms.terminate()
        lms.wait(timeout=30)


def test_the_demo_runs_from_the_installed_wheel(installed, tmp_path):
    bin_folder, _wheel = installed
    done = _run(["rostersync", "demo", "--headless", "--seconds", "3", "--keep",
                 str(tmp_path / "demo")], tmp_path, _clean_env(bin_folder))
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr
