"""Prometheus metrics: the figures of `rostersync status --json`, computed on each scrape
by the same function (sync.status.build_status), so the endpoint, the textfile and the
monitoring-plugin check can never disagree. Plus what only this process knows: events
received and webhook requests refused.

Served at GET /metrics ([metrics] listen) and/or written for node_exporter's textfile
collector ([metrics] textfile), atomically.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from rostersync.storage import events as event_store
from rostersync.storage.db import Store, parse_ts
from rostersync.sync.clock import Clock
from rostersync.sync.config import Config
from rostersync.sync.config_realtime import split_host_port
from rostersync.sync.realtime.http import HttpListener, Request, Response
from rostersync.sync.status import build_status

JOB_STATES = ("active", "paused", "quarantined")
STALE_STATES = ("ok", "warning", "critical", "never")


def run_durations(store: Store) -> dict[str, float]:
    """The newest finished (not dry) run's duration in seconds, per run kind."""
    rows = store.rows(
        "SELECT kind, started_at, finished_at FROM runs WHERE id IN (SELECT max(id) FROM runs "
        "WHERE dry_run = 0 AND finished_at IS NOT NULL GROUP BY kind)")
    return {r["kind"]: (parse_ts(r["finished_at"]) - parse_ts(r["started_at"])).total_seconds()
            for r in rows}


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"rostersync_{name}", doc, labels=labels)


def families(status: dict[str, Any], durations: dict[str, float],
             events: dict[str, Any] | None, refused: int | None,
             alerts: dict[str, bool] | None = None) -> list[Metric]:
    """The metric families for one status document (pure)."""
    out: list[Metric] = []
    g = _gauge("status", "Overall level as `rostersync status` exits: 0 OK, 1 WARNING, "
                         "2 CRITICAL")
    g.add_metric([], status["exit_code"])
    out.append(g)
    g = _gauge("drift", "Open drift rows by kind", ["kind"])
    for kind, n in sorted(status["drift"].items()):
        g.add_metric([kind], n)
    out.append(g)
    g = _gauge("drift_total", "Open drift rows")
    g.add_metric([], status["drift_total"])
    out.append(g)
    age = _gauge("source_staleness_seconds", "Seconds since the last successful read, per "
                                             "source (absent: never read)", ["source"])
    state = _gauge("source_stale_state", "1 for the source's staleness state",
                   ["source", "state"])
    for source, info in sorted(status["staleness"].items()):
        if info["age_seconds"] is not None:
            age.add_metric([source], info["age_seconds"])
        for s in STALE_STATES:
            state.add_metric([source, s], 1 if info["state"] == s else 0)
    out += [age, state]
    t = status["terminations"]
    for key, doc in (("pending", "Terminations in force in HR whose LMS account is active"),
                     ("overdue", "Pending terminations past the SLA"),
                     ("scheduled", "Future-dated terminations waiting for their time")):
        g = _gauge(f"terminations_{key}", doc)
        g.add_metric([], t[key])
        out.append(g)
    # Not "_count": that suffix belongs to summaries and histograms in Prometheus.
    for name, key, doc in (
            ("blocked_by_suppression", "blocked_by_suppression_count",
             "Pending terminations an operator's suppression blocks"),
            ("blocked_by_suppression_overdue", "blocked_by_suppression_overdue",
             "Of the terminations a suppression blocks, those past the SLA")):
        g = _gauge(f"terminations_{name}", doc)
        g.add_metric([], t[key])
        out.append(g)
    g = _gauge("terminations_oldest_pending_age_seconds", "Age of the oldest pending one")
    g.add_metric([], t["oldest_pending_age_seconds"] or 0)
    out.append(g)
    # The SLA itself, so that dashboards and alert rules compare ages with the configured
    # value ([guards] termination_sla_minutes) instead of a copy of it.
    g = _gauge("termination_sla_seconds", "The termination SLA ([guards] "
                                          "termination_sla_minutes), in seconds")
    g.add_metric([], t["sla_minutes"] * 60)
    out.append(g)
    g = _gauge("ops", "Operations by status", ["status"])
    for s, n in sorted(status["ops"].items()):
        g.add_metric([s], n)
    out.append(g)
    g = _gauge("job_state", "1 for the apply job's state", ["state"])
    for s in JOB_STATES:
        g.add_metric([s], 1 if status["job"]["state"] == s else 0)
    out.append(g)
    g = _gauge("quarantined", "1 while the job is quarantined")
    g.add_metric([], 1 if status["job"]["state"] == "quarantined" else 0)
    out.append(g)
    g = _gauge("last_run_duration_seconds", "Duration of the newest finished run, per kind",
               ["kind"])
    for kind, seconds in sorted(durations.items()):
        g.add_metric([kind], seconds)
    out.append(g)
    feed = status.get("last_feed")
    g = _gauge("last_feed_accepted", "1 when the newest HRIS feed passed the feed gate")
    if feed is not None:  # absent until the first full feed
        g.add_metric([], int(feed["accepted"]))
    out.append(g)
    if events is not None:
        g = _gauge("events_received_24h", "HR events received in the last 24 h, by outcome",
                   ["status"])
        for s, n in sorted(events["last_24h"].items()):
            g.add_metric([s], n)
        out.append(g)
        g = _gauge("events_queued", "HR events waiting for their sync (queued or gated)")
        g.add_metric([], events["queued"] + events["gated"])
        out.append(g)
    if refused is not None:
        g = _gauge("webhooks_refused", "Webhook requests refused since this process started")
        g.add_metric([], refused)
        out.append(g)
    if status.get("intake") is not None:
        g = _gauge("webhooks_refused_24h", "Webhook requests refused in the last 24 h, by "
                                           "any process (status: intake.refused_24h)")
        g.add_metric([], status["intake"]["refused_24h"])
        out.append(g)
    head = status.get("audit_head")
    if head is not None:
        # The audit head anchor: scraped and kept by monitoring, it shows a log cut short
        # (the count goes down) or rewritten (the hash at a count changes).
        g = _gauge("audit_entries", "Audit entries ever written (the head's number)")
        g.add_metric([], head["count"])
        out.append(g)
        g = _gauge("audit_head", "1, labelled with the newest audit entry's number and hash",
                   ["count", "hash"])
        g.add_metric([str(head["count"]), head["hash"]], 1)
        out.append(g)
    if "leader" in status:  # [ha] enabled
        out += _leader_families(status["leader"])
    if alerts is not None:
        g = _gauge("alert_active", "1 while an alert condition holds", ["alert"])
        for key, active in sorted(alerts.items()):
            g.add_metric([key], int(active))
        out.append(g)
    return out


