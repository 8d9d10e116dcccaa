"""What a hostile answer costs a connector: memory for a huge body, time for a drip.

A loopback server sends (1) a body of ``--mib`` MiB, with its Content-Length and without
(the line closes at its end), and (2) a ``--drip-bytes`` body one byte every
``--drip-ms``. Each is read twice in the same run: the baseline as the
connectors read before (``httpx`` reads the whole body; its read timeout is per chunk),
then through sync.connectors.http_limits (``--cap-mib`` and ``--deadline``). Printed:
peak Python heap (tracemalloc) and bytes the server got out for the huge body, wall time
for the drip.

    python -m bench.hostile --mib 256 --cap-mib 16 --drip-bytes 200 --drip-ms 20
"""

from __future__ import annotations

import argparse
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from rostersync.sync.connectors.http_limits import (
    AnswerLimits,
    AnswerRefused,
    DeadlinePassed,
    send_within,
)

MIB = 1024 * 1024


def serve(huge: int, drip_bytes: int, drip_seconds: float) -> tuple[ThreadingHTTPServer, dict]:
    sent = {"huge": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            return None

        def do_GET(self) -> None:
            big = self.path.startswith("/huge")
            size = huge if big else drip_bytes
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if self.path != "/huge-undeclared":  # else: the body ends when the line closes
                self.send_header("Content-Length", str(size))
            self.send_header("Connection", "close")
            self.end_headers()
            block = b" " * (65536 if big else 1)
            left = size
            try:
                while left > 0:
                    if not big:
                        time.sleep(drip_seconds)  # the drip itself
                    chunk = block[:min(left, len(block))]
                    self.wfile.write(chunk)
                    left -= len(chunk)
                    if big:
                        sent["huge"] += len(chunk)
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, sent


def measure(read) -> tuple[float, float, str]:
    """(seconds, peak MiB of Python heap, outcome)."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        outcome = f"read {len(read())} bytes"
    except (AnswerRefused, DeadlinePassed) as exc:
        outcome = f"refused: {type(exc).__name__}"
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / MIB, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="size of the huge body")
    parser.add_argument("--cap-mib", type=int, default=16, help="max_answer_bytes, in MiB")
    parser.add_argument("--drip-bytes", type=int, default=200)
    parser.add_argument("--drip-ms", type=float, default=20.0)
    parser.add_argument("--deadline", type=float, default=0.5,
                        help="request_deadline_seconds")
    args = parser.parse_args()
    server, sent = serve(args.mib * MIB, args.drip_bytes, args.drip_ms / 1000)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    limits = AnswerLimits(args.cap_mib * MIB, args.deadline, "hris")
    rows = []
    with httpx.Client(timeout=5.0) as client:
        for path in ("/huge", "/huge-undeclared", "/drip"):
            sent["huge"] = 0
            before = measure(lambda p=path: client.get(base + p).content)
            before_sent = sent["huge"]
            sent["huge"] = 0
            now = measure(lambda p=path: send_within(
                client, client.build_request("GET", base + p), limits, p).content)
            rows.append((path, before, before_sent, now, sent["huge"]))
    server.shutdown()
    print(f"huge body {args.mib} MiB, cap {args.cap_mib} MiB; drip {args.drip_bytes} bytes "
          f"every {args.drip_ms:g} ms, deadline {args.deadline:g}s, read timeout 5s")
    print(f"{'answer':<16} {'reader':<9} {'seconds':>8} {'peak MiB':>9} {'server sent':>12}  "
          "outcome")
    for path, before, before_sent, now, now_sent in rows:
        for name, (seconds, peak, outcome), out in (("before", before, before_sent),
                                                    ("bounded", now, now_sent)):
            shown = f"{out / MIB:.1f} MiB" if path != "/drip" else "-"
            print(f"{path:<16} {name:<9} {seconds:>8.2f} {peak:>9.1f} {shown:>12}  {outcome}")


if __name__ == "__main__":
    main()
