"""Every guard's threshold at its edge: exactly at, one below, one above (pure functions).

Each limit is tested on both sides of the line and on it, so an off-by-one (``<`` for
``<=``, a lost ``/100``) turns a test red. The engine-level edges (circuit breaker,
vanished grace, the sliding window) are in tests/test_guard_edges_engine.py.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from rostersync.sync.audiences.guard import hold_removals, removal_limit
from rostersync.sync.audiences.membership import Audience, AudienceSet
from rostersync.sync.feedgate import FeedStats, GateLimits, check_feed
from rostersync.sync.lifecycle import lifecycle, local_midnight, termination_instant
from rostersync.sync.models import OpKind, OpStatus, Person, Status
from rostersync.sync.plan import (
    NewOp,
    Suppression,
    apply_identity_hold,
    apply_mass_hold,
    apply_suppression,
    identity_changes,
    mass_deactivation_limit,
)
from rostersync.sync.retry import RETRYABLE, RetryPolicy, backoff_seconds, should_retry

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)


# -- feed gate -------------------------------------------------------------------------

LIMITS = GateLimits(max_drop_percent=10.0, max_null_rate_increase=0.10,
                    max_active_drop_percent=30.0, checked_fields=("email", "department"))


def stats(rows: int, active: int | None = None, **nulls: int) -> FeedStats:
    return FeedStats(rows, rows if active is None else active, dict(nulls))


@pytest.mark.parametrize(("rows", "rejected"), [(89, True), (90, False), (91, False)])
def test_record_count_drop_edge(rows, rejected):
    # 10% of 100 may go: 90 records pass, 89 do not.
    reasons = check_feed(stats(rows, 100), stats(100), [], LIMITS)
    expected = ["record count fell from 100 to 89 (11.0% drop, limit 10%)"] if rejected else []
    assert reasons == expected


@pytest.mark.parametrize(("active", "rejected"), [(69, True), (70, False), (71, False)])
def test_active_population_drop_edge(active, rejected):
    # Same record count (terminations are rows that stay); 30% of 100 active may go.
    reasons = check_feed(stats(100, active), stats(100, 100), [], LIMITS)
    expected = ["active population fell from 100 to 69 (31.0% drop, limit 30%)"] \
        if rejected else []
    assert reasons == expected


def test_active_drop_is_not_checked_when_nobody_was_active():
    assert check_feed(stats(100, 0), stats(100, 0), [], LIMITS) == []


@pytest.mark.parametrize(("empty", "rejected"), [(1, False), (2, False), (3, True)])
def test_null_rate_rise_edge(empty, rejected):
    # 20 records: 2 empty is +10% exactly (allowed), 3 is +15%.
    reasons = check_feed(stats(20, email=empty), stats(20), [], LIMITS)
    expected = ["empty email values rose from 0.0% to 15.0% of records (limit +10%)"] \
        if rejected else []
    assert reasons == expected


def test_null_rate_rise_is_measured_against_the_previous_rate():
    assert check_feed(stats(20, department=5), stats(20, department=3), [], LIMITS) == []
    assert check_feed(stats(20, department=6), stats(20, department=3), [], LIMITS) == [
        "empty department values rose from 15.0% to 30.0% of records (limit +10%)"]


@pytest.mark.parametrize(("rows", "checked"), [(19, False), (20, True), (21, True)])
def test_null_rates_need_enough_records_in_both_feeds(rows, checked):
    everyone = {"email": rows}
    assert bool(check_feed(stats(rows, **everyone), stats(rows), [], LIMITS)) is checked
    # The previous feed must be big enough too.
    assert bool(check_feed(stats(20, email=20), stats(rows), [], LIMITS)) is checked


def test_fields_not_checked_may_empty():
    assert check_feed(stats(20, location=20), stats(20), [], LIMITS) == []


@pytest.mark.parametrize(("count", "shown"), [
    (5, "5 employee_id value(s) appear more than once: D0, D1, D2, D3, D4"),
    (6, "6 employee_id value(s) appear more than once: D0, D1, D2, D3, D4 ..."),
])
def test_duplicate_keys_reject_and_name_the_first_five(count, shown):
    duplicates = [f"D{i}" for i in range(count)]
    assert check_feed(stats(100), None, duplicates, LIMITS) == [shown]


def test_an_empty_feed_is_rejected_and_the_first_feed_has_no_baseline():
    assert check_feed(stats(0), None, [], LIMITS) == ["the feed has no records"]
    assert check_feed(stats(0), stats(0), [], LIMITS) == ["the feed has no records"]
    assert check_feed(stats(1), None, [], LIMITS) == []
    # An empty previous feed is no baseline either: 1 of nothing is not a drop.
    assert check_feed(stats(1, 0), stats(0), [], LIMITS) == []


def test_feed_stats_count_rows_active_and_empty_fields():
    from rostersync.sync.config import CANONICAL_FIELDS

    email = 1 << CANONICAL_FIELDS.index("email")
    dept = 1 << CANONICAL_FIELDS.index("department")
    s = FeedStats()
    s.add_all([(email, True), (email | dept, False), (0, True), (email, True)])
    assert (s.rows, s.active) == (4, 3)
    assert s.null_counts == {"email": 3, "department": 1}
    assert s.null_rate("email") == 0.75 and s.null_rate("location") == 0.0
    s.add(email, True, sign=-1)  # a record that left the feed
    assert (s.rows, s.active, s.null_counts["email"]) == (3, 2, 2)
    assert FeedStats().null_rate("email") == 0.0


# -- mass deactivation, removal and identity holds --------------------------------------

def op(kind: OpKind, key: str = "E", status: OpStatus = OpStatus.pending, **payload) -> NewOp:
    return NewOp(key, kind, payload, key, "why", None, None, status=status)


def deactivations(n: int, kind: OpKind = OpKind.deactivate) -> list[NewOp]:
    return [op(kind, f"E{i}") for i in range(n)]


@pytest.mark.parametrize(("active", "limit"), [
    (0, 25), (1249, 25), (1300, 26), (2000, 40), (2049, 40), (2050, 41)])
def test_mass_limit_is_the_larger_of_minimum_and_percent(active, limit):
    assert mass_deactivation_limit(active, 25, 2.0) == limit


@pytest.mark.parametrize(("count", "held"), [(39, False), (40, False), (41, True)])
def test_mass_deactivation_hold_edge(count, held):
    ops = deactivations(count - 1) + deactivations(1, OpKind.delete)
    reason = apply_mass_hold(ops, 2000, 25, 2.0)
    if held:
        assert reason == ("mass deactivation: 41 deactivations in one run exceed the limit "
                          "of 40 (max(25, 2% of 2000 active accounts))")
        assert {(o.status, o.hold_reason) for o in ops} == {(OpStatus.held, reason)}
    else:
        assert reason is None
        assert {(o.status, o.hold_reason) for o in ops} == {(OpStatus.pending, None)}


@pytest.mark.parametrize(("count", "held"), [(24, False), (25, False), (26, True)])
def test_mass_deactivation_minimum_edge(count, held):
    assert (apply_mass_hold(deactivations(count), 100, 25, 2.0) is not None) is held


@pytest.mark.parametrize(("earlier", "held"), [(29, False), (30, False), (31, True)])
def test_deactivations_earlier_in_the_window_count_with_the_run(earlier, held):
    ops = deactivations(10)
    reason = apply_mass_hold(ops, 2000, 25, 2.0, earlier=earlier, window_minutes=60)
    if held:
        assert reason == ("mass deactivation: 41 deactivations within 60 minutes exceed the "
                          "limit of 40 (31 earlier in the window, 10 in this run; "
                          "max(25, 2% of 2000 active accounts))")
        assert {o.status for o in ops} == {OpStatus.held}
    else:
        assert reason is None and {o.status for o in ops} == {OpStatus.pending}


def test_mass_hold_counts_only_pending_deactivations_and_leaves_the_rest():
    others = [op(OpKind.update, "U"), op(OpKind.create, "C"), op(OpKind.member_remove, "M")]
    suppressed = [op(OpKind.deactivate, f"S{i}", OpStatus.suppressed) for i in range(5)]
    ops = deactivations(25) + suppressed + others
    assert apply_mass_hold(ops, 0, 25, 2.0) is None
    assert apply_mass_hold(ops + deactivations(1), 0, 25, 2.0) is not None
    assert {o.status for o in others} == {OpStatus.pending}
    assert {o.status for o in suppressed} == {OpStatus.suppressed}


def test_earlier_deactivations_alone_hold_nothing_in_a_run_without_any():
    ops = [op(OpKind.update, "U")]
    assert apply_mass_hold(ops, 0, 25, 2.0, earlier=500, window_minutes=60) is None
    assert ops[0].status == OpStatus.pending


def renames(logins: int, emails: int = 0) -> list[NewOp]:
    out = [op(OpKind.update, f"L{i}", changes={"user_name": f"l{i}"}) for i in range(logins)]
    out += [op(OpKind.reactivate, f"M{i}", changes={"email": f"m{i}@x"}) for i in range(emails)]
    return out


@pytest.mark.parametrize(("count", "held"), [(49, False), (50, False), (51, True)])
def test_identity_change_hold_edge(count, held):
    # 5% of 1000 active accounts = 50 (above the minimum of 25).
    ops = renames(count - 10, 10)
    reason = apply_identity_hold(ops, 1000, 25, 5.0)
    if held:
        assert reason == ("mass identity change: 51 logins/emails in one run exceed the limit "
                          "of 50 (41 logins, 10 emails; max(25, 5% of 1000 active accounts))")
        assert {(o.status, o.hold_reason) for o in ops} == {(OpStatus.held, reason)}
    else:
        assert reason is None and {o.status for o in ops} == {OpStatus.pending}


def test_identity_hold_ignores_other_changes_and_other_kinds():
    titles = [op(OpKind.update, f"T{i}", changes={"title": "x"}) for i in range(30)]
    creates = [op(OpKind.create, f"C{i}", changes={"email": "x"}) for i in range(30)]
    held = [op(OpKind.update, f"H{i}", OpStatus.held, changes={"email": "x"}) for i in range(30)]
    assert apply_identity_hold(titles + creates + held + renames(25), 0, 25, 5.0) is None
    assert identity_changes(op(OpKind.update, changes={"email": 1, "user_name": 2})) \
        == ("user_name", "email")
    assert identity_changes(op(OpKind.update)) == ()
    assert identity_changes(op(OpKind.deactivate, changes={"email": 1})) == ()


AUDIENCE = Audience("sales", "Sales", "g-sales", (), frozenset({"department"}), False,
                    mass_removal_min=3, mass_removal_percent=10.0)
AUDIENCES = AudienceSet((AUDIENCE,), {}, False)


def removals(n: int, audience: str = "sales", **payload) -> list[NewOp]:
    return [op(OpKind.member_remove, f"E{i}", audience=audience, **payload) for i in range(n)]


@pytest.mark.parametrize(("size", "limit"), [(0, 3), (39, 3), (40, 4), (41, 4), (50, 5)])
def test_removal_limit_is_the_larger_of_minimum_and_percent(size, limit):
    assert removal_limit(size, 3, 10.0) == limit


@pytest.mark.parametrize(("count", "held"), [(4, False), (5, False), (6, True)])
def test_mass_removal_hold_edge(count, held):
    ops = removals(count)
    reasons = hold_removals(ops, AUDIENCES, {"sales": 50})
    if held:
        reason = ("mass membership change: 6 removals from audience 'sales' in one run exceed "
                  "the limit of 5 (max(3, 10% of 50 members))")
        assert reasons == [reason]
        assert {(o.status, o.hold_reason) for o in ops} == {(OpStatus.held, reason)}
    else:
        assert reasons == [] and {o.status for o in ops} == {OpStatus.pending}


def test_removal_hold_of_an_unknown_or_unsized_audience():
    ghost = removals(20, "gone")
    assert hold_removals(ghost, AUDIENCES, {}) == []
    assert {o.status for o in ghost} == {OpStatus.pending}
    # An audience whose size is unknown falls back to the minimum.
    four = removals(4)
    assert len(hold_removals(four, AUDIENCES, {})) == 1


def test_removal_with_an_unmapped_value_is_held_alone():
    unmapped = removals(1, unmapped="department = 'Revenue'")
    plain = [op(OpKind.member_remove, "P", audience="sales")]
    adds = [op(OpKind.member_add, "A", audience="sales", unmapped="x")]
    reasons = hold_removals(unmapped + plain + adds, AUDIENCES, {"sales": 50})
    assert reasons == ["membership removals held: values with no audience rule or mapping"]
    assert unmapped[0].status == OpStatus.held
    assert unmapped[0].hold_reason == ("unmapped value: department = 'Revenue'; approve to "
                                       "remove them from audience 'sales'")
    assert plain[0].status == OpStatus.pending and adds[0].status == OpStatus.pending


def test_held_removals_do_not_count_towards_the_mass_limit():
    ops = [*removals(5), op(OpKind.member_remove, "H", OpStatus.held, audience="sales")]
    ops += removals(1, unmapped="x")
    reasons = hold_removals(ops, AUDIENCES, {"sales": 50})
    assert [o.status for o in ops[:5]] == [OpStatus.pending] * 5 and len(reasons) == 1


# -- suppression expiry ----------------------------------------------------------------

@pytest.mark.parametrize(("until", "active"), [
    (None, True), (NOW + TICK, True), (NOW, False), (NOW - TICK, False)])
def test_suppression_expires_at_its_until(until, active):
    s = Suppression("E1", "legal hold", until, "alice")
    assert s.active(NOW) is active
    o = op(OpKind.update)
    apply_suppression(o, s, NOW)
    if active:
        assert (o.status, o.suppressed_reason, o.suppressed_until, o.suppressed_by) == (
            OpStatus.suppressed, "legal hold", until, "alice")
    else:
        assert (o.status, o.suppressed_reason, o.suppressed_by) == (OpStatus.pending, None, None)


def test_no_suppression_leaves_the_op_alone():
    o = op(OpKind.update)
    apply_suppression(o, None, NOW)
    assert o.status == OpStatus.pending


# -- lifecycle: termination and start at their exact instant ---------------------------

def person(**kw) -> Person:
    base = {"employee_id": "E1", "first_name": "Ada", "last_name": "Novak",
            "timezone": "America/New_York"}
    return Person(**{**base, **kw})


# Last day 27 Nov in New York (UTC-5): access ends at local midnight, 05:00 UTC on the 28th.
EFFECTIVE = datetime(2026, 11, 28, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize(("now", "terminated"), [
    (EFFECTIVE - TICK, False), (EFFECTIVE, True), (EFFECTIVE + TICK, True)])
def test_termination_takes_effect_at_exactly_its_instant(now, terminated):
    state = lifecycle(person(termination_date=date(2026, 11, 27)), now)
    if terminated:
        assert state.state == Status.terminated and state.effective_since == EFFECTIVE
        assert state.next_change_at is None
    else:
        assert state.state == Status.active and state.next_change_at == EFFECTIVE
        assert state.next_state == Status.terminated and state.effective_since is None


def test_cutoff_start_of_day_ends_access_as_the_last_day_begins():
    start = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    assert termination_instant(date(2026, 11, 27), "America/New_York", "start_of_day") == start
    p = person(termination_date=date(2026, 11, 27))
    assert lifecycle(p, start - TICK, "start_of_day").state == Status.active
    assert lifecycle(p, start, "start_of_day").state == Status.terminated


def test_a_terminated_status_before_the_date_is_active_until_then():
    p = person(termination_date=date(2026, 11, 27), status=Status.terminated)
    state = lifecycle(p, EFFECTIVE - TICK)
    assert state.state == Status.active and state.next_state == Status.terminated
    leave = lifecycle(person(termination_date=date(2026, 11, 27), status=Status.leave),
                      EFFECTIVE - TICK)
    assert leave.state == Status.leave


@pytest.mark.parametrize(("hire", "term", "state"), [
    (date(2026, 11, 27), date(2026, 11, 27), Status.terminated),  # same day: not a rehire
    (date(2026, 11, 28), date(2026, 11, 27), Status.active),  # the day after: a rehire
])
def test_rehire_edge(hire, term, state):
    assert lifecycle(person(hire_date=hire, termination_date=term), EFFECTIVE).state == state


def test_terminated_without_a_date_is_terminated_with_no_instant():
    state = lifecycle(person(status=Status.terminated), NOW)
    assert state.state == Status.terminated and state.effective_since is None
    assert state.next_change_at is None


START = local_midnight(date(2026, 12, 1), "America/New_York")


@pytest.mark.parametrize(("now", "status", "expected"), [
    (START - TICK, Status.active, Status.pre_hire),
    (START, Status.active, Status.active),
    (START + TICK, Status.pre_hire, Status.active),
    (START - TICK, Status.pre_hire, Status.pre_hire),
    (START - TICK, Status.leave, Status.leave),
])
def test_start_date_takes_effect_at_local_midnight(now, status, expected):
    assert datetime(2026, 12, 1, 5, 0, tzinfo=UTC) == START
    state = lifecycle(person(hire_date=date(2026, 12, 1), status=status), now)
    assert state.state == expected
    if expected == Status.pre_hire:
        assert (state.next_change_at, state.next_state) == (START, Status.active)
    else:
        assert state.next_change_at is None


def test_an_unknown_zone_falls_back_to_utc():
    assert local_midnight(date(2026, 12, 1), "Mars/Olympus") == datetime(2026, 12, 1, tzinfo=UTC)


# -- retry and backoff -----------------------------------------------------------------

class Extremes(random.Random):
    """Returns the low or high end of every uniform() draw: the jitter's bounds."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


