"""One entry point for every report: name + period -> the report document."""

from __future__ import annotations

from typing import Any

from rostersync.storage import audit
from rostersync.storage.db import Store
from rostersync.sync.config import Config
from rostersync.sync.reports import drift, operator, terminations
from rostersync.sync.reports.period import Period

REPORTS = ("terminations", "drift", "operator")
DEFAULT_SINCE = {"terminations": "90d", "drift": "30d", "operator": "30d"}


def build_report(name: str, store: Store, config: Config, period: Period) -> dict[str, Any]:
    doc = _build(name, store, config, period)
    # Every report carries the audit head: a copy kept anywhere is an anchor that shows a
    # log cut short or rewritten since (`audit verify --expect-head`).
    doc["audit_head"] = audit.head(store)
    return doc


def _build(name: str, store: Store, config: Config, period: Period) -> dict[str, Any]:
    if name == "terminations":
        return terminations.build(store, period, config.guards.termination_sla_minutes)
    if name == "drift":
        return drift.build(store, period)
    if name == "operator":
        return operator.build(store, period)
    raise ValueError(f"unknown report {name!r}; known: {', '.join(REPORTS)}")
