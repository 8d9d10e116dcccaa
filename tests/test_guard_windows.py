"""The mass-deactivation hold over a sliding window of runs, and the mass identity-change
hold: driven through the Engine with an injected clock against a real scim2-server on
127.0.0.1."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from rostersync.console import actions
from rostersync.storage import accounts as account_store
from rostersync.storage import held as held_store
from rostersync.storage import ops as op_store
from rostersync.storage.store_factory import make_store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import ConfigError, load_config
from rostersync.sync.engine import Engine
from rostersync.sync.models import OpKind, OpStatus
from rostersync.sync.plan import NewOp, apply_identity_hold, apply_mass_hold
from tests.support import World, by_external_id, lms_users, write_config

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
PAST = "2026-11-20"
# People 26..120 of a 120-person world manage no one: terminating them touches no one
# else's manager field, so each run plans exactly the deactivations a test asks for.
LEAVERS = [f"E{i:05d}" for i in range(26, 121)]
# The feed gate would refuse a third of the active people leaving; the hold is under test.
WINDOW_LIMIT = {"mass_deactivation_min": 25, "mass_deactivation_percent": 0,
                "feed_max_active_drop_percent": 100}


class Rig:
    def __init__(self, tmp_path, lms, token, people: int, **guards) -> None:
        self.world = World.generate(people)
        self.csv = self.world.write(tmp_path / "employees.csv")
        self.config = load_config(write_config(tmp_path, lms.base_url, self.csv,
                                               guards=guards))
        self.clock = FrozenClock(START)
        self.engine = Engine(self.config, make_store(self.config.database), clock=self.clock)
        self.store = self.engine.store
        self.lms, self.token = lms, token
        self.leavers = iter(LEAVERS)

    def run(self):
        return asyncio.run(self.engine.sync("full"))

    def terminate(self, n: int) -> list[str]:
        keys = [next(self.leavers) for _ in range(n)]
        for key in keys:
            self.world.rows[key].update({"Status": "Terminated", "Termination Date": PAST})
        self.world.write(self.csv)
        return keys

    def terminate_and_run(self, n: int):
        self.terminate(n)
        return self.run()

    def users(self) -> dict[str, dict]:
        return {k: v[0] for k, v in by_external_id(lms_users(self.lms.base_url,
                                                             self.token)).items()}

    def inactive(self) -> int:
        return sum(1 for u in self.users().values() if not u["active"])

    def held(self) -> list[dict]:
        return op_store.list_ops(self.store, status="held", limit=1000)


@pytest.fixture
def rig(tmp_path, scim_server, lms_token):
    def make(people: int = 120, **guards) -> Rig:
        r = Rig(tmp_path, scim_server, lms_token, people, **guards)
        assert r.run().exit_code == 0
        return r
    return make


# -- the sliding window ---------------------------------------------------------------------


def test_three_runs_under_the_limit_back_to_back_are_held_once_the_window_is_crossed(rig):
    r = rig(**WINDOW_LIMIT)
    first = r.terminate_and_run(24)
    assert first.exit_code == 0 and first.counts["held_new"] == 0
    r.clock.advance(minutes=10)
    second = r.terminate_and_run(24)
    assert second.exit_code == 3 and second.counts["held_new"] == 24
    assert second.reasons[0].startswith(
        "mass deactivation: 48 deactivations within 60 minutes exceed the limit of 25 "
        "(24 earlier in the window, 24 in this run; max(25, 0% of ")
    r.clock.advance(minutes=10)
    third = r.terminate_and_run(24)
    # Held deactivations never reached the LMS: they do not count, the first run's do.
    assert third.exit_code == 3 and third.counts["held_new"] == 24
    assert "48 deactivations within 60 minutes" in third.reasons[0]
    assert r.inactive() == 24
    held = r.held()
    assert len(held) == 48 and {op["kind"] for op in held} == {"deactivate"}
    # The held review groups them by run and reason.
    events = held_store.hold_events(r.store)
    assert sorted(e["n"] for e in events) == [24, 24]


def test_the_window_limit_holds_one_over_not_exactly_at(rig):
    r = rig(**WINDOW_LIMIT)
    assert r.terminate_and_run(24).counts["held_new"] == 0
    r.clock.advance(minutes=5)
    at_limit = r.terminate_and_run(1)  # 24 + 1 = 25: exactly at the limit
    assert at_limit.exit_code == 0 and at_limit.counts["held_new"] == 0
    r.clock.advance(minutes=5)
    over = r.terminate_and_run(1)  # 26
    assert over.exit_code == 3 and over.counts["held_new"] == 1
    assert ("26 deactivations within 60 minutes exceed the limit of 25 "
            "(25 earlier in the window, 1 in this run;") in over.reasons[0]
    assert r.inactive() == 25


def test_runs_just_outside_the_window_do_not_count(rig):
    r = rig(**WINDOW_LIMIT)
    assert r.terminate_and_run(24).counts["held_new"] == 0
    r.clock.advance(minutes=60, seconds=1)  # the first run is one second out of the window
    second = r.terminate_and_run(24)
    assert second.exit_code == 0 and second.counts["held_new"] == 0
    r.clock.advance(minutes=60)  # the second run is exactly at the window's start: it counts
    third = r.terminate_and_run(2)
    assert third.exit_code == 3 and third.counts["held_new"] == 2
    assert "26 deactivations within 60 minutes" in third.reasons[0]
    assert r.inactive() == 48


def test_a_window_of_zero_counts_each_run_alone(rig):
    r = rig(mass_window_minutes=0, **WINDOW_LIMIT)
    for _ in range(3):
        report = r.terminate_and_run(24)
        assert report.exit_code == 0 and report.counts["held_new"] == 0
    assert r.inactive() == 72


def test_resyncs_count_in_the_same_window_as_batch_runs(rig):
    r = rig(**WINDOW_LIMIT)
    assert r.terminate_and_run(24).counts["held_new"] == 0
    r.clock.advance(minutes=1)
    (one,) = r.terminate(1)
    at_limit = asyncio.run(r.engine.resync(one))
    assert at_limit.exit_code == 0 and r.users()[one]["active"] is False
    (two,) = r.terminate(1)
    over = asyncio.run(r.engine.resync(two))
    assert over.exit_code == 3 and r.users()[two]["active"] is True
    assert "26 deactivations within 60 minutes" in over.reasons[0]
    # ... and the next batch run counts the resyncs.
    r.clock.advance(minutes=1)
    batch = r.terminate_and_run(1)
    assert batch.exit_code == 3 and "26 deactivations within 60 minutes" in batch.reasons[0]


def test_approved_deactivations_do_not_count_but_what_follows_them_does(rig):
    r = rig(**WINDOW_LIMIT)
    held = r.terminate_and_run(30)
    assert held.exit_code == 3 and "30 deactivations in one run exceed" in held.reasons[0]
    actions.approve(r.store, r.clock.now(), [op["id"] for op in r.held()], "tester")
    asyncio.run(r.engine.apply_due())
    assert r.inactive() == 30
    r.clock.advance(minutes=1)
    # The operator vetted those 30; the window starts again from what came after.
    assert r.terminate_and_run(24).counts["held_new"] == 0
    r.clock.advance(minutes=1)
    over = r.terminate_and_run(2)
    assert over.exit_code == 3 and "26 deactivations within 60 minutes" in over.reasons[0]


# -- mass identity changes ------------------------------------------------------------------


def _splice(r: Rig, n: int, start: int = 2) -> list[str]:
    """An export spliced from another version: n people get another email (and login)."""
    keys = [f"E{i:05d}" for i in range(start, start + n)]
    for key in keys:
        r.world.rows[key]["Work Email"] = f"{key.lower()}@spliced.example"
    return keys


@pytest.mark.parametrize("changed, held", [(5, False), (6, False), (7, True)])
def test_a_run_changing_more_logins_than_the_share_is_held(rig, changed, held):
    r = rig(60, mass_identity_change_min=0, mass_identity_change_percent=10)
    assert account_store.count_active(r.store) == 60  # limit: 10% of 60 = 6
    keys = _splice(r, changed)
    r.world.rows["E00050"]["Job Title"] = "Director"  # an ordinary change in the same run
    r.world.write(r.csv)
    report = r.run()
    users = r.users()
    assert users["E00050"]["title"] == "Director"
    if not held:
        assert report.exit_code == 0 and report.counts["held_new"] == 0
        assert all(users[k]["userName"] == f"{k.lower()}@spliced.example" for k in keys)
        return
    assert report.exit_code == 3 and report.counts["held_new"] == 7
    reason = ("mass identity change: 7 logins/emails in one run exceed the limit of 6 "
              "(7 logins, 7 emails; max(0, 10% of 60 active accounts))")
    assert report.reasons == [reason]
    assert not any(users[k]["userName"].endswith("@spliced.example") for k in keys)
    held_ops = r.held()
    assert {op["employee_id"] for op in held_ops} == set(keys)
    assert {op["hold_reason"] for op in held_ops} == {reason}
    assert [(e["hold_reason"], e["n"]) for e in held_store.hold_events(r.store)] == \
        [(reason, 7)]
    # Approved, they go through.
    actions.approve(r.store, r.clock.now(), [op["id"] for op in held_ops], "tester")
    asyncio.run(r.engine.apply_due())
    assert all(r.users()[k]["userName"] == f"{k.lower()}@spliced.example" for k in keys)


def test_the_identity_minimum_applies_below_it(rig):
    # Defaults: max(25, 5% of 60 = 3) = 25, so 25 changes pass and 26 are held.
    r = rig(60)
    _splice(r, 25)
    r.world.write(r.csv)
    assert r.run().exit_code == 0
    _splice(r, 26, start=30)
    r.world.write(r.csv)
    report = r.run()
    assert report.exit_code == 3 and report.counts["held_new"] == 26
    assert report.reasons[0].startswith(
        "mass identity change: 26 logins/emails in one run exceed the limit of 25 ")


# -- the pure decisions ---------------------------------------------------------------------


def _op(kind: OpKind, **changes: str) -> NewOp:
    payload = {"changes": changes} if kind in (OpKind.update, OpKind.reactivate) else {}
    return NewOp("E1", kind, payload, "k", "why", "lms-1", None)


def test_the_window_adds_earlier_deactivations_to_the_runs():
    for earlier, held in ((22, False), (23, False), (24, True)):
        ops = [_op(OpKind.deactivate), _op(OpKind.deactivate)]
        reason = apply_mass_hold(ops, 100, 25, 0, earlier=earlier, window_minutes=60)
        assert (reason is not None) is held
        assert all((op.status == OpStatus.held) is held for op in ops)
    # Nothing of its own to hold: a run without deactivations is never held.
    assert apply_mass_hold([_op(OpKind.create)], 100, 25, 0, earlier=99) is None


def test_identity_changes_count_accounts_of_updates_and_reactivations_only():
    ops = [_op(OpKind.update, email="a@x", user_name="a@x"), _op(OpKind.update, email="b@x"),
           _op(OpKind.reactivate, user_name="c"), _op(OpKind.update, title="Boss"),
           _op(OpKind.create)]
    suppressed = _op(OpKind.update, email="d@x")
    suppressed.status = OpStatus.suppressed
    assert apply_identity_hold([*ops, suppressed], 100, 3, 0) is None  # 3 accounts, limit 3
    reason = apply_identity_hold([*ops, suppressed], 100, 2, 0)
    assert reason == ("mass identity change: 3 logins/emails in one run exceed the limit of "
                      "2 (2 logins, 2 emails; max(2, 0% of 100 active accounts))")
    assert [op.status for op in ops] == [OpStatus.held] * 3 + [OpStatus.pending] * 2
    assert suppressed.status == OpStatus.suppressed


# -- configuration --------------------------------------------------------------------------


def test_the_realtime_window_setting_still_sets_the_one_window(tmp_path):
    path = write_config(tmp_path, "http://127.0.0.1:1", tmp_path / "e.csv")
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "\n[realtime]\nmass_window_minutes = 15\n", encoding="utf-8")
    assert load_config(path).guards.mass_window_minutes == 15
    path.write_text(text.replace("[guards]\n", "[guards]\nmass_window_minutes = 30\n")
                    + "\n[realtime]\nmass_window_minutes = 15\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert ("realtime.mass_window_minutes (15) and guards.mass_window_minutes (30) disagree"
            in str(err.value))
    assert "\n" not in str(err.value).strip()
