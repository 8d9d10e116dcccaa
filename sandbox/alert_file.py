"""The demo's alert channel: a command that appends each notice to a file.

    python -m rostersync.sandbox.alert_file PATH      (the notice as JSON on stdin)

rostersync runs it for every alert notice ([[alerts.channels]] type = "command"), so the
demo's quarantines and held batches can be read in PATH, one JSON document a line.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def read_notices(path: Path) -> list[dict[str, Any]]:
    """Every notice the channel has written so far, oldest first."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m rostersync.sandbox.alert_file PATH  (the notice as JSON on stdin)",
              file=sys.stderr)
        return 2
    try:
        notice = json.loads(sys.stdin.read())
    except ValueError:
        print("sandbox.alert_file: stdin is not a JSON notice", file=sys.stderr)
        return 1
    # One line per notice, appended in one write, so a reader never sees half of one.
    # Owner-only (0600): notices name the job's state and the people held or overdue.
    fd = os.open(args[0], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        os.fchmod(fd, 0o600)
        fh.write(json.dumps(notice, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
