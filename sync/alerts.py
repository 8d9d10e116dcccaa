"""Alerts: one notice when a condition starts, one when it ends.

Conditions come from the status document (the same figures `rostersync status` and the
metrics show): the job quarantined, operations held for approval, terminations past
their SLA, a source gone stale. Each condition's state and the state last announced are
stored (storage.alert_state), so a restart neither repeats nor loses a notice, and a
notice that could not be delivered is owed until a later check delivers it.

Channels: a JSON webhook (Slack-compatible: the body has "text") and a command that
gets the notice as JSON on stdin.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import httpx

from storage import alert_state as alert_store
from storage.db import Store
from sync.clock import Clock
from sync.config import Config, secret_from_env
from sync.config_realtime import CommandChannel, WebhookChannel
from sync.status import build_status

STALE_LEVELS = {"warning": ("warning", "critical"), "critical": ("critical",)}


def conditions(status: dict[str, Any], stale_from: str) -> dict[str, tuple[bool, str]]:
    """Each alert condition: (holds now, one sentence) (pure)."""
    job = status["job"]
    held = status["ops"].get("held", 0)
    t = status["terminations"]
    out = {
        "quarantine": (job["state"] == "quarantined",
                       f"the sync job is quarantined: {job['reason']}"
                       if job["state"] == "quarantined" else "the sync job is not quarantined"),
        "held": (held > 0, f"{held} operation(s) held for approval" if held
                 else "no operations are held"),
        "sla": (t["overdue"] > 0,
                f"{t['overdue']} termination(s) past the {t['sla_minutes']:g}-minute SLA"
                if t["overdue"] else "no termination is past its SLA"),
    }
    for source, info in status["staleness"].items():
        stale = info["state"] in STALE_LEVELS[stale_from]
        out[f"stale:{source}"] = (
            stale, f"{source.upper()} data is stale ({info['age_seconds']}s since the last "
                   "successful read)" if stale else f"{source.upper()} data is fresh")
    return out


def notice(key: str, active: bool, detail: str, status: dict[str, Any]) -> dict[str, Any]:
    word = "ALERT" if active else "RECOVERED"
    return {"text": f"rostersync {word} [{key}] on {socket.gethostname()}: {detail}",
            "alert": key, "state": "firing" if active else "resolved", "detail": detail,
            "status": status["status"], "at": status["generated_at"]}


class Alerter:
    def __init__(self, store: Store, config: Config, clock: Clock | None = None,
                 log: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.store = store
        self.config = config
        self.clock = clock or Clock()
        self.log = log or (lambda _record: None)
        self._lock = threading.Lock()  # the periodic check and a post-run check may meet
        # URLs that are secrets are read now, so a missing variable is a config error.
        self._urls = [secret_from_env(c.url_env, "alerts.channels.url_env") if c.url_env
                      else c.url for c in config.alerts.channels
                      if isinstance(c, WebhookChannel)]

    def check(self) -> list[dict[str, Any]]:
        """Record each condition's state and deliver the notices owed; returns them."""
        with self._lock:
            now = self.clock.now()
            status = build_status(self.store, self.config, now)
            sent = []
            for key, (active, detail) in conditions(
                    status, self.config.alerts.stale_from).items():
                alert_store.set_state(self.store, now, key, active, detail)
            for key, row in alert_store.all_states(self.store).items():
                active = bool(row["active"])
                announced = row["notified"]
                if announced is None and not active:
                    continue  # never fired: nothing to recover from
                if announced is not None and bool(announced) == active:
                    continue
                doc = notice(key, active, row["detail"], status)
                error = self.deliver(doc)
                alert_store.mark_notified(self.store, now, key, active, error)
                self.log({"event": "alert", "alert": key, "state": doc["state"],
                          "delivered": error is None, "error": error})
                if error is None:
                    sent.append(doc)
            return sent

    def deliver(self, doc: dict[str, Any]) -> str | None:
        """Send to every channel; None when all took it, else the first failure."""
        body = json.dumps(doc, sort_keys=True).encode()
        errors = []
        webhooks = iter(self._urls)
        for channel in self.config.alerts.channels:
            try:
                if isinstance(channel, WebhookChannel):
                    url = next(webhooks)
                    answer = httpx.post(url, content=body, timeout=channel.timeout_seconds,
                                        headers={"Content-Type": "application/json"})
                    if answer.status_code >= 300:
                        # The URL may be a secret (Slack): never put it in a message.
                        errors.append(f"webhook channel answered HTTP {answer.status_code}")
                elif isinstance(channel, CommandChannel):
                    done = subprocess.run(channel.command, input=body, capture_output=True,
                                          timeout=channel.timeout_seconds, check=False,
                                          env=_env(doc))
                    if done.returncode:
                        errors.append(f"command {channel.command[0]} exited with "
                                      f"{done.returncode}")
            except httpx.HTTPError as exc:
                errors.append(f"webhook channel: {type(exc).__name__}")
            except (OSError, subprocess.TimeoutExpired) as exc:
                errors.append(f"command {channel.command[0]}: {exc}")
        return errors[0] if errors else None


def _env(doc: dict[str, Any]) -> dict[str, str]:
    import os

    return {**os.environ, "ROSTERSYNC_ALERT": doc["alert"],
            "ROSTERSYNC_ALERT_STATE": doc["state"]}

