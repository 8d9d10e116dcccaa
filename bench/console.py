"""Console responsiveness at scale, with the engine in the console's own process.

    python -m bench.console [--people 1000000 --ops 100000 --drift 50000 --apply 20000
                             --sync 5000]

1. Seeds a database (real schema, bulk executemany) with N people, ops and drift rows,
   then times the dashboard's refresh query set and list pages (sorted and filtered).
2. Runs the console headless (Textual run_test, live refresh on) while the engine applies
   an M-operation run against a SCIM sandbox in its own process, and reports the
   event loop's worst stall, measured by a ticker task that records its own lateness:
   the dashboard (with its moving progress bar) is on screen for the first half of the
   ops, the live log (fed by every op's event) for the second half. The baseline, in the
   same run: the same apply by the engine alone (no console), with the same ticker.
3. A full sync of S people started from the console, as `rostersync console` runs one:
   the engine in the console's process and loop (pull, plan with progress from the
   planning threads, apply), against the same sync by the engine alone; with the count
   of engine events and of the console messages the loop handled for them (merged).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rostersync.storage import console_queries as q
from rostersync.storage.db import Store, ts
from rostersync.sync.clock import Clock

KINDS = ("mismatch", "missing", "pending_termination", "invalid", "unmapped", "orphan")
STATUSES = ("succeeded",) * 14 + ("failed", "dead", "held", "pending", "suppressed")


def seed(path: Path, people: int, ops: int, drift: int) -> Store:
    if path.exists():
        path.unlink()
    store = Store(path)
    now = ts(Clock().now())
    record = json.dumps({"first_name": "Ada", "last_name": "Novak", "department": "Sales"})
    with store.tx() as conn:
        conn.executemany(
            "INSERT INTO people(employee_id, status, in_scope, record, first_seen_at, "
            "last_seen_at, updated_at) VALUES (?, 'active', 1, ?, ?, ?, ?)",
            ((f"E{i:07d}", record, now, now, now) for i in range(1, people + 1)))
        conn.executemany(
            "INSERT INTO ops(employee_id, kind, payload, idem_key, status, reason, attempts, "
            "error_class, last_error, run_id, created_at, updated_at) "
            "VALUES (?, 'update', '{}', ?, ?, 'differs from HR', 1, ?, ?, ?, ?, ?)",
            ((f"E{i * 7 % people + 1:07d}", f"k{i}", STATUSES[i % len(STATUSES)],
              "transient" if i % 19 == 14 else None,
              "503: upstream" if i % 19 == 14 else None, 1 + i // 5000, now, now)
             for i in range(ops)))
        conn.executemany(
            "INSERT INTO drift(subject, kind, detail, first_seen_at, last_seen_at) "
            "VALUES (?, ?, '{\"fields\": [\"title\"]}', ?, ?)",
            ((f"E{i * 13 % people + 1:07d}", KINDS[i % len(KINDS)], now, now)
             for i in range(drift)))
        conn.executemany(
            "INSERT INTO runs(kind, trigger, status, started_at, finished_at, counts) "
            "VALUES ('delta', 'schedule', 'succeeded', ?, ?, ?)",
            ((now, now, json.dumps({"drift": {"mismatch": i}, "applied": {"failed": i % 3}}))
             for i in range(200)))
    store.conn.execute("ANALYZE")
    return store


def timed(fn, repeat: int = 7) -> float:
    fn()  # warm the page cache: a console refreshes a warm database
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def dashboard_queries(store: Store, config) -> None:
    from rostersync.sync.status import build_status

    build_status(store, config, Clock().now())
    q.run_series(store)
    q.recent_activity(store)
    q.banner_figures(store)


def leader_read(store: Store, config) -> None:
    """What every screen's refresh reads besides its own queries: the leader lease."""
    from rostersync.console.leader_status import leader_status
    from rostersync.storage import lease as lease_store
    from rostersync.sync.leadership import LEADER

    leader_status(lease_store.last(store, LEADER), Clock().now(),
                  ha_enabled=config.ha.enabled, node=config.ha.node)


