"""The alert banner: a paused or quarantined job, a held batch or a rejected feed must be
impossible to miss, on every screen."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static


def alerts(status: dict[str, Any]) -> list[str]:
    out = []
    job = status.get("job") or {}
    if job.get("state") and job["state"] != "active":
        out.append(f"JOB {job['state'].upper()}: {job.get('reason') or 'no reason given'}"
                   " (palette: resume)")
    held = (status.get("ops") or {}).get("held", 0)
    if held:
        out.append(f"{held} OPERATION(S) HELD FOR APPROVAL (press 7 to review)")
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