def _leader_families(leader: dict[str, Any] | None) -> list[Metric]:
    """The leader node ([ha]); the families are empty while no node leads."""
    node = _gauge("leader", "1, labelled with the node that holds the leader lease", ["node"])
    token = _gauge("leader_token", "The leader lease's fencing token (grows at each change)")
    since = _gauge("leader_since_timestamp_seconds", "When the leader took the lease "
                                                     "(Unix time)")
    if leader is not None:
        node.add_metric([str(leader["node"])], 1)
        token.add_metric([], leader["token"])
        if leader["since"]:
            since.add_metric([], datetime.fromisoformat(leader["since"]).timestamp())
    return [node, token, since]


class StatusCollector(Collector):
    def __init__(self, store: Store, config: Config, clock: Clock,
                 refused: Callable[[], int] | None = None) -> None:
        self.store, self.config, self.clock = store, config, clock
        self.refused = refused

    def collect(self) -> Iterator[Metric]:
        status = build_status(self.store, self.config, self.clock.now())
        intake = status.get("intake")
        # With [realtime] on, the event figures are the status document's own.
        events = ({"last_24h": intake["events_24h"], "queued": intake["queued"],
                   "gated": intake["gated"]} if intake is not None
                  else event_store.summary(self.store, self.clock.now()))
        alerts = {r["key"]: bool(r["active"]) for r in self.store.rows(
            "SELECT key, active FROM alert_state")}
        yield from families(status, run_durations(self.store), events,
                            self.refused() if self.refused else None, alerts)


def registry_for(store: Store, config: Config, clock: Clock,
                 refused: Callable[[], int] | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(store, config, clock, refused))
    return registry


class MetricsService:
    """The /metrics endpoint (its own listener, or a route on the webhook listener) and
    the textfile export, on the scheduler's loop; scrapes run in a worker thread."""

    def __init__(self, store: Store, config: Config, clock: Clock, *,
                 refused: Callable[[], int] | None = None, own_listener: bool = True,
                 log: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.config = config
        self.registry = registry_for(store, config, clock, refused)
        self.log = log or (lambda _record: None)
        m = config.metrics
        self.listener = None
        if own_listener and m.listen:
            host, port = split_host_port(m.listen)
            self.listener = HttpListener(host, port, self.handle)
        self._task: asyncio.Task | None = None

    async def handle(self, request: Request) -> Response:
        if request.path != "/metrics":
            return Response(404, b'{"error": "only /metrics is served here"}')
        body = await asyncio.to_thread(generate_latest, self.registry)
        return Response(200, body, CONTENT_TYPE_LATEST)

    async def start(self) -> str | None:
        url = None
        if self.listener is not None:
            await self.listener.start()
            url = self.listener.url + "/metrics"
        if self.config.metrics.textfile is not None:
            self._task = asyncio.create_task(self._textfile_loop(), name="metrics-textfile")
        return url

    def write_textfile(self) -> None:
        path = self.config.metrics.textfile
        if path is not None:
            write_to_textfile(str(path), self.registry)  # a temp file, then a rename

    async def _textfile_loop(self) -> None:
        failing: str | None = None  # the error last logged, until a write succeeds
        while True:
            failing = await asyncio.to_thread(self.textfile_step, failing)
            await asyncio.sleep(self.config.metrics.textfile_every_seconds)

    def textfile_step(self, failing: str | None) -> str | None:
        """Write the textfile once; a full disk or a missing folder is logged when it
        starts (or changes) and when it ends, not every interval. Returns the error."""
        try:
            self.write_textfile()
        except Exception as exc:
            error = _textfile_error(self.config.metrics.textfile, exc)
            if error != failing:
                self.log({"event": "job_error", "job": "metrics-textfile", "error": error})
            return error
        if failing is not None:
            self.log({"event": "job_recovered", "job": "metrics-textfile"})
        return None

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        self.close()
        if self.listener is not None:
            await self.listener.wait_closed()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _textfile_error(path: Any, exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError) and path is not None:
        return (f"metrics.textfile: the folder {path.parent} does not exist; the metrics "
                "textfile is not written until it does")
    if isinstance(exc, OSError) and exc.strerror:
        return f"metrics.textfile: cannot write {path} ({exc.strerror})"
    return f"{type(exc).__name__}: {exc}"