POLICY = RetryPolicy(max_attempts=6, base_seconds=30.0, max_seconds=3600.0)


@pytest.mark.parametrize(("attempt", "low", "high"), [
    (0, 15.0, 30.0), (1, 15.0, 30.0), (2, 30.0, 60.0), (3, 60.0, 120.0),
    (7, 960.0, 1920.0), (8, 1800.0, 3600.0), (9, 1800.0, 3600.0)])
def test_backoff_doubles_up_to_its_ceiling_with_jitter_from_half(attempt, low, high):
    assert backoff_seconds(attempt, POLICY, rng=Extremes(False)) == low
    assert backoff_seconds(attempt, POLICY, rng=Extremes(True)) == high


def test_backoff_draws_from_the_module_random_without_an_rng():
    random.seed(7)
    assert 15.0 <= backoff_seconds(1, POLICY) <= 30.0


@pytest.mark.parametrize(("retry_after", "low", "high"), [
    (10.0, 10.0, 11.0), (0.0, 0.0, 0.0), (-5.0, 0.0, 0.0), (3599.0, 3599.0, 3600.0),
    (7200.0, 3600.0, 3600.0)])
def test_retry_after_is_honoured_never_earlier_and_capped(retry_after, low, high):
    assert backoff_seconds(3, POLICY, retry_after, Extremes(False)) == pytest.approx(low)
    assert backoff_seconds(3, POLICY, retry_after, Extremes(True)) == pytest.approx(high)


