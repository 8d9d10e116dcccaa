"""How to name this program in a command printed for the user to run next.

`rostersync` when that name, looked up on PATH, is this very program; otherwise (a
virtualenv that is not activated, a program run by its path) the absolute path of the
entry point, which runs from any shell; run as `python -m`, this Python and the module.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

NAME = "rostersync"


def program(argv0: str | None = None, executable: str | None = None,
            which: Callable[[str], str | None] = shutil.which) -> str:
    argv0 = sys.argv[0] if argv0 is None else argv0
    entry = Path(argv0) if argv0 else None
    if entry is None or entry.name != NAME or not entry.is_file():
        module = __name__.removesuffix("invocation") + "cli"
        return f"{shlex.quote(executable or sys.executable)} -m {module}"
    found = which(NAME)
    if found is not None and Path(found).resolve() == entry.resolve():
        return NAME
    # abspath also folds `..` (`make demo` runs `.venv/bin/rostersync` by a relative path).
    return shlex.quote(os.path.abspath(entry))
