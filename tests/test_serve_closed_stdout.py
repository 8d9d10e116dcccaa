"""`serve` logs JSON lines on stdout. When whatever read them goes away (a log shipper
restarted, a `serve | tee` whose tee was killed), SIGTERM must still stop the service:
a log line that cannot be written is dropped, it does not break the signal handler."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.support import TOKEN_ENV


def test_serve_stops_on_sigterm_after_its_log_reader_went_away(workspace):
    proc = subprocess.Popen(
        [sys.executable, "-m", "rostersync.console.cli", "serve", "--config",
         str(workspace.config_path)],
        env={**os.environ, TOKEN_ENV: workspace.token}, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # until it serves (a read, not a sleep)
            if '"event": "serving"' in line:
                break
        else:
            raise AssertionError(f"serve ended before serving: {proc.wait()}")
        proc.stdout.close()  # the reader is gone: the next line meets a closed pipe
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
