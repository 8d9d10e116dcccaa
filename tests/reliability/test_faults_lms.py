"""Faults: every LMS connector (SCIM, Moodle, Canvas) against its sandbox, through the
engine, as an operator lives it.

- a 5xx storm on writes trips the circuit breaker: applying stops, the job is quarantined
  with the reason, the run exits 5; once the LMS recovers and the operator resumes, the
  next run converges with one account per person and no operation left behind;
- a burst of throttled answers (429 with Retry-After) is waited out through the injected
  sleep and the run succeeds;
- an expired token while applying quarantines the job (auth pauses it); a new token and a
  resume converge it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rostersync.sandbox.canvas import CanvasSandbox, json_reply
from rostersync.sandbox.faults import scim_error
from rostersync.sandbox.moodle import MoodleSandbox
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.storage import runs as run_store
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import config_from_dict, load_config
from rostersync.sync.connectors.canvas import CanvasTarget
from rostersync.sync.connectors.moodle import MoodleTarget
from rostersync.sync.connectors.scim import ScimTarget
from rostersync.sync.engine import EXIT_NOT_APPLIED, Engine
from tests import test_canvas, test_moodle
from tests.reliability import figures
from tests.support import World, by_external_id, lms_users, set_token_env, write_config

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
PEOPLE = 30
SCIM_TOKEN = "scim-reliability-token"


async def _no_wait(_seconds: float) -> None:
    return None


class WriteFaults:
    """A switchable answer for the LMS's write calls only (reads pass), counting hits."""

    def __init__(self) -> None:
        self.answer: Any = None
        self.left = 0  # answers to give; -1: until switched off
        self.served = 0
        self._lock = threading.Lock()

    def set(self, answer: Any, count: int = -1) -> None:
        with self._lock:
            self.answer, self.left = answer, count

    def take(self, is_write: bool) -> Any:
        with self._lock:
            if not is_write or self.answer is None or self.left == 0:
                return None
            self.left -= 1 if self.left > 0 else 0
            self.served += 1
            return self.answer


@dataclass
class LmsRig:
    name: str
    engine: Engine
    writes: WriteFaults
    storm: Any  # a 503 answer in this LMS's shape
    throttled: Any  # a 429 with Retry-After, or this LMS's throttle
    accounts: Callable[[], dict[str, int]]  # external key -> how many accounts
    set_token: Callable[[str], None]
    good_token: str


@contextmanager
def scim_rig(folder: Path) -> Iterator[LmsRig]:
    writes = WriteFaults()
    with ScimSandbox(token=SCIM_TOKEN,
                     fault=lambda m, p: writes.take(m in ("POST", "PATCH", "PUT"))) as lms:
        set_token_env(SCIM_TOKEN)
        csv_path = World.generate(PEOPLE).write(folder / "employees.csv")
        config = load_config(write_config(folder, lms.base_url, csv_path,
                                          lms={"bulk": "off"}))
        engine = Engine(config, Store(config.database.path), clock=FrozenClock(NOW),
                        target_factory=lambda: ScimTarget(config.lms, sleep=_no_wait))

        def accounts() -> dict[str, int]:
            return {k: len(v) for k, v in by_external_id(
                lms_users(lms.base_url, SCIM_TOKEN)).items()}

        status, headers, body = scim_error(429, "too many requests")
        yield LmsRig("scim", engine, writes, scim_error(503, "LMS under maintenance"),
                     (status, {**headers, "Retry-After": "3"}, body), accounts,
                     set_token_env, SCIM_TOKEN)


@contextmanager
def moodle_rig(folder: Path) -> Iterator[LmsRig]:
    writes = WriteFaults()
    os.environ[test_moodle.TOKEN_ENV] = test_moodle.TOKEN
    with MoodleSandbox(token=test_moodle.TOKEN, profile_fields=test_moodle.PROFILE) as lms:
        for dept in ("sales", "finance", "engineering", "support", "marketing"):
            lms.add_cohort(f"dept-{dept}")
        real = lms.app.faults
        lms.app.faults = lambda function, params: writes.take(
            function in ("core_user_create_users", "core_user_update_users")) or real(
            function, params)
        csv_path = World.generate(PEOPLE).write(folder / "employees.csv")
        path = test_moodle.write_moodle_config(folder, lms.base_url, csv_path)
        # One call per user, as the storm's breaker counts them (tests/test_moodle_batch.py
        # covers batches).
        path.write_text(path.read_text().replace("[lms]\n", '[lms]\nbulk = "off"\n'))
        config = config_from_dict(tomllib.loads(path.read_text()), path)
        engine = Engine(config, Store(config.database.path), clock=FrozenClock(NOW),
                        target_factory=lambda: MoodleTarget(config.lms, sleep=_no_wait))

        def accounts() -> dict[str, int]:
            counts: dict[str, int] = {}
            for user in lms.site.users.values():
                key = user.get("idnumber") or ""
                if key:  # the site's own admin and guest accounts have none
                    counts[key] = counts.get(key, 0) + 1
            return counts

        def set_token(value: str) -> None:
            os.environ[test_moodle.TOKEN_ENV] = value

        yield LmsRig("moodle", engine, writes,
                     (503, {}, b"Service Unavailable"),
                     (429, {"Retry-After": "3"}, b"Too Many Requests"),
                     accounts, set_token, test_moodle.TOKEN)


