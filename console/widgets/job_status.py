"""What the dashboard's Job panel says: the run going on now and the last one finished.

The run going on is the one this console's engine reports (live, phase by phase), else
one the database says is running: a read-only console, or any console beside `serve`,
sees the runs another process makes instead of claiming that nothing happens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text

from rostersync.console import fmt
from rostersync.storage.db import parse_ts

# Op statuses that mean the run has finished with the op (for a run's progress).
DONE = ("succeeded", "failed", "dead", "suppressed", "superseded", "held")


def running_run(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in runs if r["status"] == "running"), None)


def last_finished(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in runs if r["status"] != "running"), None)


def progress(run: dict[str, Any]) -> tuple[int, int | None]:
    """(done, total) of a running run's ops; total None while it has planned none."""
    ops = run.get("ops") or {}
    total = sum(ops.values())
    return sum(ops.get(s, 0) for s in DONE), (total or None)


def _started(run: dict[str, Any], now: datetime) -> str:
    started = parse_ts(run["started_at"])
    age = fmt.age((now - started).total_seconds()) if started else "?"
    return f"started {fmt.short_time(run['started_at'])}, {age} ago"


def job_text(job: dict[str, Any] | None, runs: list[dict[str, Any]], now: datetime) -> Text:
    """`job`: this console's engine run (app.job) or None; `runs`: the newest runs."""
    text = Text()
    other = running_run(runs)
    if job is not None:
        total = job["total"] if job["total"] is not None else "?"
        text.append(f"run {job['run_id']} {job['kind']}: ", style="bold cyan")
        text.append(f"{job['phase']} {job['done']}/{total}")
    elif other is not None:
        text.append(f"run {other['id']} {other['kind']} running", style="bold cyan")
        text.append(f" ({other.get('trigger') or 'another process'})\n{_started(other, now)}")
        done, total = progress(other)
        if total:
            text.append(f"\nops {done}/{total} done")
    else:
        text.append("idle", style="dim")
    last = last_finished(runs)
    if last is not None:
        text.append(f"\nlast: run {last['id']} {last['kind']} ")
        text.append(last["status"], style=fmt.STATUS_STYLE.get(last["status"], ""))
        finished = parse_ts(last["finished_at"])
        if finished is not None:
            text.append(f", {fmt.age((now - finished).total_seconds())} ago", style="dim")
    return text
