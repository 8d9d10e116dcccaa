"""Plain-text summaries of the reports for a terminal (pure)."""

from __future__ import annotations

from typing import Any

from rostersync.storage.audit_chain import who
from rostersync.sync.status import format_age


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else format_age(seconds)


def render(doc: dict[str, Any]) -> str:
    head = f"{doc['report']} report, {doc['period']['since']} to {doc['period']['until']}"
    if doc.get("audit_head"):
        head += f"\naudit head: {doc['audit_head']['anchor']}"
    return head + "\n" + {"terminations": _terminations, "drift": _drift,
                          "operator": _operator}[doc["report"]](doc)


def _terminations(doc: dict[str, Any]) -> str:
    s, d = doc["summary"], doc["summary"]["delay_seconds"]
    lines = [f"{s['count']} termination(s): {s['on_time']} on time, {s['late']} late, "
             f"{s['open']} still active in the LMS ({s['open_past_sla']} past the "
             f"{doc['sla_minutes']:g}-minute SLA); within SLA {_pct(s['share_within_sla'])}",
             f"delay p50 {_age(d['p50'])}, p95 {_age(d['p95'])}, max {_age(d['max'])}; "
             f"longest access after leaving {_age(s['max_access_after_effective_seconds'])}"]
    if s["missed_by_reason"]:
        lines.append("missed SLA: " + ", ".join(f"{k} {v}" for k, v in
                                                sorted(s["missed_by_reason"].items())))
    lines.append("")
    lines.append(f"{'employee':<10} {'effective (local)':<26} {'inactive':<17} {'delay':>8}  "
                 f"{'outcome':<13} why")
    for r in doc["rows"]:
        lines.append(f"{r['employee_id']:<10} {r['effective_local']:<26} "
                     f"{(r['inactive_at'] or 'still active')[:16]:<17} {r['delay']:>8}  "
                     f"{r['outcome']:<13} {r['why'] or ''}")
    return "\n".join(lines)


def _drift(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    lines = ["open at the end: " + (", ".join(f"{k} {v}" for k, v in s["open_at_end"].items()
                                              if v) or "none"),
             "opened: " + (", ".join(f"{k} {v}" for k, v in s["opened"].items() if v) or "none"),
             "time to resolve: " + (", ".join(
                 f"{r['kind']} p50 {_age(r['p50'])} max {_age(r['max'])} ({r['count']})"
                 for r in doc["time_to_resolve"] if r["count"]) or "nothing resolved")]
    if doc["failures"]:
        lines.append("failures: " + ", ".join(f"{f['error_class']} ({f['owner']}) "
                                              f"{f['attempts']}" for f in doc["failures"]))
    if doc["data_quality"]:
        lines.append("data quality: " + ", ".join(
            f"{q['field']} ({q['owner']}, {q['kind']}) {q['open']} open"
            for q in doc["data_quality"]))
    if doc["oldest_open"]:
        lines.append("oldest open:")
        lines.extend(f"  {o['age']:>8}  {o['kind']:<20} {o['subject']:<12} {o['owner']:<5} "
                     f"{o['detail'][:70]}" for o in doc["oldest_open"][:10])
    return "\n".join(lines)


def _operator(doc: dict[str, Any]) -> str:
    c = doc["chain"]
    lines = [f"audit chain: {c['message']}" + ("" if c["ok"] else "  <-- BROKEN")]
    lines.append(", ".join(f"{a['actor']} {a['total']}" for a in doc["by_actor"])
                 or "no audit entries in this period")
    lines.extend(f"{e['at'][:19]} {who(e):<12} {e['action']:<11} "
                 f"{e['target'] or '':<10} {e['what']}" for e in doc["entries"])
    return "\n".join(lines)
