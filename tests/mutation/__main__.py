"""`python -m tests.mutation [MODULE...]`: mutation testing of the decision modules.

mutmut (configured in pyproject.toml's [tool.mutmut]) mutates the decisions' functions
and runs, for each mutant, only the tests that reached the mutated function. The modules
come in two groups with their own few test files: the pure decisions, whose mutants the
fast edge tests kill in milliseconds, and the ones only a run shows (the breaker, the
vanished grace, the sliding window), which need the engine against a real SCIM server.
Each group runs in its own copy of the tree under .mutation/ (so edits made meanwhile do
not mix into a run), then this prints the score per module and every surviving mutant
that docs/testing.md does not list as equivalent. Exit 0 when there is none, 1 when
there are, 2 when mutmut itself failed.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "testing.md"
WORK = ROOT / ".mutation"
# Our packages go into the copy as installed (rostersync/sync/...), so that mutmut names a
# mutant by the module the tests import (rostersync.sync.plan.x_...); the names here and in
# docs/testing.md leave that prefix out.
PACKAGES = ("sync", "storage", "console", "sandbox")
COPIED = (*PACKAGES, "bench", "tests", "pyproject.toml")
PREFIX = "rostersync."
IN_CONFIG = re.compile(r'"(' + "|".join(PACKAGES) + r')/')


@dataclass(frozen=True)
class Group:
    name: str
    # Module -> the mutant names (mutmut's "<module>.x_<function>__mutmut_<n>", methods
    # "<module>.xǁ<Class>ǁ<method>__mutmut_<n>") that belong to the decision. Where a
    # file mixes a decision with IO or with unrelated planning, only its functions count.
    modules: dict[str, tuple[str, ...]]
    tests: tuple[str, ...]


GROUPS = (
    Group("pure", {
        "sync/feedgate.py": ("sync.feedgate.*",),
        "sync/plan.py (holds, suppression)": (
            "sync.plan.x_mass_deactivation_limit__mutmut_*",
            "sync.plan.x_apply_mass_hold__mutmut_*", "sync.plan.x_identity_changes__mutmut_*",
            "sync.plan.x_apply_identity_hold__mutmut_*",
            "sync.plan.x_apply_suppression__mutmut_*",
            "sync.plan.xǁSuppressionǁactive__mutmut_*"),
        "sync/audiences/guard.py": ("sync.audiences.guard.*",),
        "sync/lifecycle.py": ("sync.lifecycle.*",),
        "sync/retry.py": ("sync.retry.*",),
        "sync/feed_conflicts.py": ("sync.feed_conflicts.*",),
        "sync/audiences/rules.py": ("sync.audiences.rules.*",),
    }, ("tests/test_guard_edges.py", "tests/test_guard_edges_rules.py",
        "tests/test_feed_conflicts.py")),
    Group("engine", {
        "sync/diff.py (vanished grace)": ("sync.diff.x__vanished__mutmut_*",),
        "sync/mass_guards.py (window, identity)": (
            "sync.mass_guards.x_hold_mass_changes__mutmut_*",),
        "sync/executor.py (failures, breaker)": ("sync.executor.xǁExecutorǁfailed__mutmut_*",),
    }, ("tests/test_guard_edges_engine.py",)),
)
DETECTED = {"killed", "timeout", "segfault", "caught by type check"}
LISTED = re.compile(r"`([^`\s]+__mutmut_\d+)`")
EQUIVALENTS = "### Equivalent mutants"
SELECTION = re.compile(r"pytest_add_cli_args_test_selection = \[[^\]]*\]")


def equivalent() -> set[str]:
    """The mutants docs/testing.md lists as equivalent (each with its reason)."""
    if not DOC.exists():
        return set()
    text = DOC.read_text(encoding="utf-8")
    return set(LISTED.findall(text.split(EQUIVALENTS, 1)[1])) if EQUIVALENTS in text else set()


def module_of(name: str, modules: dict[str, tuple[str, ...]]) -> str | None:
    for module, patterns in modules.items():
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            return module
    return None


def prepare(group: Group, fresh: bool) -> Path:
    """The group's copy of the tree, its test selection written into its pyproject."""
    where = WORK / group.name
    if fresh and where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True, exist_ok=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "__snapshots__")
    for name in COPIED:
        source = ROOT / name
        target = where / "rostersync" / name if name in PACKAGES else where / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=skip, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    selection = "pytest_add_cli_args_test_selection = [" + ", ".join(
        f'"{t}"' for t in group.tests) + "]"
    config = where / "pyproject.toml"
    head, mutmut, tail = _mutmut_section(config.read_text(encoding="utf-8"))
    mutmut = IN_CONFIG.sub(r'"rostersync/\1/', mutmut)
    text, count = SELECTION.subn(selection, head + mutmut + tail)
    if count != 1:
        raise SystemExit("pyproject.toml: [tool.mutmut] needs one "
                         "pytest_add_cli_args_test_selection list")
    config.write_text(text, encoding="utf-8")
    return where


