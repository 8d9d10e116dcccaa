"""The type checker `make test` runs really checks the code: a copy of the packages, laid out
the way `make typecheck` lays out the checkout (a link named rostersync), with one planted
error, fails mypy under the project's own [tool.mypy] settings, naming the planted
file:line; the same copy without the plant passes.

mypy runs on the whole of sync, storage and console, as `make typecheck` does: compiled
mypy checks them in seconds here, and its cache (one per copy) makes the planted runs
incremental. The plants cover each package and two kinds of mistake a default mypy run
would not both catch: a wrong type, and a function without annotations (which only the
project's disallow_untyped_defs rejects).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What mypy reads: the checked packages, the test servers it follows for the demo's types,
# and pyproject.toml for the configuration.
PACKAGES = ("sync", "storage", "console", "sandbox")
# mypy names a module by the path it found it under: mypy_path's link, then the package.
SHOWN_AS = ".mypy_cache/namespace/rostersync/"


@dataclass(frozen=True)
class Plant:
    file: str        # relative to the checkout
    code: str        # appended to the file
    line: int        # the line of ``code`` mypy must name, 1 = its first line
    error_code: str  # mypy's code for the mistake


PLANTS = {
    "storage: a str returned as int": Plant(
        "storage/db.py", 'def planted_count() -> int:\n    return "three"\n', 2,
        "return-value"),
    "console: a call with a wrong argument type": Plant(
        "console/fmt.py", "def planted_when() -> str:\n    return short_time(3)\n", 2,
        "arg-type"),
    "sync: a function without annotations": Plant(
        "sync/clock.py", "def planted_untyped(moment):\n    return moment\n", 1,
        "no-untyped-def"),
}


def _copy_checkout(root: Path) -> None:
    """The packages and pyproject.toml, with the link `make typecheck` makes: the checkout
    seen as the installed namespace."""
    for name in PACKAGES:
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / ".mypy_cache" / "namespace").mkdir(parents=True)
    (root / ".mypy_cache" / "namespace" / "rostersync").symlink_to("../..")


def _mypy(root: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    """`make typecheck`'s mypy with the copy's pyproject.toml; only the cache moves."""
    return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache)],
                          cwd=root, capture_output=True, text=True, timeout=600, check=False)


def _caught(root: Path, cache: Path, plant: Plant) -> str | None:
    """Plant, run mypy, take the plant out: None when mypy named it, else what it said."""
    path = root / plant.file
    original = path.read_text()
    head = original.rstrip("\n") + "\n\n\n"  # two blank lines before a top-level def
    path.write_text(head + plant.code)
    try:
        result = _mypy(root, cache)
    finally:
        path.write_text(original)
    line = head.count("\n") + plant.line
    where = f"{SHOWN_AS}{plant.file}:{line}: error: "
    named = [e for e in result.stdout.splitlines()
             if e.startswith(where) and e.endswith(f"[{plant.error_code}]")]
    if result.returncode == 1 and named:
        return None
    return f"exit {result.returncode}, expected {where}...[{plant.error_code}]:\n{result.stdout}"


def test_mypy_passes_the_copy_and_fails_each_plant_naming_its_line(tmp_path: Path) -> None:
    """One test, one copy: the first mypy run fills the cache (a few seconds), and each
    planted run after it rechecks only what the plant touched."""
    root, cache = tmp_path / "checkout", tmp_path / "cache"
    root.mkdir()
    _copy_checkout(root)
    try:
        clean = _mypy(root, cache)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert "Success: no issues found" in clean.stdout
        missed = {name: why for name, plant in PLANTS.items()
                  if (why := _caught(root, cache, plant)) is not None}
        assert missed == {}
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)  # a copy of the tree and mypy's cache