class Ticker:
    """The event loop's lateness: a task that sleeps 5 ms at a time and records how late
    it woke, under the label of what is on screen (``on``)."""

    PERIOD = 0.005

    def __init__(self, on: str = "run") -> None:
        self.on = on
        self.samples: dict[str, list[float]] = {}
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _tick(self) -> None:
        while not self._stop.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(self.PERIOD)
            self.samples.setdefault(self.on, []).append(time.perf_counter() - t0 - self.PERIOD)

    def figures(self, name: str) -> dict[str, Any] | None:
        samples = sorted(self.samples.get(name, []))
        if not samples:
            return None
        return {"max_stall_ms": samples[-1] * 1000,
                "p99_stall_ms": samples[int(len(samples) * 0.99)] * 1000,
                "ticks": len(samples)}


async def _world(folder: Path, people: int, base_url: str):
    """A CSV of ``people`` (flat: one request each), a config for the SCIM server at
    ``base_url``, the store and an engine."""
    from bench.apply import flat_rows
    from bench.common import config_text
    from rostersync.sandbox.world import HEADER
    from rostersync.sync.config import load_config
    from rostersync.sync.engine import Engine

    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "employees.csv"
    csv_path.write_text(",".join(HEADER) + "\n" + "".join(flat_rows(people)))
    config_path = folder / "rostersync.toml"
    config_path.write_text(config_text(folder, csv_path, base_url))
    config = load_config(config_path)
    store = Store(config.database.path)
    return config, store, Engine(config, store)


