"""`rostersync init`: write the commented sample config, owner-only, and nowhere else.

Every way the target can be wrong (a missing folder, a folder, an existing file without
--force, a symbolic link) is one sentence, never a traceback. The file is written to a
temporary name beside the target and renamed over it, so it is 0600 from its first byte
even with --force over a file that was readable by others, and a failed write leaves the
old file as it was.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from rostersync.console.cli_context import CliError


def init_problem(path: Path, force: bool) -> str | None:
    """Why ``path`` cannot take the sample config, or None (reads the file system only)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        return f"{path}: cannot look at it ({exc.strerror})"
    if st is not None and stat.S_ISLNK(st.st_mode):
        # A link (dangling or not) could point anywhere, /etc included: write nothing.
        return (f"{path} is a symbolic link; refusing to write through it (remove it or "
                "name the real file)")
    if st is not None and stat.S_ISDIR(st.st_mode):
        return f"{path} is a folder; name a file inside it, e.g. {path / 'rostersync.toml'}"
    if st is not None and not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file; refusing to overwrite it"
    if st is not None and not force:
        return f"{path} already exists; use --force to overwrite it"
    folder = path.parent
    if not folder.is_dir():
        return f"the folder {folder} does not exist; create it first (mkdir -p {folder})"
    return None


def write_sample(path: Path, text: str, force: bool) -> None:
    """Write ``text`` to ``path`` (mode 0600), or raise CliError with one sentence."""
    problem = init_problem(path, force)
    if problem is not None:
        raise CliError(problem)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise CliError(f"{path.parent}: cannot write there ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:  # mkstemp creates it 0600
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # replaces the name itself: a link created since is not followed
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise CliError(f"{path}: cannot write the sample config ({exc.strerror})") from None
