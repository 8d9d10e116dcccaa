"""The status document: what `rostersync status` prints and monitoring checks read.

Exit codes follow the monitoring-plugin convention: 0 OK, 1 WARNING, 2 CRITICAL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rostersync.storage import audit as audit_log
from rostersync.storage import drift as drift_store
from rostersync.storage import intake as intake_store
from rostersync.storage import ops as op_store
from rostersync.storage import runs as run_store
from rostersync.storage import source_health
from rostersync.storage.db import Store, parse_ts
from rostersync.storage.failure import unresolved, unresolved_reason
from rostersync.storage.queries import termination_figures
from rostersync.storage.terminations import blocked_by_suppression, describe
from rostersync.sync import config_safety
from rostersync.sync.config import Config
from rostersync.sync.config_realtime import ALL_KINDS
from rostersync.sync.ha_status import leader_figures, no_leader_reason
from rostersync.sync.models import DriftKind, OpStatus

OK, WARNING, CRITICAL = 0, 1, 2
LEVEL_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL"}

# Drift kinds that need a person (HR, L&D or IT) rather than the next run.
_ATTENTION = (DriftKind.invalid, DriftKind.unmapped, DriftKind.disputed, DriftKind.conflict,
              DriftKind.manager_unknown, DriftKind.manager_cycle, DriftKind.login_taken)

# A refused webhook request keeps the status at WARNING this long: a sender with a wrong
# or rotated secret keeps it there; one stray probe fades within the hour.
REFUSED_WARNING_MINUTES = 60
# A change in the HRIS export's columns stays on the dashboard this long: HR renames and
# drops report columns without telling anyone, and the next person on call should see it.
COLUMN_CHANGE_HOURS = 24
# Outcomes every intake document lists, zero included (run statuses appear when seen).
EVENT_OUTCOMES = ("queued", "synced", "coalesced", "gated", "batched", "ignored")


def intake_figures(store: Store, config: Config, now: datetime) -> dict[str, Any]:
    """Real-time intake: how each operation kind is applied, the events of the last
    24 h by outcome, what waits, and the webhook requests the listener refused."""
    rt = config.realtime
    at_once = rt.event_kinds()
    day = now - timedelta(hours=24)
    events = dict.fromkeys(EVENT_OUTCOMES, 0)
    events.update(intake_store.outcomes_since(store, day))
    refused_day = intake_store.refusals_since(store, day)
    recent = now - timedelta(minutes=REFUSED_WARNING_MINUTES)
    return {
        "mode": rt.mode,
        "kinds": {k: "realtime" if k in at_once else "batch" for k in sorted(ALL_KINDS)},
        "events_24h": events,
        "events_24h_total": sum(events.values()),
        "last_event_at": intake_store.last_received_at(store),
        **intake_store.waiting(store),
        "refused_24h": refused_day["count"],
        "refused_recent": intake_store.refusals_since(store, recent)["count"]
        if refused_day["count"] else 0,
        "refused_recent_minutes": REFUSED_WARNING_MINUTES,
        "last_refused_at": refused_day["last_at"],
        "last_refused_why": refused_day["last_why"],
    }


def _staleness(source: dict[str, Any] | None, now: datetime, warn_h: float,
               crit_h: float) -> dict[str, Any]:
    if not source or not source.get("last_success_at"):
        return {"last_success_at": None, "age_seconds": None, "state": "never",
                "last_error": source.get("last_error") if source else None}
    age = (now - parse_ts(source["last_success_at"])).total_seconds()
    state = "critical" if age > crit_h * 3600 else "warning" if age > warn_h * 3600 else "ok"
    return {"last_success_at": source["last_success_at"], "age_seconds": round(age),
            "state": state, "last_error": source.get("last_error"),
            "last_attempt_at": source.get("last_attempt_at")}


def build_status(store: Store, config: Config, now: datetime) -> dict[str, Any]:
    drift = {str(k): 0 for k in DriftKind}
    drift.update(drift_store.counts_by_kind(store))
    ops = {str(s): 0 for s in OpStatus}
    ops.update(op_store.counts_by_status(store))
    srcs = run_store.sources(store)
    t = config.thresholds
    staleness = {
        "hris": _staleness(srcs.get("hris"), now, t.hris_stale_warning_hours,
                           t.hris_stale_critical_hours),
        "lms": _staleness(srcs.get("lms"), now, t.lms_stale_warning_hours,
                          t.lms_stale_critical_hours),
    }
    terminations = termination_figures(store, now, config.guards.termination_sla_minutes)
    blocked = blocked_by_suppression(store, now, config.guards.termination_sla_minutes)
    terminations.update(blocked_by_suppression=blocked["people"],
                        blocked_by_suppression_count=blocked["count"],
                        blocked_by_suppression_overdue=blocked["overdue"])
    job = run_store.job_state(store)
    last = run_store.last_run(store)
    snapshot = store.rows("SELECT accepted, reasons, created_at FROM snapshots "
                          "ORDER BY id DESC LIMIT 1")
    last_feed = None
    if snapshot:
        import json

        last_feed = {"accepted": bool(snapshot[0]["accepted"]),
                     "reasons": json.loads(snapshot[0]["reasons"]),
                     "at": snapshot[0]["created_at"]}

    level, reasons = OK, []

    def raise_to(new: int, why: str) -> None:
        nonlocal level
        level = max(level, new)
        reasons.append(why)

    if job["state"] != "active":
        raise_to(CRITICAL, f"the sync job is {job['state']}: {job['reason']}")
    storage_failure = unresolved(store, now)
    if storage_failure is not None:
        # Operations may have reached the LMS without their outcome being recorded: an
        # operator looks until a run proves the database writable again.
        raise_to(CRITICAL, unresolved_reason(storage_failure))
    if terminations["overdue"]:
        raise_to(CRITICAL, f"{terminations['overdue']} termination(s) past the "
                           f"{config.guards.termination_sla_minutes:g}-minute SLA")
    if blocked["count"]:
        # A suppression is honoured, never silent: the leaver still has access.
        raise_to(CRITICAL if blocked["overdue"] else WARNING,
                 blocked_reason(blocked, config.guards.termination_sla_minutes))
    for name, info in staleness.items():
        if info["state"] == "critical":
            raise_to(CRITICAL, f"{name.upper()} data is stale ({format_age(info['age_seconds'])} old)")
        elif info["state"] == "warning":
            raise_to(WARNING, f"{name.upper()} data is stale ({format_age(info['age_seconds'])} old)")
        elif info["state"] == "never":
            raise_to(WARNING, f"{name.upper()} has never been read successfully")
    hris_outage = source_health.hris_outage(store)
    if hris_outage is not None:
        # Not a verdict on the data: the HRIS could not be read, so the last good
        # snapshot stays in force while it ages.
        what = ("refuses our credentials" if hris_outage["error_class"] == source_health.AUTH
                else "is unreachable")
        raise_to(CRITICAL, f"the HRIS {what} since {hris_outage['since']}: "
                           f"{hris_outage['error']}")
    if last_feed and not last_feed["accepted"]:
        raise_to(CRITICAL, "the last HRIS feed was rejected: " + "; ".join(last_feed["reasons"]))
    if ops["dead"] >= t.dead_ops_critical:
        raise_to(CRITICAL, f"{ops['dead']} operation(s) dead (retries exhausted)")
    if ops["held"]:
        raise_to(WARNING, f"{ops['held']} operation(s) held for approval")
    if ops["failed"] >= t.failed_ops_warning:
        raise_to(WARNING, f"{ops['failed']} operation(s) failed, retry scheduled")
    if terminations["pending"]:
        raise_to(WARNING, f"{terminations['pending']} termination(s) not yet enforced")
    attention = {str(k): drift[str(k)] for k in _ATTENTION if drift[str(k)]}
    ignored = drift_store.ignored_disputes(store)
    if ignored and attention.get(str(DriftKind.disputed)):
        # An operator looked at these and decided to leave them: not news any more.
        attention[str(DriftKind.disputed)] -= ignored
        attention = {k: n for k, n in attention.items() if n}
    if attention:
        raise_to(WARNING, "drift needing attention: " +
                 ", ".join(f"{n} {k}" for k, n in attention.items()))
    for key, url, _ in config_safety.cleartext_urls(config):
        # Accepted by an explicit allow_insecure_http (refused otherwise): a token that
        # travels in clear stays in sight until the URL is https:// again.
        raise_to(WARNING, config_safety.insecure_sentence(key, url))
    columns = run_store.last_column_change(store, now - timedelta(hours=COLUMN_CHANGE_HOURS))
    if columns is not None:
        # A column that left is data that stopped flowing (an optional or unmapped one: a
        # configured column missing rejects the feed); one that arrived is only news.
        raise_to(WARNING if columns["disappeared"] else OK, column_change_reason(columns))
    intake = intake_figures(store, config, now) if config.realtime.enabled else None
    if intake and intake["gated"]:
        raise_to(WARNING, f"{intake['gated']} HR event(s) wait behind the rejected HRIS "
                          "feed (gated)")
    if intake and intake["refused_recent"]:
        raise_to(WARNING, f"the webhook listener refused {intake['refused_recent']} "
                          f"request(s) in the last {REFUSED_WARNING_MINUTES} minutes "
                          f"(last: {intake['last_refused_why']})")
    leader = leader_figures(store, now) if config.ha.enabled else None
    if config.ha.enabled and leader is None:
        raise_to(WARNING, no_leader_reason(store))
    doc = {
        "status": LEVEL_NAMES[level],
        "exit_code": level,
        "generated_at": now.isoformat(),
        "reasons": reasons,
        "drift": drift,
        "drift_total": sum(drift.values()),
        "staleness": staleness,
        "terminations": terminations,
        "ops": ops,
        "job": {"state": job["state"], "reason": job["reason"], "since": job["since"]},
        "last_run": last,
        "last_feed": last_feed,
        "feed_columns": columns,
        "sources": {"hris": {"outage": hris_outage}},
        # Published so that a copy kept elsewhere shows a log cut short or rewritten since
        # (`rostersync audit verify --expect-head ANCHOR`).
        "audit_head": audit_log.head(store),
    }
    if intake is not None:  # only with [realtime] enabled: older documents are unchanged
        doc["intake"] = intake
    if config.ha.enabled:  # likewise [ha]: the leader, or null while nobody leads
        doc["leader"] = leader
    return doc


def column_change_reason(change: dict[str, Any]) -> str:
    """One sentence for a change in the export's columns, naming them and the run."""
    def names(cols: list[str]) -> str:
        return ", ".join(repr(c) for c in cols)

    parts = []
    if change["disappeared"]:
        parts.append(f"{names(change['disappeared'])} disappeared")
    if change["appeared"]:
        parts.append(f"{names(change['appeared'])} appeared")
    return (f"the HRIS export's columns changed at {change['at']} (run {change['run_id']}): "
            + "; ".join(parts))


def blocked_reason(blocked: dict[str, Any], sla_minutes: float, named: int = 3) -> str:
    """The reason "N termination(s) blocked by a suppression", naming the oldest few."""
    n, late, people = blocked["count"], blocked["overdue"], blocked["people"]
    text = f"{n} termination(s) blocked by a suppression"
    if late:
        text += f", {late} past the {sla_minutes:g}-minute SLA"
    text += ": " + "; ".join(f"{e['employee_id']} ({describe(e)})" for e in people[:named])
    return text + (f"; and {n - named} more" if n > named else "")


def format_age(seconds: float | None) -> str:
    """An age as people read it at a glance: 45s, 12m, 5h 07m, 3d 4h."""
    if seconds is None:
        return "never"
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"
