"""`rostersync serve` as a child process, for the tests that signal, kill or fail it over.

A reader thread keeps its output as it comes (JSON lines parsed into records) and wakes
anyone waiting for a record: tests wait on what serve says, never on the clock. Every
wait has a deadline and ends early when the process does, so a serve that died is
reported with its output instead of hanging the suite."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any


class ServeProcess:
    def __init__(self, config: Path, env: dict[str, str], name: str = "serve") -> None:
        self.name = name
        self.config = config
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rostersync.console.cli", "serve", "--config", str(config)],
            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        self.records: list[dict[str, Any]] = []
        self.ended = False
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace")
            with self._changed:
                self.lines.append(line)
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        self.records.append(json.loads(line))
                self._changed.notify_all()
        with self._changed:
            self.ended = True  # the output is closed: nobody waits for more
            self._changed.notify_all()

    def logged(self, **fields: Any) -> dict[str, Any] | None:
        """The first JSON line with these fields, if logged yet."""
        with self._changed:
            records = list(self.records)
        for record in records:
            if all(record.get(k) == v for k, v in fields.items()):
                return record
        return None

    def wait_logged(self, timeout: float, **fields: Any) -> dict[str, Any] | None:
        """The first JSON line with these fields, waiting up to ``timeout`` seconds for it;
        None if the process ended or the time ran out without one."""
        with self._changed:
            self._changed.wait_for(lambda: self.logged(**fields) is not None or self.ended,
                                   timeout)
        return self.logged(**fields)

    def output(self, last: int | None = None) -> str:
        with self._changed:
            lines = self.lines[-last:] if last else list(self.lines)
        return "".join(lines)

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as systemd stops it; killed if it does not end within ``timeout``."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(10)

    def kill(self) -> None:
        """The cleanup after a test: whatever state it is in, it ends."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
