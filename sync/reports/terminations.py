"""The terminations report: for every termination that took effect in the period, when
it took effect (in the person's zone and UTC), when rostersync saw it, when the LMS
account became inactive, the delay, whether it met the SLA and, if not, why.

A termination is an *episode*: one person and one effective time. Its evidence is the
deactivations planned for it ("terminated in HR", "termination scheduled"; a held or
suppressed one that was replaced counts too) and its `pending_termination` drift row.

Times (all UTC, as stored):
- effective:  the HR date's cutoff in the person's time zone (the op/drift record it);
              when HR gave no date, when rostersync first saw the termination.
- seen:       the first time rostersync recorded it (planned op or drift row).
- SLA clock:  starts at max(effective, seen), as `rostersync status` counts it: a
              termination HR records late is HR's delay, not the sync's.
- inactive:   the deactivation's success, else the drift's resolution (the account was
              seen inactive). Anything after the period's end is not yet known.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rostersync.storage.db import Store, ts
from rostersync.sync.reports import history
from rostersync.sync.reports.period import Period
from rostersync.sync.reports.stats import delay_edges, histogram, spread
from rostersync.sync.status import format_age

TERMINATION_REASONS = ("terminated in HR", "termination scheduled")
# Why a termination missed its SLA, strongest first: the main reason is the first found.
CAUSES = ("suppressed", "held", "failed", "waiting")


@dataclass
class Episode:
    employee_id: str
    effective_key: str | None
    ops: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)


def build(store: Store, period: Period, sla_minutes: float) -> dict[str, Any]:
    """The report document (rows + summary + chart series), from the database only."""
    until = ts(period.until)
    episodes = _episodes(store, until)
    keys = [e.employee_id for e in episodes.values()]
    people = history.people_records(store, keys)
    op_ids = [op["id"] for e in episodes.values() for op in e.ops]
    attempts = history.attempts_of(store, op_ids)
    suppressions = history.suppressions_of(store, keys)
    actions = history.op_actions(store, until)
    sla = sla_minutes * 60
    rows = []
    for episode in episodes.values():
        row = _row(episode, people.get(episode.employee_id, {}), attempts,
                   suppressions.get(episode.employee_id, []), actions, period, sla)
        if row is not None:
            rows.append(row)
    rows.sort(key=lambda r: (r["effective_utc"], r["employee_id"]))
    return {"report": "terminations", "period": period.as_dict(), "sla_minutes": sla_minutes,
            "summary": summarise(rows, sla), "rows": rows,
            "charts": {"delay_histogram": _histogram(rows, sla)}}


def _episodes(store: Store, until: str) -> dict[tuple[str, str | None], Episode]:
    out: dict[tuple[str, str | None], Episode] = {}
    marks = ",".join("?" * len(TERMINATION_REASONS))
    for op in store.rows(
            "SELECT id, employee_id, kind, payload, status, reason, attempts, last_error, "
            "error_class, http_status, hold_reason, suppressed_reason, suppressed_until, "
            "suppressed_by, approved_by, run_id, created_at, updated_at, finished_at "
            "FROM ops WHERE kind IN ('deactivate', 'delete') AND created_at <= ? "
            f"AND reason IN ({marks}) ORDER BY id", (until, *TERMINATION_REASONS)):
        key = _effective_key(op["payload"])
        out.setdefault((op["employee_id"], key),
                       Episode(op["employee_id"], key)).ops.append(op)
    for row in store.rows("SELECT id, subject, detail, first_seen_at, resolved_at FROM drift "
                          "WHERE kind = 'pending_termination' AND first_seen_at <= ? "
                          "ORDER BY id", (until,)):
        key = _effective_key(row["detail"])
        out.setdefault((row["subject"], key), Episode(row["subject"], key)).drift.append(row)
    return out


def _effective_key(text: str | None) -> str | None:
    try:
        value = json.loads(text or "{}").get("effective_at")
    except (ValueError, AttributeError):
        return None
    moment = history.moment(value) if value else None
    return ts(moment) if moment else None


def _at(text: str) -> datetime:
    """A time from a column that always holds one (NOT NULL, or filtered on)."""
    moment = history.moment(text)
    if moment is None:
        raise ValueError(f"a stored time is empty: {text!r}")
    return moment


def _row(e: Episode, person: dict[str, Any], attempts: dict[int, list[dict[str, Any]]],
         suppressions: list[dict[str, Any]], actions: dict[int, list[dict[str, Any]]],
         period: Period, sla: float) -> dict[str, Any] | None:
    until = period.until
    seen = min(_at(t) for t in
               [op["created_at"] for op in e.ops] + [d["first_seen_at"] for d in e.drift])
    effective = history.moment(e.effective_key) or seen
    if effective > until:
        return None  # scheduled: not yet a termination
    inactive: datetime | None = None
    via: str | None = None
    done = [_at(op["finished_at"]) for op in e.ops
            if op["status"] == "succeeded" and op["finished_at"]]
    done = [t for t in done if t <= until]
    if done:
        inactive, via = min(done), "deactivated"
    else:
        resolved = [_at(d["resolved_at"]) for d in e.drift if d["resolved_at"]]
        resolved = [t for t in resolved if t <= until]
        if resolved:
            inactive, via = min(resolved), "seen inactive"
    if inactive is None and effective < period.since:
        pass  # still open: carried into the period, so it is reported
    elif not (period.since <= effective <= until):
        return None
    start = max(effective, seen)
    end = inactive or until
    delay = max(0.0, (end - start).total_seconds())
    met = inactive is not None and delay <= sla
    outcome = "on_time" if met else "late" if inactive else (
        "open_past_sla" if delay > sla else "open")
    causes = _causes(e, attempts, suppressions, actions, start, end)
    if not causes and outcome in ("late", "open_past_sla"):
        causes.append(("waiting", "no run applied it in time (job paused, quarantined, "
                                  "or no run scheduled)"))
    hr_lag = max(0.0, (seen - effective).total_seconds())
    zone = person.get("timezone") or "UTC"
    name = " ".join(p for p in (person.get("preferred_name") or person.get("first_name"),
                                person.get("last_name")) if p)
    return {
        "employee_id": e.employee_id, "name": name or None,
        "termination_date": person.get("termination_date"), "timezone": zone,
        "effective_local": effective.astimezone(history.zone(zone)).isoformat(),
        "effective_utc": ts(effective), "seen_at": ts(seen), "sla_clock_from": ts(start),
        "inactive_at": ts(inactive), "inactive_via": via,
        "delay_seconds": round(delay), "delay": format_age(delay),
        "access_after_effective_seconds": round(max(0.0, (end - effective).total_seconds())),
        "hr_recorded_after_seconds": round(hr_lag),
        "sla_met": met, "outcome": outcome,
        "reason": None if met else (causes[0][0] if causes else "pending"),
        "why": "; ".join(text for _code, text in causes) or None,
        "ops": [op["id"] for op in e.ops],
    }


def _causes(e: Episode, attempts: dict[int, list[dict[str, Any]]],
            suppressions: list[dict[str, Any]], actions: dict[int, list[dict[str, Any]]],
            start: datetime, end: datetime) -> list[tuple[str, str]]:
    """Everything that stood between the SLA clock's start and the account's deactivation,
    as (cause, sentence), strongest cause first."""
    found: dict[str, list[str]] = {c: [] for c in CAUSES}
    for s in suppressions:
        made, lifted = _at(s["created_at"]), history.moment(s["lifted_at"])
        if made <= end and (lifted is None or lifted >= start):
            text = f"suppressed by {s['created_by']} at {s['created_at'][:16]}Z: {s['reason']}"
            if lifted is not None:
                text += f" (lifted by {s['lifted_by']} at {s['lifted_at'][:16]}Z)"
            elif s["until"]:
                text += f" (until {s['until'][:16]}Z)"
            found["suppressed"].append(text)
    for op in e.ops:
        acts = actions.get(op["id"], [])
        approvals = [a for a in acts if a["action"] == "approve"]
        rejections = [a for a in acts if a["action"] == "reject"]
        if op["status"] == "held":
            found["held"].append(f"op {op['id']} held for approval: "
                                 f"{op['hold_reason'] or 'guard'}")
        elif op["approved_by"] or approvals:
            who = approvals[0] if approvals else {"actor": op["approved_by"], "at": "?"}
            found["held"].append(f"op {op['id']} held until approved by {who['actor']} at "
                                 f"{str(who['at'])[:16]}Z")
        if rejections:
            r = rejections[0]
            reason = json.loads(r["detail"]).get("reason")
            found["held"].append(f"op {op['id']} held, then rejected by {r['actor']} at "
                                 f"{r['at'][:16]}Z: {reason}")
        if op["status"] == "suppressed" and not found["suppressed"]:
            found["suppressed"].append(f"op {op['id']} suppressed by {op['suppressed_by']}: "
                                       f"{op['suppressed_reason']}")
        errors = [a for a in attempts.get(op["id"], []) if a["outcome"] not in ("ok", None)]
        if errors:
            classes = sorted({a["error_class"] or "unknown" for a in errors})
            last = errors[-1]
            text = (f"op {op['id']} failed {len(errors)} attempt(s) ({', '.join(classes)}); "
                    f"last: {(last['error'] or last['outcome'])[:120]}")
            if op["status"] == "dead":
                text += "; retries exhausted"
            retries = [a for a in acts if a["action"] == "retry"]
            if retries:
                text += f"; retried by {retries[-1]['actor']} at {retries[-1]['at'][:16]}Z"
            found["failed"].append(text)
    return [(cause, text) for cause in CAUSES for text in dict.fromkeys(found[cause])]


def summarise(rows: list[dict[str, Any]], sla: float) -> dict[str, Any]:
    done = [r["delay_seconds"] for r in rows if r["inactive_at"]]
    on_time = sum(1 for r in rows if r["sla_met"])
    open_within = sum(1 for r in rows if r["outcome"] == "open")
    decided = len(rows) - open_within  # an open one still inside its SLA is undecided
    by_reason: dict[str, int] = {}
    for r in rows:
        if r["reason"] and r["reason"] != "pending":
            by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + 1
    exposure = [r["access_after_effective_seconds"] for r in rows]
    return {
        "count": len(rows), "deactivated": len(done), "on_time": on_time,
        "late": sum(1 for r in rows if r["outcome"] == "late"),
        "open": sum(1 for r in rows if r["outcome"].startswith("open")),
        "open_past_sla": sum(1 for r in rows if r["outcome"] == "open_past_sla"),
        "share_within_sla": round(on_time / decided, 4) if decided else None,
        "delay_seconds": spread(done),
        "max_access_after_effective_seconds": max(exposure) if exposure else None,
        "missed_by_reason": by_reason,
    }


def _histogram(rows: list[dict[str, Any]], sla: float) -> dict[str, Any]:
    edges = delay_edges(sla)
    values = [r["delay_seconds"] for r in rows if r["inactive_at"]]
    labels = [f"{format_age(a)} to {format_age(b)}" for a, b in itertools.pairwise(edges)]
    labels.append(f"≥ {format_age(edges[-1])}")
    return {"edges_seconds": edges, "labels": labels,
            "counts": histogram(values, edges), "sla_seconds": sla}
