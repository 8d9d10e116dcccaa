"""The layers hold: console -> sync -> storage, the sandbox never uses the console, and no
import circle (lazy imports included). Checked twice: in the source (every import statement, lazy
ones included) and by importing each layer alone in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.import_contract import FORBIDDEN, NAMESPACE, PACKAGES, cycles, modules, violations

ROOT = Path(__file__).resolve().parent.parent


def test_no_layer_imports_upward_in_the_source():
    assert violations(ROOT) == []


def test_no_import_circle():
    assert cycles(ROOT) == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_importing_a_layer_loads_nothing_above_it(layer):
    names = [NAMESPACE + n for n in modules(ROOT) if n.split(".")[0] == layer]
    # httpx loads rich for its own command line when rich is installed: what a library
    # the layer may use brings along is not the layer's import.
    allowed = [] if layer == "storage" else ["httpx"]
    probe = ("import importlib, json, sys\n"
             f"for name in {allowed!r}:\n"
             "    importlib.import_module(name)\n"
             "def key(m):\n"
             f"    return m.split('.')[1] if m.startswith({NAMESPACE!r}) else m.split('.')[0]\n"
             "before = {key(m) for m in sys.modules if m != 'rostersync'}\n"
             f"for name in {names!r}:\n"
             "    importlib.import_module(name)\n"
             "bare = sorted(m for m in sys.modules if m.split('.')[0] in "
             f"{PACKAGES!r})\n"
             "print(json.dumps([sorted({key(m) for m in sys.modules if m != 'rostersync'}"
             " - before), bare]))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    loaded, bare = json.loads(done.stdout)
    assert set(loaded) & set(FORBIDDEN[layer]) == set()
    # Run from the clone, a bare `import sync` would work and load a second copy.
    assert bare == []


def _plant(root: Path, files: dict[str, str]) -> Path:
    for package in ("console", "sync", "storage", "sandbox"):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("", encoding="utf-8")
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_a_planted_upward_import_is_caught(tmp_path):
    root = _plant(tmp_path, {
        "storage/rows.py": "def later():\n    from rostersync.sync.engine import Engine\n",
        "sync/engine.py": "import textual\nclass Engine: ...\n",
        "sandbox/demo.py": "from rostersync.console import actions\n",
        # downward: allowed
        "console/app.py": "from rostersync.sync.engine import Engine\n",
    })
    assert violations(root) == ["sandbox/demo.py:1 imports console",
                                "storage/rows.py:2 imports sync.engine",
                                "sync/engine.py:1 imports textual"]


def test_an_import_outside_the_namespace_is_caught(tmp_path):
    """`from sync.plan import x` works from a clone only: the wheel has no `sync`."""
    root = _plant(tmp_path, {"console/app.py": "from sync.plan import plan\n",
                             "sync/plan.py": "def plan(): ...\n"})
    assert violations(root) == [
        "console/app.py:1 imports sync.plan without the rostersync. prefix"]


def test_type_checking_imports_do_not_count_but_circles_do(tmp_path):
    root = _plant(tmp_path, {
        "sync/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from rostersync.console.app import App\n"
                     "from rostersync.sync import b\n",
        "sync/b.py": "from rostersync.sync import a\n",
    })
    assert violations(root) == []
    assert cycles(root) == [["sync.a", "sync.b"]]
