"""Big classes are split one way: by composition. A class does not inherit behaviour from
several of our own classes (no mixins), and no module reaches into an Engine's or an
Executor's private steps. Read from the source with ``ast`` (nothing is imported).

Allowed bases beside one concrete class: our abstract interfaces (a class declared with
ABC, ABCMeta or Protocol, such as LmsTarget and HrisSource), our exception types, and
third-party classes (textual's App, pydantic's BaseModel, ...).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("sync", "storage", "console")

# Mixins other parts of the code base are turning into collaborators at the moment, being
# converted; each name leaves this list when its class has become a collaborator.
BEING_CONVERTED: frozenset[str] = frozenset()

ABSTRACT_MARKS = frozenset({"ABC", "ABCMeta", "Protocol"})
EXCEPTION_ROOTS = frozenset({"BaseException", "Exception", "ValueError", "RuntimeError",
                             "LookupError", "KeyError", "OSError", "TypeError", "Warning"})
# Whose privates stay theirs: the receiver's name -> the one module that may use them.
OWNERS = {"engine": "sync/engine.py", "executor": "sync/executor.py"}


def _sources(root: Path) -> Iterator[tuple[str, ast.Module]]:
    for package in SCANNED:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            yield rel, ast.parse(path.read_text(encoding="utf-8"), rel)


def _name(expr: ast.expr) -> str | None:
    """The class a base expression names: ``LmsTarget``, ``base.LmsTarget`` and
    ``AnswerForm[int]`` name LmsTarget, LmsTarget and AnswerForm."""
    if isinstance(expr, ast.Subscript):
        expr = expr.value
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return None


def _classes(root: Path) -> list[tuple[str, ast.ClassDef]]:
    return [(rel, node) for rel, tree in _sources(root)
            for node in sorted((n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)),
                               key=lambda n: n.lineno)]


def _bases(node: ast.ClassDef) -> list[str]:
    names = [_name(base) for base in node.bases]
    return [n for n in names if n is not None and n not in ("Generic", "object")]


def _interfaces(classes: list[tuple[str, ast.ClassDef]]) -> set[str]:
    """Our classes declared abstract (ABC, ABCMeta, Protocol) and our exception types."""
    bases = {node.name: set(_bases(node)) for _rel, node in classes}
    abstract = {node.name for _rel, node in classes
                if set(_bases(node)) & ABSTRACT_MARKS
                or any(k.arg == "metaclass" and _name(k.value) == "ABCMeta"
                       for k in node.keywords)}
    errors: set[str] = set()
    grown = True
    while grown:  # an exception type's subclasses are exception types
        new = {name for name, of in bases.items()
               if name not in errors and of & (EXCEPTION_ROOTS | errors)}
        errors |= new
        grown = bool(new)
    return abstract | errors


def mixins(root: Path) -> list[str]:
    """Classes with several bases, one of which is a concrete class of ours."""
    classes = _classes(root)
    ours = {node.name for _rel, node in classes}
    interfaces = _interfaces(classes)
    found = []
    for rel, node in classes:
        bases = _bases(node)
        if len(bases) < 2:
            continue  # plain inheritance is not a mixin
        mixed = [b for b in bases if b in ours and b not in interfaces
                 and b not in BEING_CONVERTED]
        if mixed:
            found.append(f"{rel}:{node.lineno} class {node.name} mixes in {', '.join(mixed)}")
    return found


def _receiver(expr: ast.expr) -> str | None:
    """``engine`` for ``engine``, ``self.engine`` and ``self._engine`` (likewise executor)."""
    name = expr.id if isinstance(expr, ast.Name) else (
        expr.attr if isinstance(expr, ast.Attribute) else None)
    if name is None:
        return None
    name = name.lstrip("_")
    return name if name in OWNERS else None


def private_reaches(root: Path) -> list[str]:
    """``engine._x`` / ``self.engine._x`` / ``self._executor._x`` outside their module."""
    found = []
    for rel, tree in _sources(root):
        for node in sorted(ast.walk(tree), key=lambda n: getattr(n, "lineno", 0)):
            if not (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                continue
            owner = _receiver(node.value)
            if owner is not None and OWNERS[owner] != rel:
                found.append(f"{rel}:{node.lineno} uses {ast.unparse(node)} "
                             f"(private to {OWNERS[owner]})")
    return found


def test_no_class_mixes_in_a_concrete_class_of_ours() -> None:
    assert mixins(ROOT) == []


def test_no_module_calls_the_engine_or_executor_privates() -> None:
    assert private_reaches(ROOT) == []


def _plant(root: Path, files: dict[str, str]) -> Path:
    for package in SCANNED:
        (root / package).mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_a_planted_mixin_is_caught_and_interfaces_are_not(tmp_path: Path) -> None:
    root = _plant(tmp_path, {
        "sync/base.py": "from abc import ABC\nfrom typing import Protocol\n"
                        "class LmsTarget(ABC): ...\n"
                        "class Batching(Protocol): ...\n"
                        "class ConnectorError(Exception): ...\n"
                        "class Refused(ConnectorError): ...\n",
        "sync/target.py": "from rostersync.sync import base\n"
                          "class Half: ...\n"
                          "class Target(Half, base.LmsTarget): ...\n"
                          "class Fine(base.LmsTarget, base.Batching): ...\n"
                          "class Odd(base.Refused, KeyError): ...\n"
                          "class Plain(Half): ...\n",
        "console/app.py": "from textual.app import App\n"
                          "class NoticeRouting: ...\n"
                          "class Tools: ...\n"
                          "class ConsoleApp(NoticeRouting, App): ...\n"
                          "class Other(Tools, App): ...\n",
    })
    assert mixins(root) == ["sync/target.py:3 class Target mixes in Half",
                            "console/app.py:4 class ConsoleApp mixes in NoticeRouting",
                            "console/app.py:5 class Other mixes in Tools"]


def test_a_planted_private_reach_is_caught(tmp_path: Path) -> None:
    root = _plant(tmp_path, {
        "sync/engine.py": "class Engine:\n    def run(self):\n"
                          "        return self._apply() or self._executor.interrupt('x')\n",
        "sync/runs.py": "def go(engine, x):\n"
                        "    engine._apply(1)\n"
                        "    x.engine._plan()\n"
                        "    x._engine.apply_planned()\n"
                        "    x._executor._failed()\n"
                        "    engine.__class__\n",
    })
    assert private_reaches(root) == [
        "sync/runs.py:2 uses engine._apply (private to sync/engine.py)",
        "sync/runs.py:3 uses x.engine._plan (private to sync/engine.py)",
        "sync/runs.py:5 uses x._executor._failed (private to sync/executor.py)"]
