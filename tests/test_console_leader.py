"""Several nodes on one database ([ha]): the console names the leader node under its
header, and a console on another node refuses every action that changes data, naming the
leader (footer and help show those keys disabled). With no live leader the header warns
that nothing is applied; actions that only write the database still work, a run does not
start. A single node (the default) shows and refuses nothing.

The leader lease is written through storage/lease.py with the console's frozen clock; a
lease ending exactly now has ended."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from textual.geometry import Region
from textual.widgets import Static

from rostersync.console.app import ConsoleApp
from rostersync.console.commands import ConsoleCommands
from rostersync.console.leader_status import (
    SINGLE_NODE,
    UNREAD,
    LeaderStatus,
    held_back_note,
    leader_line,
    leader_status,
    refusal,
)
from rostersync.console.screens.confirm import ConfirmModal
from rostersync.console.screens.help import HelpScreen
from rostersync.console.screens.person import PersonScreen
from rostersync.console.widgets.leader_line import LeaderLine
from rostersync.storage import lease as lease_store
from rostersync.storage import ops as op_store
from rostersync.storage.db import Store
from rostersync.storage.lease import LeaseHolder
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config_ha import HaConfig
from rostersync.sync.engine import Engine
from rostersync.sync.leadership import LEADER
from tests.console_harness import ACTOR, VIEWED_AT, fresh_db, notes, settle

pytestmark = pytest.mark.anyio

THIS, OTHER = "node-a", "node-b"
LEASE = 30.0
NOT_HERE = f"{OTHER} is the leader node: actions that change data are read-only here"
NO_LEADER = "no leader: nothing is being applied"
SMALL = (80, 24)
WIDE = (200, 60)  # the help screen's lines unwrapped


def _row(expires_in: float, node: str = OTHER) -> LeaseHolder:
    now = VIEWED_AT
    return LeaseHolder(f"{node}/1", 1, node, now + timedelta(seconds=expires_in),
                       now - timedelta(minutes=5), 3, node)


# -- the pure model, at the lease's edge ------------------------------------------------

@pytest.mark.parametrize(("expires_in", "leader"), [(-1, None), (0, None), (1, OTHER)])
def test_a_lease_ending_now_or_earlier_means_no_leader(expires_in, leader):
    status = leader_status(_row(expires_in), VIEWED_AT, ha_enabled=True, node=THIS)
    assert status.shown and status.leader == leader


def test_with_ha_off_only_a_live_leader_lease_is_shown():
    assert leader_status(None, VIEWED_AT, ha_enabled=False, node=THIS) == SINGLE_NODE
    assert leader_status(_row(0), VIEWED_AT, ha_enabled=False, node=THIS) == SINGLE_NODE
    assert leader_status(_row(1), VIEWED_AT, ha_enabled=False, node=THIS).leader == OTHER
    assert leader_status(None, VIEWED_AT, ha_enabled=True, node=THIS) == LeaderStatus(True)


def test_what_is_refused_depends_on_who_leads():
    since = datetime(2026, 11, 26, 2, 14, tzinfo=UTC)
    other = LeaderStatus(True, OTHER, since, this_node=False)
    mine = LeaderStatus(True, THIS, since, this_node=True)
    none = LeaderStatus(True)
    for action in ("retry", "approve_group", "ask_pause", "resync", "ask_sync"):
        assert (refusal(other, action) or "").startswith(NOT_HERE)
        assert refusal(mine, action) is None and refusal(SINGLE_NODE, action) is None
    assert refusal(none, "approve") is None and refusal(none, "ask_pause") is None
    assert (refusal(none, "resync") or "").startswith(NO_LEADER)
    at = since + timedelta(hours=1)
    assert leader_line(mine, at) == ("leader: node-a since 02:14 UTC (this node)", "this")
    assert leader_line(other, at)[0] == (
        "leader: node-b since 02:14 UTC (another node: actions are read-only here)")
    # Taken on an earlier day: the date too.
    assert leader_line(other, at + timedelta(days=1))[0].startswith(
        "leader: node-b since 2026-11-26 02:14 UTC")
    assert leader_line(none, at) == (NO_LEADER, "none")
    # What an action released is applied from here only on one node or the leader.
    assert held_back_note(SINGLE_NODE) is None and held_back_note(mine) is None
    assert held_back_note(none) == "nothing is applied until a node leads"
    assert held_back_note(other) == "node-b, the leader node, applies them"
    # Before the console has read the lease once, it claims nothing and does nothing.
    assert leader_line(UNREAD, at) == ("leader: reading the leader lease", "unread")
    for action in ("approve", "ask_pause", "resync"):
        assert refusal(UNREAD, action) == ("which node leads is not read yet; try again in "
                                           "a moment")


# -- in the console ---------------------------------------------------------------------

def _app(seeded, folder, *, ha: bool = True, lease_ends_in: float | None = None,
         node: str = OTHER) -> ConsoleApp:
    """A console on THIS node over the seeded database, with the leader lease taken by
    ``node`` so that it ends ``lease_ends_in`` seconds after the console's now."""
    db = fresh_db(seeded, folder)
    config = seeded.config_for(db)
    config.ha = HaConfig(enabled=ha, node=THIS, lease_seconds=LEASE)
    store = Store(db)
    if lease_ends_in is not None:
        taken = VIEWED_AT + timedelta(seconds=lease_ends_in - LEASE)
        lease_store.take(store, f"{node}/serve", taken, LEASE, LEADER, node)
    clock = FrozenClock(VIEWED_AT)
    engine = Engine(config, store, clock=clock, rng=random.Random(7))
    return ConsoleApp(config, store, clock=clock, engine=engine, run_scheduler=False,
                      live=False, actor=ACTOR)