@contextmanager
def canvas_rig(folder: Path) -> Iterator[LmsRig]:
    writes = WriteFaults()
    os.environ[test_canvas.TOKEN_ENV] = test_canvas.TOKEN
    with CanvasSandbox(token=test_canvas.TOKEN, read_only_token=test_canvas.READ_ONLY,
                       fault=lambda m, p: writes.take(m in ("POST", "PUT"))) as lms:
        csv_path = World.generate(PEOPLE).write(folder / "employees.csv")
        config = test_canvas.canvas_config(folder, csv_path, lms)
        engine = Engine(config, Store(config.database.path), clock=FrozenClock(NOW),
                        target_factory=lambda: CanvasTarget(config.lms, sleep=_no_wait))

        def accounts() -> dict[str, int]:
            counts: dict[str, int] = {}
            for user in lms.data.list_users():
                key = user.get("sis_user_id") or ""
                counts[key] = counts.get(key, 0) + 1
            return counts

        def set_token(value: str) -> None:
            os.environ[test_canvas.TOKEN_ENV] = value

        yield LmsRig("canvas", engine, writes,
                     json_reply(503, {"errors": [{"message": "maintenance"}]}),
                     json_reply(429, {"errors": [{"message": "throttled"}]},
                                {"Retry-After": "3"}),
                     accounts, set_token, test_canvas.TOKEN)


RIGS = {"scim": scim_rig, "moodle": moodle_rig, "canvas": canvas_rig}


def _converged(rig: LmsRig) -> None:
    counts = rig.accounts()
    assert all(n == 1 for n in counts.values()), {k: n for k, n in counts.items() if n > 1}
    assert len(counts) == PEOPLE, len(counts)
    left = rig.engine.store.rows("SELECT status, count(*) AS n FROM ops "
                                 "WHERE status NOT IN ('succeeded', 'superseded') "
                                 "GROUP BY status")
    assert not left, left


def _resume(rig: LmsRig) -> None:
    """What `rostersync resume` does, after the operator has read the reason."""
    engine = rig.engine
    engine.clock.advance(hours=6)  # past every retry backoff
    run_store.set_job_state(engine.store, engine.clock.now(), "active", None, actor="test")


@pytest.mark.parametrize("connector", sorted(RIGS))
def test_a_write_storm_trips_the_breaker_and_resume_converges(connector, tmp_path):
    with RIGS[connector](tmp_path) as rig:
        rig.writes.set(rig.storm)
        report = asyncio.run(rig.engine.sync("full"))
        assert report.status == "quarantined" and report.exit_code == EXIT_NOT_APPLIED
        assert report.message.startswith("circuit breaker: "), report.message
        state = run_store.job_state(rig.engine.store)
        assert state["state"] == "quarantined" and "circuit breaker" in state["reason"]
        # It stopped early: some planned operations were never tried against the failing LMS.
        untried = rig.engine.store.scalar("SELECT count(*) FROM ops WHERE attempts = 0")
        assert untried > 0
        figures.add("faults: LMS write storms that tripped the breaker")
        paused = asyncio.run(rig.engine.sync("full"))
        assert paused.status == "quarantined" or paused.exit_code == EXIT_NOT_APPLIED
        rig.writes.set(None)
        _resume(rig)
        recovered = asyncio.run(rig.engine.sync("full"))
        assert recovered.status == "succeeded", (recovered.status, recovered.message)
        _converged(rig)
        figures.add("faults: LMS resumed cleanly after recovery")


@pytest.mark.parametrize("connector", sorted(RIGS))
def test_a_throttle_burst_is_waited_out(connector, tmp_path):
    with RIGS[connector](tmp_path) as rig:
        rig.writes.set(rig.throttled, count=5)
        report = asyncio.run(rig.engine.sync("full"))
        assert rig.writes.served == 5
        if report.status != "succeeded":  # throttled ops are retried on the next pass
            rig.engine.clock.advance(hours=1)
            report = asyncio.run(rig.engine.apply_due())
        assert report.status == "succeeded", (report.status, report.message)
        _converged(rig)
        figures.add("faults: LMS throttle bursts waited out")


@pytest.mark.parametrize("connector", sorted(RIGS))
def test_an_expired_token_quarantines_and_a_new_one_converges(connector, tmp_path):
    with RIGS[connector](tmp_path) as rig:
        rig.set_token("an-expired-token-0000000000000000")
        report = asyncio.run(rig.engine.sync("full"))
        assert report.exit_code == EXIT_NOT_APPLIED, (report.status, report.message)
        assert "an-expired-token" not in (report.message or "")
        assert run_store.job_state(rig.engine.store)["state"] == "quarantined"
        rig.set_token(rig.good_token)
        _resume(rig)
        recovered = asyncio.run(rig.engine.sync("full"))
        assert recovered.status == "succeeded", (recovered.status, recovered.message)
        _converged(rig)
        figures.add("faults: LMS expired tokens explained and recovered")