@pytest.mark.parametrize(("attempt", "retry"), [(5, True), (6, False), (7, False)])
def test_attempts_stop_at_the_maximum(attempt, retry):
    from rostersync.sync.models import ErrorClass

    assert should_retry(ErrorClass.transient, attempt, POLICY) is retry


def test_only_retryable_classes_are_retried():
    from rostersync.sync.models import ErrorClass

    for cls in ErrorClass:
        assert should_retry(cls, 1, POLICY) is (cls in RETRYABLE)
    expected = {ErrorClass.transient, ErrorClass.not_found, ErrorClass.conflict,
                ErrorClass.auth}
    assert expected == RETRYABLE
    assert RetryPolicy() == RetryPolicy(6, 30.0, 3600.0)


SECOND = Audience("ops", "Ops", "g-ops", (), frozenset({"department"}), False,
                  mass_removal_min=0, mass_removal_percent=100.0)
TWO = AudienceSet((AUDIENCE, SECOND), {}, False)


def test_each_audience_is_judged_on_its_own_whatever_comes_before_it():
    # In id order: an unknown audience, then "ops" within its limit, then "sales" over it.
    ghost, ops_ = removals(9, "aaa-gone"), removals(2, "ops")
    sales = removals(6)
    reasons = hold_removals(ghost + ops_ + sales, TWO, {"ops": 2, "sales": 50})
    assert [r.split(":")[0] for r in reasons] == ["mass membership change"]
    assert {o.status for o in sales} == {OpStatus.held}
    assert {o.status for o in ghost + ops_} == {OpStatus.pending}


