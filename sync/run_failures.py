"""How a run that could not read one side ends: each failure has its own status, error
class and record, so the operator is never told "rejected feed" for a source that could
not even be reached."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any, Protocol

from rostersync.storage import runs as run_store
from rostersync.storage.db import Store
from rostersync.storage.failure import STORAGE, StorageFailure
from rostersync.sync.clock import Clock
from rostersync.sync.config import Config
from rostersync.sync.connectors.base import ConnectorError, FeedError, HrisSource, SourceUnavailable
from rostersync.sync.events import FeedRejected
from rostersync.sync.feedgate import FeedStats
from rostersync.sync.models import ErrorClass
from rostersync.sync.run_report import RunReport


class Engine(Protocol):
    """What these need of the engine (typed here so this module need not import it)."""

    store: Store
    clock: Clock
    source: HrisSource
    config: Config
    on_event: Callable[[Any], None]

FEED_REJECTED = "feed_rejected"  # the error class of a feed that was read and refused


def source_failed(engine: Engine, run_id: int, kind: str, dry_run: bool,
                  exc: SourceUnavailable) -> RunReport:
    """Nothing was read, so nothing is known about the feed: no snapshot is recorded (the
    gate's verdict on the last feed stands, the last good snapshot stays in force) and
    the run fails with the source's own error class."""
    what = ("HRIS refused our credentials" if exc.error_class == SourceUnavailable.AUTH
            else "HRIS unreachable")
    run_store.source_attempt(engine.store, "hris", engine.clock.now(),
                             engine.source.describe(), error=str(exc),
                             error_class=exc.error_class)
    return RunReport(run_id, kind, "failed", dry_run, error_class=exc.error_class,
                     message=f"{what}: {exc} (nothing changed; the last accepted snapshot "
                             "stays in force)")


def feed_rejected(engine: Engine, report: RunReport, stats: FeedStats,
                  reasons: list[str]) -> RunReport:
    """The feed gate refused a feed that was read: its snapshot is recorded as rejected
    (with the figures that tripped the gate) and the last accepted one stays in force."""
    now = engine.clock.now()
    run_id = report.run_id or 0
    run_store.record_snapshot(engine.store, now, run_id, "full", False, stats.rows,
                              stats.active, stats.null_counts, reasons,
                              engine.config.fingerprint())
    message = "feed rejected: " + "; ".join(reasons)
    run_store.source_attempt(engine.store, "hris", now, engine.source.describe(),
                             error=message, error_class=FEED_REJECTED)
    report.status = "rejected"
    report.error_class = FEED_REJECTED
    report.reasons = reasons
    report.message = message + " (the last accepted snapshot stays in force)"
    engine.on_event(FeedRejected(run_id, reasons))
    return report


def feed_unusable(engine: Engine, run_id: int, kind: str, dry_run: bool,
                  exc: FeedError) -> RunReport:
    """An unusable export (missing column, bad encoding, truncated answer) is rejected
    whole, like a feed the gate refuses: the last accepted snapshot stays in force."""
    now = engine.clock.now()
    run_store.source_attempt(engine.store, "hris", now, engine.source.describe(),
                             error=str(exc), error_class=FEED_REJECTED)
    run_store.record_snapshot(engine.store, now, run_id, kind, False, 0, 0, {}, [str(exc)],
                              engine.config.fingerprint())
    return RunReport(run_id, kind, "rejected", dry_run, reasons=[str(exc)],
                     message=f"feed rejected: {exc}", error_class=FEED_REJECTED)


def lms_unreadable(engine: Engine, run_id: int, kind: str, dry_run: bool,
                   exc: ConnectorError) -> RunReport:
    """The LMS could not be listed: the run fails; refused credentials also quarantine
    the job, since every further call would be refused the same way."""
    report = RunReport(run_id, kind, "failed", dry_run,
                       message=f"the LMS could not be read: {exc}")
    run_store.source_attempt(engine.store, "lms", engine.clock.now(), engine.config.lms.type,
                             error=str(exc))
    if exc.error_class == ErrorClass.auth:
        run_store.set_job_state(engine.store, engine.clock.now(), "quarantined",
                                report.message, actor="rostersync")
        report.status = "quarantined"
    return report


def storage_failed(engine: Engine, run_id: int, kind: str, dry_run: bool,
                   failure: StorageFailure) -> RunReport:
    """The database failed under the run: it stops, and says so in one sentence. Its end
    is recorded when the database still takes that one write (the run then keeps
    ``status`` CRITICAL until a run succeeds); on a disk with no byte left it cannot be,
    and ``status`` reads the run left 'running' by a process that is gone instead."""
    report = RunReport(run_id, kind, "failed", dry_run, error_class=STORAGE,
                       message=f"{failure}; the run stopped, and operations sent without "
                               "their outcome recorded are read back from the LMS before "
                               "any is sent again")
    with contextlib.suppress(sqlite3.Error):  # the same failure again: see above
        run_store.finish_run(engine.store, run_id, engine.clock.now(), "failed",
                             report.counts, report.message, STORAGE)
    return report