def _line(app: ConsoleApp) -> str | None:
    line = app.screen.query_one(LeaderLine)
    return line.text.plain.strip() if line.display else None


async def _person(app, pilot, employee_id: str) -> None:
    app.open_person(employee_id)
    await settle(pilot)
    assert isinstance(app.screen, PersonScreen)


@pytest.mark.parametrize("ends_in", [1, LEASE])
async def test_another_nodes_live_lease_makes_this_console_read_only(seeded, tmp_path,
                                                                     ends_in):
    app = _app(seeded, tmp_path, lease_ends_in=ends_in)
    assert app.leader == UNREAD  # until the first screen load reads the lease
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        since = (VIEWED_AT + timedelta(seconds=ends_in - LEASE)).strftime("%H:%M")
        assert _line(app) == (f"leader: {OTHER} since {since} UTC (another node: actions "
                              "are read-only here)")
        await _person(app, pilot, "E00005")  # a failed operation: retry would apply
        # The footer draws the key disabled; pressing it names the leader, asks nothing.
        assert app.active_bindings["r"].enabled is False
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, PersonScreen)
        assert notes(app)[-1].startswith(f"Retry: {NOT_HERE}")
        # The palette's runs and pause are refused the same way.
        app.ask_sync("full")
        app.ask_pause()
        await settle(pilot)
        assert isinstance(app.screen, PersonScreen)
        assert [n.startswith(NOT_HERE) for n in notes(app)[-2:]] == [True, True]
        assert op_store.ids_with_status(app.store, "failed")  # nothing was retried
        # Help lists the refused keys dim, with the reason once.
        app.push_screen(HelpScreen())
        await settle(pilot)
        text = " ".join(s.text for static in app.screen.query(Static)
                        for s in static.render_lines(Region(0, 0, *static.outer_size)))
        text = " ".join(text.split())  # the dialog wraps long rows
        assert "r retry this person's failed/dead operations (disabled here)" in text
        assert f"disabled here: {NOT_HERE}" in text


