"""Which node leads, as the console shows it, and what that leaves this console free to do.

Several `rostersync serve` nodes may share one database ([ha] enabled); the one holding
the "leader" lease (storage/lease.py, sync/leadership.py) runs the jobs and applies. A
console on another node that changed data would act behind the leader's back, so there
every action that changes data is refused, naming the leader. With no live leader
nothing is applied anywhere: actions that only write the database are still allowed (the
next leader applies what they release), but a run started from here would apply.

Pure: the lease row is read by the caller; ``now`` is the console's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rostersync.storage.lease import LeaseHolder

# The dangerous actions that start an engine run, which applies to the LMS at once (the
# rest write the database only): the person's resync key and the palette's sync/resync.
RUNS_ENGINE = frozenset({"resync", "ask_sync", "ask_resync"})


@dataclass(frozen=True)
class LeaderStatus:
    shown: bool                   # [ha] enabled, or another node holds a live lease
    leader: str | None = None     # the leading node, None: no live leader
    since: datetime | None = None
    this_node: bool = False       # the leader is the node this console runs on
    read: bool = True             # False until the console has read the lease once


# [ha] off and no live leader lease: a single node, nothing shown, nothing refused.
SINGLE_NODE = LeaderStatus(shown=False)
# [ha] on, before the first screen load has read the lease (a few milliseconds): nothing
# is claimed about the leader, and nothing is done until it is known.
UNREAD = LeaderStatus(shown=True, read=False)


def leader_status(row: LeaseHolder | None, now: datetime, *, ha_enabled: bool,
                  node: str) -> LeaderStatus:
    """The lease row as it stands (expired or not) -> what the console shows. A lease
    ending exactly ``now`` has ended (storage.lease.current agrees). With [ha] off, a
    released or lapsed leader row left from earlier is no news: only a live one is."""
    live = row is not None and row.expires_at is not None and row.expires_at > now
    if not live or row is None:
        return LeaderStatus(shown=True) if ha_enabled else SINGLE_NODE
    leader = row.node or row.host or row.holder
    return LeaderStatus(shown=True, leader=leader, since=row.acquired_at,
                        this_node=leader == node)


def read_only_here(status: LeaderStatus) -> bool:
    return status.leader is not None and not status.this_node


def applies_here(status: LeaderStatus) -> bool:
    """Whether a run started from this console may apply: one node, or this one leads."""
    return not status.shown or status.this_node


def refusal(status: LeaderStatus, action: str) -> str | None:
    """Why the dangerous ``action`` is refused on this node now (None: it is allowed)."""
    if not status.read:
        return "which node leads is not read yet; try again in a moment"
    if read_only_here(status):
        return (f"{status.leader} is the leader node: actions that change data are "
                f"read-only here, so make them from {status.leader}'s console")
    if status.shown and status.leader is None and action in RUNS_ENGINE:
        return ("no leader: nothing is being applied, and a run is started only by the "
                "leader node once one takes the lease")
    return None


def _clock_time(moment: datetime, now: datetime) -> str:
    """'02:14 UTC' today, else with its date: the operator reads it beside a clock."""
    at = moment.astimezone(UTC)
    if at.date() == now.astimezone(UTC).date():
        return at.strftime("%H:%M UTC")
    return at.strftime("%Y-%m-%d %H:%M UTC")


def leader_line(status: LeaderStatus, now: datetime) -> tuple[str, str]:
    """(the header's line, its tone: "this", "other", "none" or "unread") for a shown
    status."""
    if not status.read:
        return "leader: reading the leader lease", "unread"
    if status.leader is None:
        return "no leader: nothing is being applied", "none"
    since = f" since {_clock_time(status.since, now)}" if status.since is not None else ""
    if status.this_node:
        return f"leader: {status.leader}{since} (this node)", "this"
    return (f"leader: {status.leader}{since} (another node: actions are read-only here)",
            "other")


def held_back_note(status: LeaderStatus) -> str | None:
    """What becomes of what an action released when this console does not apply it
    (None: it applies here, on a single node or the leader)."""
    if applies_here(status):
        return None
    if status.leader is not None:
        return f"{status.leader}, the leader node, applies them"
    return "nothing is applied until a node leads"