@pytest.mark.parametrize(("size", "count", "held"), [(None, 1, True), (1, 1, False),
                                                      (1, 2, True)])
def test_an_audience_of_unknown_size_counts_as_empty(size, count, held):
    # Minimum 0, 100%: the limit is the audience's size, and an unknown size is 0.
    sizes = {} if size is None else {"ops": size}
    assert bool(hold_removals(removals(count, "ops"), TWO, sizes)) is held


def test_the_unmapped_reason_comes_first():
    ops_ = [*removals(6), op(OpKind.member_remove, "U", audience="ops", unmapped="x")]
    reasons = hold_removals(ops_, TWO, {"sales": 50, "ops": 10})
    assert reasons[0] == "membership removals held: values with no audience rule or mapping"
    assert reasons[1].startswith("mass membership change: 6 removals from audience 'sales'")
    assert len(reasons) == 2


def test_a_cycle_is_described_back_to_its_start():
    from rostersync.sync.feed_conflicts import describe_cycle

    assert describe_cycle(("E1", "E2")) == "E1 -> E2 -> E1"
    assert describe_cycle(()) == ""


def test_every_person_with_an_issue_is_a_key():
    from rostersync.sync.feed_conflicts import Issues

    issues = Issues({"A": {}}, {"B": "Z"}, {"C": ("C", "D")})
    assert issues.keys() == {"A", "B", "C"}
    assert Issues().keys() == set()