async def test_a_lease_that_ended_exactly_now_leaves_no_leader(seeded, tmp_path):
    """No leader: the header warns; approving (a database write) works, and what it
    released waits for a leader instead of being applied from here; a run is refused."""
    app = _app(seeded, tmp_path, lease_ends_in=0)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        assert _line(app) == NO_LEADER
        assert app.screen.query_one(LeaderLine).text.style == "bold black on yellow"
        await _person(app, pilot, "E00121")  # a held deactivation
        held = op_store.ids_with_status(app.store, "held")
        assert app.active_bindings["a"].enabled and not app.active_bindings["y"].enabled
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        # The dialog says what will happen: approved here, applied by a leader later.
        assert app.screen.request.question.endswith(
            "and leave them for the leader node to apply (nothing is applied until a node "
            "leads)?")
        await pilot.press("y")
        await settle(pilot)
        released = sorted(set(held) - set(op_store.ids_with_status(app.store, "held")))
        assert released and set(op_store.ids_with_status(app.store, "pending")) >= \
            set(released)  # approved, and not applied: no leader applies
        assert notes(app)[-1].endswith("approved; nothing is applied until a node leads")
        await pilot.press("y")  # resync runs the engine: refused
        await settle(pilot)
        assert isinstance(app.screen, PersonScreen)
        assert notes(app)[-1].startswith(f"Resync: {NO_LEADER}")


@pytest.mark.parametrize(("node", "ends_in", "sync", "pause"), [
    (OTHER, LEASE, NOT_HERE, NOT_HERE),   # another node leads: every command refused
    (THIS, 0, NO_LEADER, None),           # nobody leads: a run is refused, pause is not
    (THIS, LEASE, None, None),            # this node leads: nothing refused
])
async def test_the_palette_says_which_commands_are_refused_here(seeded, tmp_path, node,
                                                                ends_in, sync, pause):
    """Before a command is chosen, its help in the palette says why it would be refused,
    as the footer draws a refused key dim."""
    app = _app(seeded, tmp_path, lease_ends_in=ends_in, node=node)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        helps = dict(ConsoleCommands(app.screen).commands())
    for name, why in (("Sync now: full", sync), ("Sync now: delta", sync),
                      ("Pause the scheduler and the job", pause)):
        if why is None:
            assert "(asks first)" in helps[name], (name, helps[name])
        else:
            assert helps[name].startswith(f"refused here: {why}"), (name, helps[name])


async def test_a_lease_that_ended_a_second_ago_leaves_no_leader(seeded, tmp_path):
    app = _app(seeded, tmp_path, lease_ends_in=-1)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        assert _line(app) == NO_LEADER


async def test_the_leader_nodes_console_acts(seeded, tmp_path):
    app = _app(seeded, tmp_path, lease_ends_in=LEASE, node=THIS)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        assert _line(app) == f"leader: {THIS} since 12:20 UTC (this node)"
        await _person(app, pilot, "E00005")
        assert app.engine is not None and app.engine.fence is None
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        await settle(pilot)
        # The retry it applied checked the lease this node's serve holds, as a serve run
        # does: had leadership moved while it ran, it would have stopped sending.
        lease = lease_store.current(app.store, app.clock.now(), LEADER)
        assert lease is not None
        assert app.engine.fence == lease_store.Fence(lease.holder, lease.token, LEADER)


async def test_a_single_node_shows_no_leader_line_and_refuses_nothing(seeded, tmp_path):
    app = _app(seeded, tmp_path, ha=False, lease_ends_in=0)  # an old, lapsed lease row
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        assert _line(app) is None and app.screen.query_one(LeaderLine).region.height == 0
        await _person(app, pilot, "E00005")
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)


async def test_the_header_follows_the_lease_as_it_changes_hands(seeded, tmp_path):
    app = _app(seeded, tmp_path, lease_ends_in=1)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        assert app.active_bindings["3"].enabled  # navigation is never refused
        app.clock.advance(seconds=1)  # the lease ends: nobody leads
        app.refresh_screen()
        await settle(pilot)
        assert _line(app) == NO_LEADER
        lease_store.take(app.store, f"{THIS}/serve", app.clock.now(), LEASE, LEADER, THIS)
        app.refresh_screen()
        await settle(pilot)
        assert _line(app) == f"leader: {THIS} since 12:20 UTC (this node)"


def test_snapshot_of_the_header_on_a_non_leader_node(seeded, tmp_path, snap_compare):
    app = _app(seeded, tmp_path, lease_ends_in=LEASE)
    assert snap_compare(app, terminal_size=SMALL, run_before=settle)