async def _with_server(body: Callable[[str], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """``body`` against a fresh SCIM sandbox of its own (another process): each side of
    a comparison starts from the same empty LMS."""
    from bench.apply import TOKEN, ServerProcess
    from bench.common import TOKEN_ENV

    os.environ[TOKEN_ENV] = TOKEN
    server = ServerProcess()
    try:
        return await body(server.base_url)
    finally:
        server.stop()


async def apply_alone(folder: Path, n: int) -> dict[str, Any]:
    """The baseline of stall_during_apply: the same apply by the engine alone."""
    async def body(base_url: str) -> dict[str, Any]:
        _config, store, engine = await _world(folder, n, base_url)
        await engine.sync("full", lms_read="cached", apply=False)  # plan: not measured
        ticker = Ticker()
        ticker.start()
        t0 = time.perf_counter()
        await engine.apply_due(trigger="bench")
        elapsed = time.perf_counter() - t0
        await ticker.stop()
        applied = store.scalar("SELECT count(*) FROM ops WHERE status = 'succeeded'")
        return {"apply_seconds": elapsed, "applied": applied, "run": ticker.figures("run")}

    return await _with_server(body)


async def stall_during_apply(folder: Path, n: int) -> dict[str, Any]:
    from rostersync.console.app import ConsoleApp

    async def body(base_url: str) -> dict[str, Any]:
        config, store, engine = await _world(folder, n, base_url)
        await engine.sync("full", lms_read="cached", apply=False)  # plan: not measured
        app = ConsoleApp(config, store, engine=engine, run_scheduler=False, live=True)
        ticker = Ticker("dashboard")
        shown: list[int] = []  # the done counts the Job panel showed, in order
        async with app.run_test(size=(120, 40)) as pilot:
            stop = asyncio.Event()

            async def operator() -> None:
                """Watches the Job panel as a person would; at half way, opens the log."""
                while not stop.is_set():
                    job = app.job
                    if job is not None and job["phase"] == "apply":
                        if not shown or shown[-1] != job["done"]:
                            shown.append(job["done"])
                        if ticker.on == "dashboard" and job["done"] >= (job["total"] or 0) / 2:
                            app.action_go("log")
                            ticker.on = "log"
                    await asyncio.sleep(0.05)

            ticker.start()
            watching = asyncio.create_task(operator())
            t0 = time.perf_counter()
            worker = app.run_engine("apply", lambda: engine.apply_due(trigger="bench"))
            await worker.wait()
            elapsed = time.perf_counter() - t0
            stop.set()
            await asyncio.gather(ticker.stop(), watching)
            await pilot.pause()
            applied = store.scalar("SELECT count(*) FROM ops WHERE status = 'succeeded'")
            log_entries = len(app.notice_router.log_ring)
        return {"apply_seconds": elapsed, "applied": applied,
                "progress_updates": len(shown), "progress_last": shown[-1] if shown else 0,
                "log_entries": log_entries, "dashboard": ticker.figures("dashboard"),
                "log": ticker.figures("log")}

    return await _with_server(body)


def _counting(engine: Any, counts: Counter[str]) -> None:
    """Count the engine's events on their way to whatever listens (the console)."""
    listener = engine.on_event

    def on_event(event: Any) -> None:
        counts[type(event).__name__] += 1
        listener(event)

    engine.on_event = on_event


async def full_sync(folder: Path, n: int, *, console: bool) -> dict[str, Any]:
    """A full sync from an empty LMS: by the engine alone, or started from the console
    (its confirmed-sync path) with the engine on the console's loop."""
    from rostersync.console import requests
    from rostersync.console.app import ConsoleApp
    from rostersync.console.messages import EngineMessage, OpsApplied

    async def body(base_url: str) -> dict[str, Any]:
        config, store, engine = await _world(folder, n, base_url)
        emitted: Counter[str] = Counter()
        handled: Counter[str] = Counter()
        ticker = Ticker()
        if not console:
            _counting(engine, emitted)
            ticker.start()
            t0 = time.perf_counter()
            report = await engine.sync("full", trigger="bench")
            elapsed = time.perf_counter() - t0
            await ticker.stop()
            status = report.status
        else:
            app = ConsoleApp(config, store, engine=engine, run_scheduler=False, live=True)
            _counting(engine, emitted)
            async with app.run_test(size=(120, 40)) as pilot:

                def seen(message: Any) -> None:
                    if isinstance(message, (EngineMessage, OpsApplied)):
                        handled[type(message).__name__] += 1

                app.message_signal.subscribe(app, seen, immediate=True)
                ticker.start()
                t0 = time.perf_counter()
                worker = app.run_engine(*requests.sync_run(app, "full", "bench"))
                await worker.wait()
                elapsed = time.perf_counter() - t0
                await ticker.stop()
                await pilot.pause()
            status = store.scalar("SELECT status FROM runs ORDER BY id DESC LIMIT 1")
        accounts = store.scalar("SELECT count(*) FROM accounts")
        return {"seconds": elapsed, "status": status, "accounts": accounts,
                "run": ticker.figures("run"), "events": dict(emitted),
                "handled": dict(handled)}

    return await _with_server(body)


def _stall_text(stall: dict[str, Any] | None) -> str:
    if stall is None:
        return "not reached"
    return (f"event-loop stall max {stall['max_stall_ms']:.1f} ms, "
            f"p99 {stall['p99_stall_ms']:.1f} ms over {stall['ticks']:,} ticks")


def _more(value: float, baseline: float) -> str:
    return f"{(value / baseline - 1):+.0%}" if baseline else "n/a"


def print_apply(n: int, result: dict[str, Any], alone: dict[str, Any]) -> None:
    print(f"console live while applying {n:,} ops: {result['applied']:,} applied "
          f"in {result['apply_seconds']:.1f} s; the Job panel's count moved "
          f"{result['progress_updates']:,} times (last seen {result['progress_last']:,}); "
          f"the live log holds {result['log_entries']:,} entries")
    for name in ("dashboard", "log"):
        print(f"  {name} on screen: {_stall_text(result[name])} (target max < 100 ms)")
    print(f"  baseline, the engine alone in this process: {alone['applied']:,} applied in "
          f"{alone['apply_seconds']:.1f} s, {_stall_text(alone['run'])}")
    print(f"  the console's cost: apply time "
          f"{_more(result['apply_seconds'], alone['apply_seconds'])}")


def print_sync(n: int, alone: dict[str, Any], console: dict[str, Any]) -> None:
    print(f"full sync of {n:,} people from an empty LMS, the engine in this process:")
    print(f"{'':<30}{'seconds':>9}{'accounts':>10}{'stall max ms':>14}{'p99 ms':>9}  status")
    for label, r in (("engine alone (baseline)", alone), ("engine + console", console)):
        stall = r["run"] or {"max_stall_ms": float("nan"), "p99_stall_ms": float("nan")}
        print(f"{label:<30}{r['seconds']:>9.1f}{r['accounts']:>10,}"
              f"{stall['max_stall_ms']:>14.1f}{stall['p99_stall_ms']:>9.1f}  {r['status']}")
    events = console["events"]
    handled = console["handled"]
    print(f"  the console's cost: sync time {_more(console['seconds'], alone['seconds'])} "
          "(target max stall < 100 ms)")
    print(f"  engine events {sum(events.values()):,} "
          f"({', '.join(f'{k} {v:,}' for k, v in sorted(events.items()))}); "
          f"console messages handled for them {sum(handled.values()):,} "
          f"({', '.join(f'{k} {v:,}' for k, v in sorted(handled.items()))})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--ops", type=int, default=100_000)
    parser.add_argument("--drift", type=int, default=50_000)
    parser.add_argument("--apply", type=int, default=20_000)
    parser.add_argument("--sync", type=int, default=5_000)
    args = parser.parse_args(argv)
    folder = Path("bench/out/console").resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)

    from rostersync.sync.config import Config

    t0 = time.perf_counter()
    store = seed(folder / "big.db", args.people, args.ops, args.drift)
    print(f"seeded {args.people:,} people, {args.ops:,} ops, {args.drift:,} drift rows "
          f"in {time.perf_counter() - t0:.1f} s")
    config = Config.model_validate({"database": {"path": str(folder / "big.db")},
                                    "hris": {"type": "csv", "path": "x.csv"},
                                    "lms": {"type": "scim", "base_url": "http://127.0.0.1:9",
                                            "token_env": "X"}})
    print(f"dashboard refresh query set: {timed(lambda: dashboard_queries(store, config)):.1f} ms"
          " (target < 50 ms)")
    print(f"  its leader lease read ([ha]): {timed(lambda: leader_read(store, config)):.3f} ms")
    cases = {
        "ops page, status=failed, sort employee_id": dict(name="ops", status="failed",
                                                          sort="employee_id"),
        "ops page, filter 'E00012', sort updated_at": dict(name="ops", filter_text="E00012",
                                                           sort="updated_at"),
        "drift page, filter 'mismatch E000', sort subject": dict(
            name="drift", filter_text="mismatch E000", sort="subject"),
        "drift page 100, sort first_seen_at": dict(name="drift", offset=5000),
    }
    for label, kw in cases.items():
        name = kw.pop("name")
        ms = timed(lambda name=name, kw=kw: q.page(store, name, **kw))
        print(f"{label}: {ms:.1f} ms (target < 100 ms)")
    if args.apply:
        alone = asyncio.run(apply_alone(folder / "apply-alone", args.apply))
        result = asyncio.run(stall_during_apply(folder / "apply-console", args.apply))
        print_apply(args.apply, result, alone)
    if args.sync:
        alone = asyncio.run(full_sync(folder / "sync-alone", args.sync, console=False))
        console = asyncio.run(full_sync(folder / "sync-console", args.sync, console=True))
        print_sync(args.sync, alone, console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
