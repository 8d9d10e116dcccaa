"""The alert banner: a paused or quarantined job, a held batch, an HRIS that cannot be
read or a rejected feed must be impossible to miss, on every screen, yet take one line
at 80x24: folded, it shows the most severe alert and how many more there are; `b`
unfolds it to every alert, wrapped in full."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget

from rostersync.console import fmt

# An HRIS that could not be read (storage/source_health.py), by its error class.
_OUTAGE = {"source_unreachable": "HRIS UNREACHABLE",
           "source_auth": "HRIS REFUSED OUR CREDENTIALS"}

# Lower is more severe: the folded banner shows the most severe alert. A quarantine
# means nothing is applied at all; an unreadable or rejected feed means HR changes are
# not seen; a pause was chosen by someone; a held batch waits for a person.
QUARANTINED, OUTAGE, FEED_REJECTED, PAUSED, SCHEDULER_PAUSED, HELD = range(6)

# The real command (console/cli.py: `rostersync resume`), for a console that cannot act.
RESUME_CLI = "resume with `rostersync resume`"


def ranked_alerts(status: dict[str, Any], *, read_only: bool = False,
                  scheduler_paused: bool = False) -> list[tuple[int, str]]:
    """(severity, line) per alert, most severe first."""
    out: list[tuple[int, str]] = []
    job = status.get("job") or {}
    if job.get("state") and job["state"] != "active":
        how = RESUME_CLI if read_only else "palette: resume"
        rank = QUARANTINED if job["state"] == "quarantined" else PAUSED
        out.append((rank, f"JOB {job['state'].upper()}: {job.get('reason') or 'no reason given'}"
                          f" ({how})"))
    if scheduler_paused:
        out.append((SCHEDULER_PAUSED,
                    "SCHEDULER PAUSED: no runs start until resumed (palette: resume)"))
    held = (status.get("ops") or {}).get("held", 0)
    if held:
        out.append((HELD, f"{held} OPERATION(S) HELD FOR APPROVAL (press 7 to review)"))
    outage = status.get("hris_outage")
    if outage:
        # Its own line: the source was not read, which says nothing about the feed (the
        # rejected-feed line below is the gate's verdict on data that was read).
        title = _OUTAGE.get(outage.get("error_class"), "HRIS UNREADABLE")
        out.append((OUTAGE, f"{title} since {fmt.short_time(outage.get('since'))}: "
                            f"{outage.get('error') or 'no detail'}"))
    feed = status.get("last_feed")
    if feed and not feed.get("accepted"):
        out.append((FEED_REJECTED,
                    "LAST HRIS FEED REJECTED: " + "; ".join(feed.get("reasons") or [])))
    return sorted(out, key=lambda alert: alert[0])  # stable: equal ranks keep their order


def alerts(status: dict[str, Any], *, read_only: bool = False,
           scheduler_paused: bool = False) -> list[str]:
    return [line for _, line in ranked_alerts(status, read_only=read_only,
                                              scheduler_paused=scheduler_paused)]


def fit(line: str, width: int) -> str:
    """The line in at most `width` cells, cut in the middle: an alert's head says what
    happened and its tail often names the culprit (a path, an HTTP status)."""
    line = " ".join(line.split())
    if len(line) <= width:
        return line
    if width <= 1:
        return "…"[:width]
    head = (width - 1) * 3 // 5
    tail = width - 1 - head
    return line[:head] + "…" + (line[-tail:] if tail else "")


def folded(lines: list[str], width: int) -> str:
    """One line: the most severe alert, then how many more and the key that shows them."""
    if not lines:
        return ""
    more = len(lines) - 1
    suffix = f" · +{more} more alert{'s' if more > 1 else ''} (b)" if more else ""
    if not more and len(lines[0]) > width:
        suffix = " (b)"  # cut: say how to read the rest
    return fit(lines[0], max(1, width - len(suffix))) + suffix


class Banner(Widget):
    DEFAULT_CSS = "Banner { height: auto; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lines: list[str] = []
        self.expanded = False

    def show_status(self, status: dict[str, Any], scheduler_paused: bool = False, *,
                    read_only: bool = False, expanded: bool = False) -> None:
        self.lines = alerts(status, read_only=read_only, scheduler_paused=scheduler_paused)
        self.expanded = expanded
        self.display = bool(self.lines)
        self.refresh(layout=True)

    def render(self) -> Text:
        if self.expanded or len(self.lines) == 0:
            return Text("\n".join(self.lines))  # every alert, wrapped in full
        # Rendered per size, so a resize re-fits the folded line.
        return Text(folded(self.lines, self.content_size.width or 80), no_wrap=True,
                    overflow="ellipsis")