def _mutmut_section(text: str) -> tuple[str, str, str]:
    """pyproject.toml split around its [tool.mutmut] table."""
    start = text.index("[tool.mutmut]")
    end = text.find("\n[", start + 1)
    end = len(text) if end < 0 else end
    return text[:start], text[start:end], text[end:]


def results(where: Path) -> dict[str, str]:
    if not (where / "mutants").exists():
        return {}
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                         cwd=where, capture_output=True, text=True, check=True).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            found[name.removeprefix(PREFIX)] = status
    return found


def run_group(group: Group, modules: dict[str, tuple[str, ...]], survivors: bool) -> bool:
    where = prepare(group, fresh=not survivors)
    if survivors:
        # mutmut records which tests reach which function once, and again only for tests
        # with new names: after editing tests, collect again.
        (where / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        listed = equivalent()
        names = [n for n, status in results(where).items()
                 if status not in DETECTED and n not in listed and module_of(n, modules)]
        if not names:
            return True
    else:
        names = [p for patterns in modules.values() for p in patterns]
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "mutmut", "run",
                          *(PREFIX + name for name in names)], cwd=where,
                         stdout=subprocess.DEVNULL)
    print(f"{group.name}: {len(group.tests)} test file(s), "
          f"{time.monotonic() - started:.0f} s")
    if run.returncode not in (0, 1):
        print(f"mutmut run ({group.name}) failed with exit code {run.returncode}",
              file=sys.stderr)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument("modules", nargs="*", help="only these (part of the names below)")
    parser.add_argument("--report-only", action="store_true",
                        help="print the last run's scores without running mutmut")
    parser.add_argument("--survivors", action="store_true",
                        help="test again only the mutants the last run left alive (after "
                             "adding tests; the scores in docs/testing.md are full runs)")
    args = parser.parse_args(argv)
    every = {m: p for g in GROUPS for m, p in g.modules.items()}
    chosen = {g.name: {m: p for m, p in g.modules.items()
                       if not args.modules or any(s in m for s in args.modules)}
              for g in GROUPS}
    if not any(chosen.values()):
        parser.error(f"no module matches {args.modules}; known: {', '.join(every)}")
    ok = True
    for group in GROUPS:
        if chosen[group.name] and not args.report_only:
            ok = run_group(group, chosen[group.name], args.survivors) and ok
    listed = equivalent()
    counts: dict[str, Counter[str]] = {}
    alive: list[tuple[str, str]] = []
    for group in GROUPS:
        modules = chosen[group.name]
        counts.update({m: Counter() for m in modules})
        for name, status in sorted(results(WORK / group.name).items()):
            module = module_of(name, modules)
            if module is None:
                continue
            if status in DETECTED:
                counts[module]["killed"] += 1
            elif name in listed:
                counts[module]["equivalent"] += 1
            else:
                counts[module]["alive"] += 1
                alive.append((name, status))
    print(f"{'module':<40}{'mutants':>8}{'killed':>8}{'equiv.':>8}{'alive':>7}{'score':>8}")
    for module, c in counts.items():
        total = c["killed"] + c["equivalent"] + c["alive"]
        scored = c["killed"] + c["alive"]
        score = f"{100.0 * c['killed'] / scored:.1f}%" if scored else "-"
        print(f"{module:<40}{total:>8}{c['killed']:>8}{c['equivalent']:>8}{c['alive']:>7}"
              f"{score:>8}")
    for name, status in alive:
        print(f"{status}: {name}")
    if alive:
        print("see one with: cd .mutation/<group> && python -m mutmut show rostersync.NAME")
    if not ok:
        return 2
    return 1 if alive else 0


if __name__ == "__main__":
    sys.exit(main())
