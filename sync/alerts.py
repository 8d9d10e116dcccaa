"""Alerts: one notice when a condition starts, one when it ends.

Conditions come from the status document (the same figures `rostersync status` and the
metrics show): the job quarantined, operations held for approval, terminations past
their SLA, a source gone stale. Each condition's state and the state last announced are
stored (storage.alert_state), so a restart neither repeats nor loses a notice, and a
notice that could not be delivered is owed until a later check delivers it. Delivery is
remembered per channel: when one channel took a notice and another did not, only the
other is sent it again.

Channels: a JSON webhook (Slack-compatible: the body has "text") and a command that
gets the notice as JSON on stdin.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from rostersync.storage import alert_state as alert_store
from rostersync.storage.db import Store
from rostersync.sync import config_safety
from rostersync.sync.clock import Clock
from rostersync.sync.config import Config, ConfigError, secret_from_env
from rostersync.sync.config_realtime import CommandChannel, WebhookChannel
from rostersync.sync.status import build_status

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
            "status": status["status"], "at": status["generated_at"],
            # The audit head, so that every notice keeps an anchor outside the database.
            "audit_head": (status.get("audit_head") or {}).get("anchor")}


@dataclass(frozen=True)
class Channel:
    """A configured channel, its identity in the database and, for a webhook, its URL."""

    id: str
    config: WebhookChannel | CommandChannel
    url: str | None = None


def channel_ids(targets: list[str]) -> list[str]:
    """Stable identities for channels from what they send to (a URL, an argv): the type
    and a digest, never the URL itself (a Slack URL is a secret). A repeated target gets
    a suffix so that each channel keeps its own delivery state (pure)."""
    seen: dict[str, int] = {}
    out = []
    for target in targets:
        kind, _, what = target.partition(" ")
        base = f"{kind}:{hashlib.sha256(what.encode()).hexdigest()[:12]}"
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return out


def owed(announced: int | None, active: bool) -> bool:
    """Whether a channel that last announced ``announced`` is owed a notice (pure)."""
    if announced is None:
        return active  # never fired here: nothing to recover from
    return bool(announced) != active


class Alerter:
    def __init__(self, store: Store, config: Config, clock: Clock | None = None,
                 log: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.store = store
        self.config = config
        self.clock = clock or Clock()
        self.log = log or (lambda _record: None)
        self._lock = threading.Lock()  # the periodic check and a post-run check may meet
        # URLs that are secrets are read now, so a missing variable is a config error.
        targets: list[str] = []
        urls: list[str | None] = []
        for c in config.alerts.channels:
            if isinstance(c, WebhookChannel):
                url = secret_from_env(c.url_env, "alerts.channels.url_env") if c.url_env \
                    else c.url
                assert url is not None  # exactly one of url, url_env (WebhookChannel)
                try:  # a URL from a variable is checked here; one in the file at load
                    config_safety.check_url(url, c.allow_insecure_http,
                                            f"the URL in ${c.url_env or 'url'}")
                except ValueError as exc:
                    raise ConfigError(str(exc)) from None
                targets.append(f"webhook {url}")
                urls.append(url)
            else:
                targets.append(f"command {json.dumps(c.command)}")
                urls.append(None)
        self.channels = [Channel(cid, c, url) for cid, c, url in
                         zip(channel_ids(targets), config.alerts.channels, urls, strict=True)]

    def check(self) -> list[dict[str, Any]]:
        """Record each condition's state and deliver the notices owed, each only to the
        channels that have not taken it; returns the notices at least one channel took."""
        with self._lock:
            now = self.clock.now()
            status = build_status(self.store, self.config, now)
            sent = []
            for key, (active, detail) in conditions(
                    status, self.config.alerts.stale_from).items():
                alert_store.set_state(self.store, now, key, active, detail)
            delivered = alert_store.deliveries(self.store)
            for key, row in alert_store.all_states(self.store).items():
                active = bool(row["active"])
                # A channel with no row of its own stands where the alert as a whole does
                # (databases from before per-channel state, channels added since).
                announced = {ch.id: delivered[(key, ch.id)]["notified"]
                             if (key, ch.id) in delivered else row["notified"]
                             for ch in self.channels}
                due = [ch for ch in self.channels if owed(announced[ch.id], active)]
                if not due:
                    continue
                doc = notice(key, active, row["detail"], status)
                body = json.dumps(doc, sort_keys=True).encode()
                results = {ch.id: self.send(ch, body, doc) for ch in due}
                for cid, error in results.items():
                    alert_store.mark_channel(self.store, now, key, cid,
                                             active if error is None else announced[cid], error)
                errors = [e for e in results.values() if e is not None]
                alert_store.mark_notified(self.store, now, key, active,
                                          errors[0] if errors else None)
                self.log({"event": "alert", "alert": key, "state": doc["state"],
                          "delivered": not errors, "error": errors[0] if errors else None,
                          "channels": {cid: e or "ok" for cid, e in results.items()}})
                if len(errors) < len(results):
                    sent.append(doc)
            return sent

    def send(self, channel: Channel, body: bytes, doc: dict[str, Any]) -> str | None:
        """Deliver to one channel; None when it took the notice, else why not."""
        c = channel.config
        try:
            if isinstance(c, WebhookChannel):
                assert channel.url is not None  # a webhook channel's URL, read at start
                # Its status says whether it took the notice; its body is never read, so a
                # receiver that answers without end, or a byte at a time, costs nothing.
                with httpx.Client(timeout=c.timeout_seconds) as client, \
                        client.stream("POST", channel.url, content=body,
                                      headers={"Content-Type": "application/json"}) as answer:
                    if answer.status_code >= 300:
                        # The URL may be a secret (Slack): never put it in a message.
                        return f"webhook channel answered HTTP {answer.status_code}"
                return None
            done = subprocess.run(c.command, input=body, capture_output=True,
                                  timeout=c.timeout_seconds, check=False,
                                  env=command_env(os.environ, doc, c.pass_env))
            return f"command {c.command[0]} exited with {done.returncode}" \
                if done.returncode else None
        except httpx.HTTPError as exc:
            return f"webhook channel: {type(exc).__name__}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            # A webhook may fail with an OSError too (e.g. an unreadable CA bundle).
            if isinstance(c, WebhookChannel):
                return f"webhook channel: {exc}"
            return f"command {c.command[0]}: {exc}"


# What an alert command sees of our environment: enough to run and to format times, never
# the LMS token, the HRIS key or a webhook secret; a channel's pass_env adds names.
COMMAND_ENV = ("PATH", "HOME", "LANG", "TZ")


def command_env(environ: Mapping[str, str], doc: dict[str, Any],
                extra: Sequence[str] = ()) -> dict[str, str]:
    """The allow-listed environment of an alert command plus the alert's own (pure)."""
    env = {k: environ[k] for k in (*COMMAND_ENV, *extra) if k in environ}
    return {**env, "ROSTERSYNC_ALERT": doc["alert"], "ROSTERSYNC_ALERT_STATE": doc["state"]}

