"""The pure decisions: lifecycle timing, diff, plan, guards, feed gate, retry policy."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from rostersync.sync.diff import Policy, Subject, Vanished, changed_fields, decide
from rostersync.sync.feedgate import FeedStats, GateLimits, check_feed
from rostersync.sync.lifecycle import Lifecycle, lifecycle, termination_instant
from rostersync.sync.mapping import Mapped
from rostersync.sync.models import Account, DriftKind, OpKind, OpStatus, Person, Status
from rostersync.sync.plan import NewOp, OpenOp, apply_mass_hold, idem_key, manager_depths, reconcile
from rostersync.sync.retry import RetryPolicy, backoff_seconds, should_retry

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POLICY = Policy(timedelta(hours=24), 0, frozenset({Status.pre_hire, Status.terminated}))


def person(**kw) -> Person:
    base = {"employee_id": "E1", "first_name": "Ada", "last_name": "Novak",
            "email": "ada@acme.example", "timezone": "Europe/Berlin"}
    return Person(**{**base, **kw})


def account(**kw) -> Account:
    base = {"external_key": "E1", "user_name": "ada@acme.example", "given_name": "Ada",
            "family_name": "Novak", "display_name": "Ada Novak", "email": "ada@acme.example",
            "lms_id": "L1"}
    return Account(**{**base, **kw})


def mapped(desired: Account | None = None, **kw) -> Mapped:
    return Mapped(True, desired or account(lms_id=None), **kw)


@pytest.mark.parametrize(("zone", "cutoff", "expected"), [
    ("Europe/Berlin", "end_of_day", datetime(2026, 6, 30, 22, 0, tzinfo=UTC)),
    ("America/Los_Angeles", "end_of_day", datetime(2026, 7, 1, 7, 0, tzinfo=UTC)),
    ("Asia/Tokyo", "start_of_day", datetime(2026, 6, 29, 15, 0, tzinfo=UTC)),
])
def test_termination_takes_effect_in_the_persons_time_zone(zone, cutoff, expected):
    assert termination_instant(date(2026, 6, 30), zone, cutoff) == expected


def test_future_termination_is_scheduled_and_past_one_is_in_force():
    later = lifecycle(person(termination_date=date(2026, 12, 31)), NOW)
    assert later.state == Status.active and later.next_state == Status.terminated
    assert lifecycle(person(termination_date=date(2026, 11, 1)), NOW).state == Status.terminated


def test_rehire_after_termination_date_is_active():
    state = lifecycle(person(termination_date=date(2025, 1, 31), hire_date=date(2026, 3, 1)), NOW)
    assert state.state == Status.active and state.next_change_at is None


def test_future_hire_is_pre_hire_until_start_of_their_day():
    state = lifecycle(person(hire_date=date(2026, 12, 1)), NOW)
    assert state.state == Status.pre_hire
    assert state.next_change_at == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


def test_missing_account_plans_a_create():
    d = decide(Subject("E1", Lifecycle(Status.active), mapped()), NOW, POLICY)
    assert [i.kind for i in d.intents] == [OpKind.create]
    assert [x.kind for x in d.drift] == [DriftKind.missing]


def test_single_unlinked_email_match_links_and_several_are_disputed():
    loose = account(external_key=None, lms_id="L9")
    d = decide(Subject("E1", Lifecycle(Status.active), mapped(), candidates=[loose]), NOW, POLICY)
    assert [i.kind for i in d.intents] == [OpKind.link]
    two = [loose, account(external_key=None, lms_id="L8", user_name="ADA@acme.example")]
    d = decide(Subject("E1", Lifecycle(Status.active), mapped(), candidates=two), NOW, POLICY)
    assert not d.intents and d.drift[0].kind == DriftKind.disputed


def test_email_owned_by_another_employee_is_disputed_not_created():
    other = account(external_key="E77", lms_id="L7")
    d = decide(Subject("E1", Lifecycle(Status.active), mapped(), candidates=[other]), NOW, POLICY)
    assert not d.intents and d.drift[0].kind == DriftKind.disputed


def test_mismatch_lists_fields_and_ignores_case_of_email():
    actual = account(email="ADA@ACME.EXAMPLE", department="Sales")
    desired = account(lms_id=None, department="Finance")
    assert changed_fields(desired, actual, frozenset()) == {"department": "Finance"}
    d = decide(Subject("E1", Lifecycle(Status.active), mapped(desired), actual=actual), NOW, POLICY)
    assert d.drift[0].kind == DriftKind.mismatch and d.drift[0].detail["fields"] == ["department"]


def test_unmanaged_field_is_not_compared():
    actual = account(department="Old")
    desired = account(lms_id=None, department=None)
    assert changed_fields(desired, actual, frozenset({"department"})) == {}


def test_terminated_person_with_active_account_is_deactivated():
    d = decide(Subject("E1", Lifecycle(Status.terminated), mapped(), actual=account()), NOW, POLICY)
    assert [i.kind for i in d.intents] == [OpKind.deactivate]
    assert d.drift[0].kind == DriftKind.pending_termination


def test_rehire_reactivates():
    d = decide(Subject("E1", Lifecycle(Status.active), mapped(), actual=account(active=False)),
               NOW, POLICY)
    assert [i.kind for i in d.intents] == [OpKind.reactivate]


def test_vanished_person_waits_for_the_grace_period():
    gone = Vanished(NOW - timedelta(hours=2), 1)
    d = decide(Subject("E1", actual=account(), vanished=gone), NOW, POLICY)
    assert not d.intents and d.drift[0].kind == DriftKind.orphan
    gone = Vanished(NOW - timedelta(hours=25), 3)
    d = decide(Subject("E1", actual=account(), vanished=gone), NOW, POLICY)
    assert [i.kind for i in d.intents] == [OpKind.deactivate]


def test_vanished_pull_count_is_a_second_brake():
    policy = Policy(timedelta(hours=24), 3, POLICY.skip_create_statuses)
    gone = Vanished(NOW - timedelta(hours=30), 2)
    assert not decide(Subject("E1", actual=account(), vanished=gone), NOW, policy).intents


def test_reconcile_keeps_same_intent_and_supersedes_changed_one():
    d = decide(Subject("E1", Lifecycle(Status.active), mapped(account(lms_id=None, title="X")),
                       actual=account()), NOW, POLICY)
    key = idem_key("E1", d.intents[0])
    plan = reconcile("E1", d.intents, [OpenOp(5, "E1", "update", key, "failed")])
    assert not plan.new and [o.id for o in plan.keep] == [5]
    plan = reconcile("E1", d.intents, [OpenOp(6, "E1", "update", "other", "pending")])
    assert len(plan.new) == 1 and [o.id for o in plan.supersede] == [6]


def _deactivation(i: int) -> NewOp:
    return NewOp(f"E{i}", OpKind.deactivate, {}, f"k{i}", "terminated in HR", f"L{i}", None)


@pytest.mark.parametrize(("count", "active", "held"), [(25, 1000, False), (26, 1000, True),
                                                       (40, 5000, False), (101, 5000, True)])
def test_mass_deactivation_hold(count, active, held):
    ops = [_deactivation(i) for i in range(count)]
    reason = apply_mass_hold(ops, active, 25, 2.0)
    assert (reason is not None) == held
    assert all((op.status == OpStatus.held) == held for op in ops)


def test_manager_depths_put_managers_first_and_survive_cycles():
    depths = manager_depths({"A": None, "B": "A", "C": "B", "D": "X"}, has_account={"X"})
    assert depths == {"A": 0, "B": 1, "C": 2, "D": 0}
    assert set(manager_depths({"P": "Q", "Q": "P"}, set())) == {"P", "Q"}


def test_feed_gate_rejects_drop_duplicates_and_null_spike():
    prev = FeedStats(1000, 950, {"email": 10})
    limits = GateLimits(10.0, 0.10, 30.0, ("email",))
    assert check_feed(FeedStats(950, 900, {"email": 10}), prev, [], limits) == []
    reasons = check_feed(FeedStats(400, 380, {"email": 10}), prev, [], limits)
    assert any("record count fell from 1000 to 400" in r for r in reasons)
    assert check_feed(FeedStats(1000, 950, {"email": 300}), prev, [], limits)
    assert check_feed(FeedStats(1000, 950, {}), prev, ["E1"], limits)


def test_backoff_grows_honours_retry_after_and_stops_retrying():
    policy = RetryPolicy(max_attempts=4, base_seconds=10, max_seconds=100)
    rng = random.Random(1)
    assert 5 <= backoff_seconds(1, policy, rng=rng) <= 10
    assert 20 <= backoff_seconds(3, policy, rng=rng) <= 40
    assert 300 <= backoff_seconds(1, RetryPolicy(4, 10, 1000), retry_after=300, rng=rng) <= 330
    assert backoff_seconds(9, policy, rng=rng) <= 100
    from rostersync.sync.models import ErrorClass
    assert should_retry(ErrorClass.transient, 3, policy)
    assert not should_retry(ErrorClass.transient, 4, policy)
    assert not should_retry(ErrorClass.data, 1, policy)
