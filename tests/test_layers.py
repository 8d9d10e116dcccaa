"""The layers hold: console -> sync -> storage, the sandbox never uses the console, and no
import circle (lazy imports included). Checked twice: in the source (every import statement, lazy
ones included) and by importing each layer alone in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.import_contract import FORBIDDEN, cycles, modules, violations

ROOT = Path(__file__).resolve().parent.parent


def test_no_layer_imports_upward_in_the_source():
    assert violations(ROOT) == []


def test_no_import_circle():
    assert cycles(ROOT) == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_importing_a_layer_loads_nothing_above_it(layer):
    names = [n for n in modules(ROOT) if n.split(".")[0] == layer]
    # httpx loads rich for its own command line when rich is installed: what a library
    # the layer may use brings along is not the layer's import.
    allowed = [] if layer == "storage" else ["httpx"]
    probe = ("import importlib, json, sys\n"
             f"for name in {allowed!r}:\n"
             "    importlib.import_module(name)\n"
             "before = {m.split('.')[0] for m in sys.modules}\n"
             f"for name in {names!r}:\n"
             "    importlib.import_module(name)\n"
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} - before)))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert loaded & set(FORBIDDEN[layer]) == set()


def _plant(root: Path, files: dict[str, str]) -> Path:
    for package in ("console", "sync", "storage", "sandbox"):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("", encoding="utf-8")
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_a_planted_upward_import_is_caught(tmp_path):
    root = _plant(tmp_path, {
        "storage/rows.py": "def later():\n    from sync.engine import Engine\n",
        "sync/engine.py": "import textual\nclass Engine: ...\n",
        "sandbox/demo.py": "from console import actions\n",
        "console/app.py": "from sync.engine import Engine\n",  # downward: allowed
    })
    assert violations(root) == ["sandbox/demo.py:1 imports console",
                                "storage/rows.py:2 imports sync.engine",
                                "sync/engine.py:1 imports textual"]


def test_type_checking_imports_do_not_count_but_circles_do(tmp_path):
    root = _plant(tmp_path, {
        "sync/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from console.app import App\nfrom sync import b\n",
        "sync/b.py": "from sync import a\n",
    })
    assert violations(root) == []
    assert cycles(root) == [["sync.a", "sync.b"]]
