"""The alert banner: a paused or quarantined job, a held batch, an HRIS that cannot be
read or a rejected feed must be impossible to miss, on every screen."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from console import fmt

# An HRIS that could not be read (storage/source_health.py), by its error class.
_OUTAGE = {"source_unreachable": "HRIS UNREACHABLE",
           "source_auth": "HRIS REFUSED OUR CREDENTIALS"}


def alerts(status: dict[str, Any]) -> list[str]:
    out = []
    job = status.get("job") or {}
    if job.get("state") and job["state"] != "active":
        out.append(f"JOB {job['state'].upper()}: {job.get('reason') or 'no reason given'}"
                   " (palette: resume)")
    held = (status.get("ops") or {}).get("held", 0)
    if held:
        out.append(f"{held} OPERATION(S) HELD FOR APPROVAL (press 7 to review)")
    outage = status.get("hris_outage")
    if outage:
        # Its own line: the source was not read, which says nothing about the feed (the
        # rejected-feed line below is the gate's verdict on data that was read).
        title = _OUTAGE.get(outage.get("error_class"), "HRIS UNREADABLE")
        out.append(f"{title} since {fmt.short_time(outage.get('since'))} UTC: "
                   f"{outage.get('error') or 'no detail'}")
    feed = status.get("last_feed")
    if feed and not feed.get("accepted"):
        out.append("LAST HRIS FEED REJECTED: " + "; ".join(feed.get("reasons") or []))
    return out


class Banner(Static):
    def show_status(self, status: dict[str, Any], scheduler_paused: bool = False) -> None:
        lines = alerts(status)
        if scheduler_paused:
            lines.insert(0, "SCHEDULER PAUSED: no runs start until resumed (palette: resume)")
        self.update("\n".join(lines))
        self.display = bool(lines)
