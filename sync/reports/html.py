"""One self-contained HTML file per report: inline CSS and inline SVG charts, no script
and no external resource, so it opens offline in any browser and can be mailed as is."""

from __future__ import annotations

from collections.abc import Sequence, Set
from html import escape
from typing import Any

from rostersync.storage.audit_chain import who
from rostersync.sync.reports import svg
from rostersync.sync.status import format_age

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.period { color: #555; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; margin: 1em 0; }
.card { border: 1px solid #ccd; border-radius: 6px; padding: 0.5em 0.9em; min-width: 8em; }
.card b { display: block; font-size: 1.4em; }
.card.bad b { color: #c0504d; } .card.good b { color: #4f9d69; }
table { border-collapse: collapse; width: 100%; font-size: 0.85em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.5em; text-align: left;
         vertical-align: top; }
th { background: #f3f4f7; } td.num { text-align: right; }
tr.late td, tr.open_past_sla td { background: #fdf1f0; }
.ok { color: #4f9d69; } .broken { color: #c0504d; font-weight: bold; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.85em; }
"""


def render(doc: dict[str, Any]) -> str:
    body = {"terminations": _terminations, "drift": _drift,
            "operator": _operator}[doc["report"]](doc)
    title = f"rostersync {doc['report']} report"
    p = doc["period"]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{escape(title)}</h1><p class=\"period\">from {escape(p['since'])} to "
            f"{escape(p['until'])} (UTC), from recorded history only</p>"
            + body + _audit_head(doc) + "</body></html>\n")


def _audit_head(doc: dict[str, Any]) -> str:
    head = doc.get("audit_head")
    if not head:
        return ""
    return (f'<p class="period" id="audit-head">audit head (keep a copy; '
            f"<code>rostersync audit verify --expect-head</code> compares it): "
            f"<code>{escape(head['anchor'])}</code></p>")


def _cards(items: Sequence[tuple[str, Any, str]]) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card {cls}" data-figure="{escape(label)}"><b>{escape(str(value))}</b>'
        f"{escape(label)}</div>" for label, value, cls in items) + "</div>"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Set[int] = frozenset(),
           row_classes: Sequence[str] | None = None, table_id: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    out = [f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>']
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes else ""
        cells = "".join(
            f'<td{" class=num" if j in numeric else ""}>'
            f'{escape("" if v is None else str(v))}</td>' for j, v in enumerate(row))
        out.append(f"<tr{cls}>{cells}</tr>")
    if not rows:
        out.append(f'<tr><td colspan="{len(headers)}">nothing recorded in this period</td></tr>')
    return "".join(out) + "</tbody></table>"


def _figure(chart: str, caption: str) -> str:
    return f"<figure>{chart}<figcaption>{escape(caption)}</figcaption></figure>"


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def _terminations(doc: dict[str, Any]) -> str:
    s, sla = doc["summary"], doc["sla_minutes"]
    d = s["delay_seconds"]
    cards = _cards([
        ("terminations", s["count"], ""),
        (f"within the {sla:g}-minute SLA", _pct(s["share_within_sla"]),
         "good" if s["share_within_sla"] == 1 else "bad"),
        ("p50 delay", format_age(d["p50"]) if d["count"] else "-", ""),
        ("p95 delay", format_age(d["p95"]) if d["count"] else "-", ""),
        ("max delay", format_age(d["max"]) if d["count"] else "-", ""),
        ("still active in the LMS", s["open"], "bad" if s["open"] else "good"),
        ("of them past the SLA", s["open_past_sla"], "bad" if s["open_past_sla"] else "good"),
    ])
    h = doc["charts"]["delay_histogram"]
    colours = [svg.GOOD if edge < h["sla_seconds"] else svg.BAD for edge in h["edges_seconds"]]
    chart = svg.bars("termination delay distribution", h["labels"], h["counts"], colours)
    missed = svg.hbars("missed SLA by reason", [(k, v, "") for k, v in sorted(
        s["missed_by_reason"].items(), key=lambda kv: -kv[1])])
    rows = doc["rows"]
    table = _table(
        ["employee", "name", "effective (local)", "effective (UTC)", "seen", "inactive",
         "delay", "SLA", "reason", "why"],
        [[r["employee_id"], r["name"], r["effective_local"], r["effective_utc"][:16],
          r["seen_at"][:16], (r["inactive_at"] or "still active")[:16], r["delay"],
          "met" if r["sla_met"] else r["outcome"].replace("_", " "), r["reason"] or "",
          r["why"] or ""] for r in rows],
        row_classes=[r["outcome"] for r in rows], table_id="terminations")
    return (cards + "<h2>Delay distribution</h2>"
            + _figure(chart, "Time from when the SLA clock started (the effective time, or "
                             "when rostersync first saw the termination if later) to the "
                             "LMS account's deactivation; green bars are within the SLA.")
            + "<h2>Why terminations missed the SLA</h2>" + _figure(missed, "main reason per "
                                                                   "termination")
            + "<h2>Every termination</h2>" + table)


def _drift(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    cards = _cards([("open at the end", s["open_total"], "bad" if s["open_total"] else "good"),
                    ("opened", sum(s["opened"].values()), ""),
                    ("resolved", sum(s["resolved"].values()), ""),
                    ("oldest open", format_age(s["oldest_open_age_seconds"])
                     if s["oldest_open_age_seconds"] is not None else "-", ""),
                    ("failed attempts", s["failed_attempts"],
                     "bad" if s["failed_attempts"] else "good")])
    series = doc["series"]
    shown = {k: v for k, v in series["open"].items() if any(v)} or {"none": [0] * len(
        series["ends"])}
    over_time = svg.lines(f"open drift by kind, per {series['bucket']}",
                          [e[5:10] for e in series["ends"]], shown)
    failures = svg.hbars("failures by error class", [
        (f"{f['error_class']} ({f['owner']})", f["attempts"], f"attempts, {f['ops']} ops")
        for f in doc["failures"]])
    resolve = _table(["kind", "resolved", "p50", "p95", "max"], [
        [r["kind"], r["count"], format_age(r["p50"]) if r["count"] else "-",
         format_age(r["p95"]) if r["count"] else "-",
         format_age(r["max"]) if r["count"] else "-"]
        for r in doc["time_to_resolve"] if r["count"]], numeric={1}, table_id="resolve")
    oldest = _table(["subject", "kind", "owner", "first seen", "age", "detail"], [
        [o["subject"], o["kind"], o["owner"], o["first_seen_at"][:16], o["age"], o["detail"]]
        for o in doc["oldest_open"]], table_id="oldest")
    quality = _table(["field", "owner", "kind", "seen", "open", "examples"], [
        [q["field"], q["owner"], q["kind"], q["seen"], q["open"], " | ".join(q["examples"])]
        for q in doc["data_quality"]], numeric={3, 4}, table_id="quality")
    return (cards + "<h2>Drift over time</h2>"
            + _figure(over_time, "Open drift rows at the end of each bucket, by kind.")
            + "<h2>Failures by class</h2>"
            + _figure(failures, "Failed attempts to change the LMS in the period, by error "
                                "class and the team that owns it.")
            + "<h2>Time to resolve</h2>" + resolve
            + "<h2>Oldest open items</h2>" + oldest
            + "<h2>Data-quality problems by field and owner</h2>" + quality)


def _operator(doc: dict[str, Any]) -> str:
    c, s = doc["chain"], doc["summary"]
    chain = (f'<p class="{"ok" if c["ok"] else "broken"}" id="chain">audit chain: '
             f'{escape(c["message"])}</p>')
    if c["checkpoint"]:
        cp = c["checkpoint"]
        chain += (f"<p>entries up to {escape(str(cp['through_id']))} ({escape(cp['through_at'])})"
                  f" were pruned by {escape(cp['actor'])} at {escape(cp['at'])}; the chain is "
                  "verified from that checkpoint's hash.</p>")
    cards = _cards([("audit entries", s["entries"], ""), ("actors", s["actors"], ""),
                    ("operations touched", s["ops_touched"], "")])
    chart = svg.hbars("actions by actor", [(a["actor"], a["total"], ", ".join(
        f"{k} {v}" for k, v in a.items() if k not in ("actor", "total")))
        for a in doc["by_actor"]], colour=svg.PALETTE[4])
    table = _table(["#", "at", "actor", "action", "target", "what"], [
        [e["id"], e["at"][:19], who(e), e["action"], e["target"] or "", e["what"]]
        for e in doc["entries"]], numeric={0}, table_id="entries")
    return (chain + cards + "<h2>Actions by actor</h2>" + _figure(chart, "audit entries per "
                                                                         "actor")
            + "<h2>Every action</h2>" + table)
