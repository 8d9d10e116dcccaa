"""The layers' import contract, read from the source (pure: no module is imported).

console -> sync -> storage, and the sandbox (servers and the demo world) may use sync and
storage but never the console. Any import statement counts, inside functions too: a lazy
import is still a dependency. Imports under ``if TYPE_CHECKING:`` are left out (they
never run). The imports must also form no circle.

Installed, the packages live under the ``rostersync`` namespace (``rostersync.sync``);
an import of a bare ``sync`` or ``console`` would work only from a clone, so it is a
violation too. Names below are the short ones (``sync.engine``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGES = ("console", "sync", "storage", "sandbox")
NAMESPACE = "rostersync."
# What each layer may not import (our packages and the console's libraries).
FORBIDDEN = {
    "storage": ("sync", "console", "sandbox", "textual", "rich", "httpx"),
    "sync": ("console", "sandbox", "textual", "textual_plotext", "rich"),
    "sandbox": ("console", "textual"),
}


def modules(root: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def short(name: str) -> str:
    """``rostersync.sync.engine`` -> ``sync.engine``; other names unchanged."""
    return name.removeprefix(NAMESPACE)


def bare(name: str) -> bool:
    """An import of one of our packages without the namespace (``from sync import x``)."""
    return name.split(".")[0] in PACKAGES


def _type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.dump(node.test)


def imports(path: Path, *, module_level: bool, expand: bool = True
            ) -> Iterator[tuple[int, str]]:
    """(line, imported name) for each import in the file; ``from a import b`` yields
    ``a`` and, with ``expand``, ``a.b`` too (b may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            skip.update(id(n) for n in ast.walk(node))
    nodes = tree.body if module_level else list(ast.walk(tree))
    for node in nodes:
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names if expand else ():
                yield node.lineno, f"{node.module}.{alias.name}"


def violations(root: Path) -> list[str]:
    """One line per upward import: 'storage/x.py:12 imports sync.engine', and per import
    outside the namespace: 'sync/x.py:3 imports sync.plan without the rostersync. prefix'."""
    out: list[str] = []
    for name, path in modules(root).items():
        banned = FORBIDDEN.get(name.split(".")[0], ())
        for line, target in imports(path, module_level=False, expand=False):
            where = f"{path.relative_to(root)}:{line}"
            if bare(target):
                out.append(f"{where} imports {target} without the {NAMESPACE} prefix")
            if short(target).split(".")[0] in banned:
                out.append(f"{where} imports {short(target)}")
    return sorted(set(out))


def cycles(root: Path) -> list[list[str]]:
    """Circles among imports, lazy ones included (Tarjan's strongly connected
    components): a circle closed inside a function still ties the two modules."""
    known = modules(root)
    graph = {name: sorted({short(t) for _line, t in imports(path, module_level=False)
                           if short(t) in known and short(t) != name})
             for name, path in known.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found
