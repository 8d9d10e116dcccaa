"""A copy of the tree laid out as installed (``rostersync/sync/...``) in the working folder
wins over the editable install: mutation testing runs the tests in such a copy, holding
the mutated modules, and they must import those rather than the checkout's."""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

NAMESPACE = "rostersync"


class _CopyFinder:
    """Finds ``rostersync`` in ``root`` and its modules by their parent's path."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name == NAMESPACE:
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [str(self.root / NAMESPACE)]
            return spec
        if name.startswith(NAMESPACE + "."):
            return importlib.machinery.PathFinder.find_spec(name, path)
        return None


def prefer_a_copy_in_the_working_folder() -> bool:
    """Put the finder first when the working folder holds such a copy; True if it did."""
    root = Path.cwd()
    if not (root / NAMESPACE / "sync").is_dir() or NAMESPACE in sys.modules:
        return False
    sys.meta_path.insert(0, _CopyFinder(root))
    return True
