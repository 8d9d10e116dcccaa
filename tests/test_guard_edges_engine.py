"""Guard edges that only a run can show: the circuit breaker's minimum and rate, the
vanished grace (time and pulls) and the mass-deactivation window, each exactly at its
threshold, one below and one above. Real engine, real scim2-server on 127.0.0.1, a frozen
clock; the LMS's answers come from the sandbox's fault hook."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from rostersync.storage import ops as op_store
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from tests.support import World, by_external_id, lms_users, write_config

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
# A value the LMS refuses (data class): dead at once, never retried, so every failing
# operation is exactly one attempt and the breaker's counts are known.
REFUSED = (400, {"Content-Type": "application/scim+json"}, json.dumps(
    {"schemas": [SCIM_ERROR], "status": "400", "scimType": "invalidValue",
     "detail": "title refused"}).encode())
# An LMS without SCIM Bulk answers a POST /Bulk with 501: every write is then its own
# request, so each refused write is one failed operation for the breaker.
NO_BULK = (501, {}, b"bulk not implemented")


def refusing(refuse) -> object:
    """A fault hook: refuses an account write (PATCH or PUT) when ``refuse()`` says so."""

    def fault(method, path):
        if method == "POST" and path.endswith("/Bulk"):
            return NO_BULK
        if method in ("PATCH", "PUT") and refuse():
            return REFUSED
        return None

    return fault


class Rig:
    def __init__(self, tmp_path, lms, people: int, concurrency: int = 8, **guards) -> None:
        self.world = World.generate(people)
        self.csv = self.world.write(tmp_path / "employees.csv")
        path = write_config(tmp_path, lms.base_url, self.csv, guards=guards)
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("concurrency = 8", f"concurrency = {concurrency}"),
                        encoding="utf-8")
        self.config = load_config(path)
        self.clock = FrozenClock(START)
        self.events: list = []
        self.engine = Engine(self.config, Store(self.config.database.path), clock=self.clock,
                             on_event=self.events.append)
        self.lms = lms
        self.token = None

    def run(self, kind: str = "full"):
        return asyncio.run(self.engine.sync(kind))

    def change(self, keys, column: str, value: str) -> None:
        for key in keys:
            self.world.rows[key][column] = value
        self.world.write(self.csv)

    def active(self, token: str) -> dict[str, bool]:
        users = by_external_id(lms_users(self.lms.base_url, token))
        return {key: found[0]["active"] for key, found in users.items()}


def keys(n: int, first: int = 1) -> list[str]:
    return [f"E{i:05d}" for i in range(first, first + n)]


# -- circuit breaker: "more than 40% of at least 20 ops" ------------------------------

@pytest.mark.parametrize(("failing", "tripped"), [(19, False), (20, True), (21, True)])
def test_breaker_needs_at_least_its_minimum_of_operations(
        tmp_path, scim_server, lms_token, failing, tripped):
    rig = Rig(tmp_path, scim_server, 30)
    assert rig.run().exit_code == 0
    scim_server.fault = refusing(lambda: True)
    rig.change(keys(failing), "Job Title", "Analyst")
    report = rig.run()
    if tripped:
        assert report.status == "quarantined" and report.exit_code == 5
        assert report.message.startswith(
            "circuit breaker: 20 of 20 operations failed (limit 40% of at least 20); "
            "last error: ")
    else:
        assert report.status != "quarantined" and report.exit_code == 1
        assert report.counts["applied"] == {"dead": 19}


@pytest.mark.parametrize(("limit", "tripped"), [(0.49, True), (0.5, False), (0.51, False)])
def test_breaker_trips_only_above_its_failure_rate(
        tmp_path, scim_server, lms_token, limit, tripped):
    # One worker, and every second write refused: the failure rate is exactly 1/2 at each
    # failure (1 of 2, 2 of 4, ...), so it trips only when the limit is below 50%.
    rig = Rig(tmp_path, scim_server, 12, concurrency=1, breaker_min_ops=2,
              breaker_failure_rate=limit)
    assert rig.run().exit_code == 0
    calls = {"n": 0}

    def every_second() -> bool:
        calls["n"] += 1
        return calls["n"] % 2 == 0

    scim_server.fault = refusing(every_second)
    rig.change(keys(10), "Job Title", "Analyst")
    report = rig.run()
    if tripped:
        assert report.status == "quarantined"
        assert report.message.startswith(
            "circuit breaker: 1 of 2 operations failed (limit 49% of at least 2)")
        assert calls["n"] == 2  # applying stopped: nothing was sent after the trip
    else:
        assert report.status != "quarantined" and report.exit_code == 1
        assert report.counts["applied"] == {"succeeded": 5, "dead": 5}


# -- vanished grace: 24 h, and (when set) N consecutive full pulls --------------------

@pytest.mark.parametrize(("after", "deactivated"), [
    (timedelta(hours=24) - timedelta(microseconds=1), False),
    (timedelta(hours=24), True),
    (timedelta(hours=24, microseconds=1), True)])
def test_vanished_person_is_deactivated_exactly_when_the_grace_ends(
        tmp_path, scim_server, lms_token, after, deactivated):
    rig = Rig(tmp_path, scim_server, 10)
    rig.run()
    del rig.world.rows["E00010"]
    rig.world.write(rig.csv)
    vanished_at = rig.clock.now()
    report = rig.run()
    assert report.counts["vanished"] == 1 and "deactivate" not in report.counts["planned"]
    store = rig.engine.store
    lms_id = store.scalar("SELECT lms_id FROM accounts WHERE external_key = 'E00010'")
    (drift,) = store.rows("SELECT kind, lms_id, detail FROM drift WHERE subject = 'E00010' "
                          "AND resolved_at IS NULL")
    assert (drift["kind"], drift["lms_id"]) == ("orphan", lms_id)
    assert json.loads(drift["detail"]) == {"reason": "vanished", "missing_pulls": 1,
                                           "missing_since": vanished_at.isoformat()}
    rig.clock.set(vanished_at + after)
    report = rig.run()
    if deactivated:
        assert report.counts["planned"] == {"deactivate": 1}
        assert rig.active(lms_token)["E00010"] is False
        (op,) = op_store.list_ops(store, employee_id="E00010", status="succeeded")[:1]
        assert (op["kind"], op["reason"], op["lms_id"]) == ("deactivate", "vanished from feed",
                                                            lms_id)
        assert op["payload"] == {}
    else:
        assert "deactivate" not in report.counts["planned"]
        assert rig.active(lms_token)["E00010"] is True


@pytest.mark.parametrize("pulls", [2, 3])
def test_vanished_person_waits_for_the_configured_number_of_full_pulls(
        tmp_path, scim_server, lms_token, pulls):
    rig = Rig(tmp_path, scim_server, 10, vanished_grace_hours=0, vanished_grace_pulls=pulls)
    rig.run()
    del rig.world.rows["E00010"]
    rig.world.write(rig.csv)
    planned = []
    for _ in range(pulls + 1):
        rig.clock.advance(minutes=1)
        planned.append(rig.run().counts["planned"].get("deactivate", 0))
    # Missing from 1, 2, ... pulls: deactivated by the pull that reaches the count.
    assert planned == [0] * (pulls - 1) + [1, 0]


# -- the mass-deactivation window: runs within it count together ----------------------

@pytest.mark.parametrize(("gap", "held"), [
    (timedelta(minutes=60) - timedelta(microseconds=1), True),
    (timedelta(minutes=60), True),
    (timedelta(minutes=60, microseconds=1), False)])
def test_deactivations_within_the_window_count_with_the_next_run(
        tmp_path, scim_server, lms_token, gap, held):
    rig = Rig(tmp_path, scim_server, 20, mass_deactivation_min=3,
              mass_deactivation_percent=0.0, mass_window_minutes=60)
    rig.run()
    rig.change(keys(3), "Termination Date", "2026-11-20")
    first = rig.run()
    assert first.counts["planned"] == {"deactivate": 3} and first.exit_code == 0
    rig.clock.advance(seconds=gap.total_seconds())
    rig.change(keys(1, first=4), "Termination Date", "2026-11-20")
    second = rig.run()
    held_ops = op_store.list_ops(rig.engine.store, status="held")
    if held:
        assert second.exit_code == 3
        assert [op["employee_id"] for op in held_ops] == ["E00004"]
        assert held_ops[0]["hold_reason"].startswith(
            "mass deactivation: 4 deactivations within 60 minutes exceed the limit of 3 "
            "(3 earlier in the window, 1 in this run;")
    else:
        assert second.exit_code == 0 and held_ops == []
        assert rig.active(lms_token)["E00004"] is False


@pytest.mark.parametrize(("percent", "held"), [(14.0, True), (15.0, False)])
def test_the_window_limit_grows_with_the_active_accounts(
        tmp_path, scim_server, lms_token, percent, held):
    # 20 active accounts: 15% allows 3 (more than the minimum of 2), 14% allows only 2.
    rig = Rig(tmp_path, scim_server, 20, mass_deactivation_min=2,
              mass_deactivation_percent=percent, mass_window_minutes=60)
    rig.run()
    rig.change(keys(3), "Termination Date", "2026-11-20")
    assert (rig.run().exit_code == 3) is held


def test_the_window_limit_counts_the_active_accounts_for_earlier_runs_too(
        tmp_path, scim_server, lms_token):
    # After 3 deactivations 17 accounts are active; 25% of them allow 4 (above the
    # minimum of 3): 3 earlier and 1 now stay within it, a fifth does not.
    rig = Rig(tmp_path, scim_server, 20, mass_deactivation_min=3,
              mass_deactivation_percent=25.0, mass_window_minutes=60)
    rig.run()
    rig.change(keys(3), "Termination Date", "2026-11-20")
    assert rig.run().exit_code == 0
    rig.clock.advance(minutes=5)
    rig.change(keys(1, first=4), "Termination Date", "2026-11-20")
    assert rig.run().exit_code == 0
    rig.clock.advance(minutes=5)
    rig.change(keys(1, first=5), "Termination Date", "2026-11-20")
    assert rig.run().exit_code == 3  # the fifth in the hour is one too many


def test_with_no_window_each_run_is_counted_alone(tmp_path, scim_server, lms_token):
    # Two runs in the same instant: with mass_window_minutes = 0 the first run's three
    # deactivations do not count against the second's one.
    rig = Rig(tmp_path, scim_server, 20, mass_deactivation_min=3,
              mass_deactivation_percent=0.0, mass_window_minutes=0)
    rig.run()
    rig.change(keys(3), "Termination Date", "2026-11-20")
    assert rig.run().exit_code == 0
    rig.change(keys(1, first=4), "Termination Date", "2026-11-20")
    assert rig.run().exit_code == 0
    assert op_store.list_ops(rig.engine.store, status="held") == []


@pytest.mark.parametrize(("renamed", "percent", "held"), [
    (2, 0.0, False), (3, 0.0, True), (3, 15.0, False), (4, 15.0, True)])
def test_mass_login_changes_are_held_in_a_run(
        tmp_path, scim_server, lms_token, renamed, percent, held):
    # 20 active accounts: 15% allows 3, above the minimum of 2.
    rig = Rig(tmp_path, scim_server, 20, mass_identity_change_min=2,
              mass_identity_change_percent=percent)
    rig.run()
    for key in keys(renamed):
        rig.world.rows[key]["Work Email"] = f"renamed.{key.lower()}@acme.example"
    rig.world.write(rig.csv)
    report = rig.run()
    assert (report.exit_code == 3) is held
    assert len(op_store.list_ops(rig.engine.store, status="held")) == (renamed if held else 0)


# -- one failed write: how it is recorded and when it is tried again ------------------

def once(answer) -> object:
    """A fault hook: ``answer`` to the first account write, then the LMS works."""
    calls = {"n": 0}

    def refuse() -> bool:
        calls["n"] += 1
        return calls["n"] == 1

    hook = refusing(refuse)

    def fault(method, path):
        hit = hook(method, path)
        return answer if hit is REFUSED else hit

    return fault


def failed_op(rig: Rig) -> dict:
    (op,) = [o for o in op_store.list_ops(rig.engine.store, employee_id="E00001")
             if o["kind"] == "update"]
    return op


def finished(rig: Rig) -> list:
    from rostersync.sync.events import OpFinished

    return [e for e in rig.events if isinstance(e, OpFinished)]


def attempt(rig: Rig, op: dict, number: int = 1) -> dict:
    """One attempt of ``op`` as the history records it."""
    log = op_store.get_op(rig.engine.store, op["id"])["attempt_log"]
    return {k: log[number - 1][k] for k in ("outcome", "error_class", "http_status", "run_id")}


def test_a_refused_write_is_dead_at_once_with_its_class_and_event(
        tmp_path, scim_server, lms_token):
    rig = Rig(tmp_path, scim_server, 3)
    rig.run()
    scim_server.fault = once(REFUSED)
    rig.change(["E00001"], "Job Title", "Analyst")
    report = rig.run()
    assert report.counts["applied"] == {"dead": 1} and report.exit_code == 1
    op = failed_op(rig)
    assert (op["status"], op["attempts"], op["error_class"], op["next_attempt_at"]) == (
        "dead", 1, "data", None)
    assert "title refused" in op["last_error"]
    from rostersync.sync.events import OpFinished

    assert finished(rig)[-1] == OpFinished(report.run_id, op["id"], "E00001", "update",
                                           "dead", op["last_error"])
    assert attempt(rig, op) == {"outcome": "error", "error_class": "data",
                                "http_status": 400, "run_id": report.run_id}


@pytest.mark.parametrize(("retry_after", "low", "high"), [
    (None, 15.0, 30.0), ("120", 120.0, 132.0)])
def test_a_transient_failure_is_tried_again_after_its_backoff(
        tmp_path, scim_server, lms_token, retry_after, low, high):
    # Nothing is retried within the run (inline_retry_max_seconds = 0): the op waits.
    rig = Rig(tmp_path, scim_server, 3, inline_retry_max_seconds=0)
    rig.run()
    headers = {"Retry-After": retry_after} if retry_after else {}
    scim_server.fault = once((503, headers, b"maintenance"))
    rig.change(["E00001"], "Job Title", "Analyst")
    report = rig.run()
    assert report.counts["applied"] == {"failed": 1}
    op = failed_op(rig)
    assert (op["status"], op["attempts"], op["error_class"]) == ("failed", 1, "transient")
    from rostersync.storage.db import parse_ts

    wait = (parse_ts(op["next_attempt_at"]) - rig.clock.now()).total_seconds()
    assert low <= wait <= high
    event = finished(rig)[-1]
    assert (event.op_id, event.status, event.error) == (op["id"], "failed", op["last_error"])
    assert attempt(rig, op) == {"outcome": "error", "error_class": "transient",
                                "http_status": 503, "run_id": report.run_id}
    assert rig.clock.slept == []


@pytest.mark.parametrize(("inline", "outcome"), [(0.0, "succeeded"), (0.5, "succeeded")])
def test_a_retry_due_at_once_is_retried_within_the_run(
        tmp_path, scim_server, lms_token, inline, outcome):
    # Retry-After: 0 makes the delay exactly 0: retried inline even when the inline limit
    # is 0 (at the limit) and of course below it.
    rig = Rig(tmp_path, scim_server, 3, inline_retry_max_seconds=inline)
    rig.run()
    scim_server.fault = once((429, {"Retry-After": "0"}, b""))
    rig.change(["E00001"], "Job Title", "Analyst")
    report = rig.run()
    assert report.counts["applied"] == {outcome: 1}
    assert failed_op(rig)["attempts"] == 2


@pytest.mark.parametrize(("attempts", "status"), [(1, "dead"), (2, "failed")])
def test_the_last_allowed_attempt_is_dead(tmp_path, scim_server, lms_token, attempts, status):
    rig = Rig(tmp_path, scim_server, 3, inline_retry_max_seconds=0,
              retry_max_attempts=attempts)
    rig.run()
    scim_server.fault = once((503, {}, b"maintenance"))
    rig.change(["E00001"], "Job Title", "Analyst")
    assert rig.run().counts["applied"] == {status: 1}
    assert failed_op(rig)["status"] == status


def test_a_vanished_account_is_forgotten_and_its_person_revisited(
        tmp_path, scim_server, lms_token):
    rig = Rig(tmp_path, scim_server, 3, inline_retry_max_seconds=0)
    rig.run()
    store = rig.engine.store
    lms_id = store.scalar("SELECT lms_id FROM accounts WHERE external_key = 'E00001'")
    scim_server.fault = once((404, {}, b""))
    rig.change(["E00001"], "Job Title", "Analyst")
    report = rig.run()
    # The account is forgotten and its person revisited in the same run: the LMS is
    # read again by external key, which finds the account and links it back.
    assert report.counts["applied"] == {"failed": 1, "succeeded": 1}
    ops = op_store.list_ops(store, employee_id="E00001")
    assert sorted((o["id"], o["kind"], o["status"], o["error_class"]) for o in ops)[1:] == [
        (ops[1]["id"], "update", "superseded", "not_found"),
        (ops[0]["id"], "create", "succeeded", None)]
    assert store.scalar("SELECT lms_id FROM accounts WHERE external_key = 'E00001'") == lms_id


def test_refused_credentials_quarantine_at_the_first_failure(tmp_path, scim_server, lms_token):
    rig = Rig(tmp_path, scim_server, 3, concurrency=1)
    rig.run()
    scim_server.fault = once((401, {}, b""))
    rig.change(["E00001", "E00002"], "Job Title", "Analyst")
    report = rig.run()
    assert report.status == "quarantined"
    assert report.message.startswith("the LMS refused our credentials: ")
    assert report.counts["applied"] == {"failed": 1}


def test_refused_credentials_after_another_failure_count_both(tmp_path, scim_server, lms_token):
    # One worker: the first write meets maintenance (retried later), the second a revoked
    # token, which stops the run. Both failures are counted.
    rig = Rig(tmp_path, scim_server, 3, concurrency=1, inline_retry_max_seconds=0)
    rig.run()
    answers = [(503, {}, b"maintenance"), (401, {}, b"")]
    base = refusing(lambda: True)

    def fault(method, path):
        hit = base(method, path)
        return answers.pop(0) if hit is REFUSED and answers else hit if hit is NO_BULK else None

    scim_server.fault = fault
    rig.change(["E00001", "E00002", "E00003"], "Job Title", "Analyst")
    report = rig.run()
    assert report.status == "quarantined"
    assert report.counts["applied"] == {"failed": 2}
