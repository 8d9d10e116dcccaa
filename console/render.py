"""Plain-text rendering for the command line (the JSON documents are in docs/cli.md)."""

from __future__ import annotations

import json
import sys
from typing import Any

from rostersync.storage.terminations import describe
from rostersync.sync.status import format_age


def emit_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


age = format_age


def status_text(doc: dict[str, Any]) -> str:
    lines = [f"rostersync {doc['status']}" + (": " + "; ".join(doc["reasons"])
                                              if doc["reasons"] else "")]
    drift = {k: v for k, v in doc["drift"].items() if v}
    lines.append("drift: " + (", ".join(f"{k} {v}" for k, v in sorted(drift.items()))
                              if drift else "none"))
    for name, info in doc["staleness"].items():
        read = ("never read successfully" if info["age_seconds"] is None
                else f"last good read {age(info['age_seconds'])} ago ({info['state']})")
        lines.append(f"{name}: {read}"
                     + (f"; last error: {info['last_error']}" if info.get("last_error") else ""))
    t = doc["terminations"]
    lines.append(f"terminations: {t['pending']} pending, {t['overdue']} overdue "
                 f"(SLA {t['sla_minutes']:g} min), {t['scheduled']} scheduled")
    lines += blocked_lines(t)
    ops = {k: v for k, v in doc["ops"].items() if v and k not in ("succeeded", "superseded")}
    lines.append("open ops: " + (", ".join(f"{k} {v}" for k, v in sorted(ops.items()))
                                 if ops else "none"))
    job = doc["job"]
    if job["state"] != "active":
        lines.append(f"job: {job['state'].upper()} since {job['since']}: {job['reason']}")
    run = doc.get("last_run")
    if run:
        lines.append(f"last run: #{run['id']} {run['kind']} {run['status']} at "
                     f"{run['started_at']}" + (f" - {run['message']}" if run.get("message") else ""))
    if doc.get("intake"):
        lines += intake_lines(doc["intake"])
    return "\n".join(lines)


def blocked_lines(t: dict[str, Any]) -> list[str]:
    """Each termination a suppression blocks, by name: the suppression is honoured, the
    leaver keeps access, and the operator reading this must know who decided that."""
    people = t.get("blocked_by_suppression") or []
    if not people:
        return []
    lines = [f"blocked by a suppression: {t['blocked_by_suppression_count']} termination(s), "
             f"{t['blocked_by_suppression_overdue']} past the SLA"]
    for e in people:
        late = "PAST SLA" if e["overdue"] else "within SLA"
        lines.append(f"  {e['employee_id']}: {describe(e)}; effective {e['effective_at']}, "
                     f"pending {age(e['age_seconds'])} ({late})")
    shown = len(people)
    if t["blocked_by_suppression_count"] > shown:
        lines.append(f"  and {t['blocked_by_suppression_count'] - shown} more")
    return lines


def intake_lines(intake: dict[str, Any]) -> list[str]:
    """The status document's `intake` (present with [realtime] enabled)."""
    at_once = [k for k, how in intake["kinds"].items() if how == "realtime"]
    events = {k: v for k, v in intake["events_24h"].items() if v}
    lines = [f"intake: {intake['mode']} ({', '.join(at_once) or 'nothing'} in real time); "
             f"events in 24 h: " + (", ".join(f"{k} {v}" for k, v in sorted(events.items()))
                                    if events else "none")
             + (f"; last at {intake['last_event_at']}" if intake.get("last_event_at") else "")]
    if intake["queued"] or intake["gated"]:
        lines.append(f"intake waiting: {intake['queued']} queued, {intake['gated']} gated")
    if intake["refused_24h"]:
        lines.append(f"webhooks refused in 24 h: {intake['refused_24h']} (last at "
                     f"{intake['last_refused_at']}: {intake['last_refused_why']})")
    return lines


def run_text(report: dict[str, Any]) -> str:
    c = report["counts"]
    head = (f"run #{report['run_id']} ({report['kind']}{', dry run' if report['dry_run'] else ''}"
            f"): {report['status']}")
    lines = [head]
    if report.get("message"):
        lines.append(report["message"])
    if "rows" in c:
        lines.append(f"feed: {c['rows']} records, {c.get('changed', 0)} changed, "
                     f"{c.get('vanished', 0)} vanished")
    if c.get("drift"):
        lines.append("drift: " + ", ".join(f"{k} {v}" for k, v in sorted(c["drift"].items())))
    if c.get("planned"):
        lines.append("planned: " + ", ".join(f"{k} {v}" for k, v in sorted(c["planned"].items())))
    if c.get("rewrites"):
        lines.append("would rewrite: " + ", ".join(
            f"{k} on {v} account{'' if v == 1 else 's'}" for k, v in sorted(c["rewrites"].items())))
    if c.get("held_new"):
        lines.append(f"held for approval: {c['held_new']} (approve with "
                     f"`rostersync ops approve --run {report['run_id']}`)")
    if c.get("scheduled"):
        lines.append(f"scheduled for later: {c['scheduled']}")
    if c.get("applied"):
        lines.append("applied: " + ", ".join(f"{k} {v}" for k, v in sorted(c["applied"].items())))
    for reason in report.get("reasons", []):
        if reason not in (report.get("message") or ""):
            lines.append(f"- {reason}")
    for op in report.get("plan", [])[:200]:
        extra = f" {sorted(op['changes'])}" if op.get("changes") else ""
        when = f" at {op['not_before']}" if op.get("not_before") else ""
        lines.append(f"  would {op['kind']} {op['employee_id']} ({op['reason']}, "
                     f"{op['status']}){extra}{when}")
    return "\n".join(lines)


def ops_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no operations match"
    out = [f"{'ID':>6}  {'STATUS':<10} {'KIND':<10} {'EMPLOYEE':<14} {'TRIES':>5}  DETAIL"]
    for r in rows:
        detail = r.get("last_error") or r.get("hold_reason") or r.get("suppressed_reason") \
            or r.get("reason") or ""
        if r["status"] == "pending" and r.get("next_attempt_at"):
            detail = f"not before {r['next_attempt_at']}; {detail}"
        out.append(f"{r['id']:>6}  {r['status']:<10} {r['kind']:<10} {r['employee_id']:<14} "
                   f"{r['attempts']:>5}  {detail[:100]}")
    return "\n".join(out)