def test_a_stats_row_counts_once_by_default():
    s = FeedStats()
    s.add(0, True)
    assert (s.rows, s.active) == (1, 1)


def test_earlier_deactivations_without_a_window_say_so():
    reason = apply_mass_hold(deactivations(1), 0, 1, 0.0, earlier=1)
    assert reason is not None and "within 0 minutes" in reason


# -- manager chains: the walk's cut at MAX_CHAIN links --------------------------------

def line(n: int, top: str | None = None) -> dict[str, str | None]:
    """P0 -> P1 -> ... -> P(n-1) -> ``top``."""
    return {f"P{i}": (f"P{i + 1}" if i + 1 < n else top) for i in range(n)}


@pytest.mark.parametrize(("people", "cut"), [(65, False), (66, True), (67, True)])
def test_a_chain_is_cut_after_max_chain_links(people, cut):
    from rostersync.sync.feed_conflicts import MAX_CHAIN, walk

    assert MAX_CHAIN == 64
    managers = line(people)
    chain = walk("P0", managers.get, managers.__contains__)
    assert chain.cut is cut and chain.loop == () and chain.unknown is None
    assert chain.managers == tuple(f"P{i}" for i in range(1, min(people, MAX_CHAIN + 1)))


def test_a_walk_names_the_managers_it_met():
    from rostersync.sync.feed_conflicts import walk

    managers = line(3, top="Z")
    chain = walk("P0", managers.get, managers.__contains__)
    assert (chain.managers, chain.unknown) == (("P1", "P2"), "Z")
    top = line(3)
    assert walk("P0", top.get, top.__contains__).managers == ("P1", "P2")


def test_a_loop_above_a_cut_chain_is_still_found_from_nearer_people():
    from rostersync.sync.feed_conflicts import manager_issues

    managers = line(70, top="L1") | {"L1": "L2", "L2": "L1"}
    # P0's walk is cut long before the loop; P60's reaches it.
    unknown, cycles = manager_issues(["P0", "P60"], managers.get, managers.__contains__,
                                     lambda k: True)
    assert unknown == {} and cycles == {"L1": ("L1", "L2"), "L2": ("L2", "L1")}


def test_people_wanting_no_account_are_not_checked():
    from rostersync.sync.feed_conflicts import manager_issues

    assert manager_issues(["A"], {"A": "Z"}.get, lambda k: k == "A", lambda k: False) \
        == ({}, {})
    assert manager_issues(["A"], {"A": "Z"}.get, lambda k: k == "A", lambda k: True) \
        == ({"A": "Z"}, {})


def test_a_previous_feed_of_one_record_is_a_baseline():
    assert check_feed(stats(0), stats(1, 0), [], LIMITS) == [
        "the feed has no records", "record count fell from 1 to 0 (100.0% drop, limit 10%)"]
