"""HR life for the demo world: one scripted event per tick.

First an incident pass: hires (some future-dated), transfers, promotions, manager changes,
leaves and returns, terminations (some future-dated, some across time zones), rehires, a
renamed department with no mapping yet, a record with a bad email, a burst of
terminations big enough to trip the mass-deactivation hold, an export that arrives
truncated, a period when the LMS throttles, connections reset mid-answer, an outage, and
a revoked token: everything the console exists to show.

The order puts every kind of trouble inside the first minute at the demo's pace (a tick
every 2.5 s): the revoked token comes near the end, with hires right after it that meet
the LMS refusing the token (a quarantine), and the bad e-mail is fixed only after that.
IT restores the token a few ticks later; the demo's on-call (sandbox.oncall) resumes the
job and reviews the held burst, so the story shows recovery too.

Then normal life: mostly ordinary HR changes, with an incident every ``incident_every``
ticks (about two minutes at the demo's pace) taken in turn from a short list, each of
which ends on its own (a throttle, a slow LMS, a short outage, lost answers, a bad e-mail
that HR fixes later) and, rarely, a revoked token that IT restores.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta

from rostersync.sandbox.faults import FaultPlan
from rostersync.sandbox.publish import Publisher
from rostersync.sandbox.world import DEPARTMENTS, World, employee_id

INCIDENT_PASS = "incident pass"
NORMAL_LIFE = "normal life"


class HrLife:
    def __init__(self, world: World, publisher: Publisher, faults: FaultPlan,
                 today: Callable[[], date] = date.today, seed: int = 7,
                 mass_termination: int = 30, truncated_ticks: int = 4,
                 revoked_ticks: int = 7, fault_seconds: float = 1.0,
                 incident_every: int = 48, bad_email_ticks: int = 12,
                 taken_login_ticks: int = 40) -> None:
        self.world = world
        # Scales how long the LMS's faults last (a throttle of 15 s, an outage of 20 s):
        # a test walks the story in seconds and shortens them to match.
        self.fault_seconds = fault_seconds
        self.publisher = publisher
        self.truncated_ticks = truncated_ticks
        self.revoked_ticks = revoked_ticks
        self.incident_every = incident_every
        self.bad_email_ticks = bad_email_ticks
        self.taken_login_ticks = taken_login_ticks
        self.ticks = 0
        # Events owed later, as (tick due, event): IT restoring a token, HR fixing an
        # e-mail. One is due at most per tick; it takes that tick's turn.
        self.follow_ups: list[tuple[int, Callable[[], str]]] = []
        self.quiet_ticks = 0  # normal-life ticks since the last incident
        self.incidents_done = 0
        self.faults = faults
        self.today = today
        self.rng = random.Random(seed)
        self.mass_termination = mass_termination
        self.next_id = len(world.rows) + 1
        self.step = 0
        self.on_leave: list[str] = []
        self.terminated: list[str] = []
        self.bad_email: tuple[str, str] | None = None
        self.truncated_left = 0  # ticks the export stays truncated
        # Rows a truncated export has left out at some point: their vanishing and coming
        # back is the export's doing, not HR's (the demo sends no webhooks for it).
        self.withheld: set[str] = set()
        self.script: list[Callable[[], str]] = [
            self.hires, self.transfer, self.termination, self.throttle,
            self.give_bad_email, self.renamed_department, self.mass_terminations,
            self.promotion, self.taken_user_name, self.outage, self.leave,
            self.truncated_export, self.future_termination, self.rehire,
            self.manager_change, self.lost_answers, self.revoke_token, self.hires,
            self.slow_lms, self.return_from_leave, self.fix_bad_email,
        ]
        # Normal life's incidents, in turn: each ends on its own; the revoked token, the
        # one that needs the on-call, comes once a round.
        self.incidents: list[Callable[[], str]] = [
            self.throttle, self.slow_lms, self.short_outage, self.lost_answers,
            self.bad_email_for_a_while, self.revoke_token,
        ]
        # Normal life's ordinary changes and how often each comes.
        self.ordinary: list[tuple[Callable[[], str], int]] = [
            (self.hires, 4), (self.transfer, 3), (self.promotion, 1),
            (self.manager_change, 2), (self.leave, 1), (self.return_from_leave, 1),
            (self.termination, 2), (self.future_termination, 1), (self.rehire, 1),
        ]

    # -- driving -----------------------------------------------------------------------

    @property
    def phase(self) -> str:
        """"incident pass" until every event of the script has happened and what they owe
        (the token's restoration) has followed; "normal life" after."""
        if self.step < len(self.script) or (self.follow_ups and not self.incidents_done):
            return INCIDENT_PASS
        return NORMAL_LIFE

    def tick(self) -> str:
        """Apply the next event and publish the export; returns what happened."""
        self.ticks += 1
        event = self._follow_up_due()
        if event is None:
            if self.step < len(self.script):
                event = self.script[self.step]
                self.step += 1
            else:
                event = self._normal_day()
        what = event()
        self.publish()
        return what

    def _follow_up_due(self) -> Callable[[], str] | None:
        for i, (due, event) in enumerate(self.follow_ups):
            if due <= self.ticks:
                del self.follow_ups[i]
                return event
        return None

    def _later(self, ticks: int, event: Callable[[], str]) -> None:
        self.follow_ups.append((self.ticks + ticks, event))
        self.follow_ups.sort(key=lambda item: item[0])

    def _normal_day(self) -> Callable[[], str]:
        self.quiet_ticks += 1
        if self.quiet_ticks >= self.incident_every:
            self.quiet_ticks = 0
            incident = self.incidents[self.incidents_done % len(self.incidents)]
            self.incidents_done += 1
            return incident
        if not self.on_leave:
            choices = [(e, w) for e, w in self.ordinary if e != self.return_from_leave]
        else:
            choices = self.ordinary
        events, weights = zip(*choices, strict=True)
        return self.rng.choices(events, weights=weights)[0]

    def publish(self) -> None:
        rows = list(self.world.rows.values())
        if self.truncated_left:
            # Long enough for a scheduled full run to meet it, whatever the timing.
            self.truncated_left -= 1
            kept = int(len(rows) * 0.4)
            self.withheld.update(row["Employee ID"] for row in rows[kept:])
            rows = rows[:kept]
        self.publisher.publish(rows)

    # -- helpers ---------------------------------------------------------------------

    def _active(self) -> list[str]:
        return [k for k, r in self.world.rows.items() if r["Status"] == "Active"
                and not r["Termination Date"] and r["Worker Type"] == "Employee"
                and k != employee_id(1)]

    def _pick(self, n: int = 1) -> list[str]:
        return self.rng.sample(self._active(), n)

    def _day(self, offset: int) -> str:
        return (self.today() + timedelta(days=offset)).isoformat()

    def _past_everywhere(self) -> str:
        """A last working day already over in every zone at any hour: the end of
        yesterday is still to come west of UTC until the afternoon (UTC-8: 08:00 UTC), so
        a leaver meant to go now gets the day before."""
        return self._day(-2)

    # -- the events --------------------------------------------------------------------

    def hires(self) -> str:
        names = []
        for start in (0, 7):
            key = employee_id(self.next_id)
            self.world.rows[key] = World.person(self.next_id, **{"Hire Date": self._day(start)})
            self.next_id += 1
            names.append(f"{key} starting {self._day(start)}")
        return "hired " + " and ".join(names)

    def transfer(self) -> str:
        (key,) = self._pick()
        row = self.world.rows[key]
        row["Department"] = self.rng.choice([d for d in DEPARTMENTS if d != row["Department"]])
        row["Manager ID"] = self.rng.choice(self._pick(3))
        return f"{key} transferred to {row['Department']}"

    def promotion(self) -> str:
        key = self.rng.choice([k for k in self._active()
                               if self.world.rows[k]["Job Title"] != "Manager"])
        self.world.rows[key]["Job Title"] = "Manager"
        return f"{key} promoted to Manager"

    def manager_change(self) -> str:
        key, manager = self._pick(2)
        self.world.rows[key]["Manager ID"] = manager
        return f"{key} now reports to {manager}"

    def leave(self) -> str:
        (key,) = self._pick()
        self.world.rows[key]["Status"] = "Leave of Absence"
        self.on_leave.append(key)
        return f"{key} went on leave"

    def return_from_leave(self) -> str:
        if not self.on_leave:
            return "nobody on leave"
        key = self.on_leave.pop(0)
        self.world.rows[key]["Status"] = "Active"
        return f"{key} returned from leave"

    def termination(self) -> str:
        (key,) = self._pick()
        self.world.rows[key].update({"Status": "Terminated",
                                     "Termination Date": self._past_everywhere()})
        self.terminated.append(key)
        return f"{key} terminated (last day two days ago)"

    def future_termination(self) -> str:
        (key,) = self._pick()
        row = self.world.rows[key]
        row.update({"Termination Date": self._day(1), "Time Zone": "Pacific/Auckland"})
        return f"{key} will leave tomorrow (Auckland time)"

    def rehire(self) -> str:
        if not self.terminated:
            return self.hires()
        key = self.terminated.pop(0)
        self.world.rows[key].update({"Status": "Active", "Hire Date": self._day(0)})
        return f"{key} rehired"

    def renamed_department(self) -> str:
        keys = self._pick(3)
        for key in keys:
            self.world.rows[key]["Department"] = "Growth"
        return f"HR renamed a department to Growth (no mapping yet): {', '.join(keys)}"

    def give_bad_email(self) -> str:
        (key,) = self._pick()
        self.bad_email = (key, self.world.rows[key]["Work Email"])
        self.world.rows[key]["Work Email"] = self.bad_email[1].replace("@", "@@")
        return f"{key} has a broken email in HR"

    def fix_bad_email(self) -> str:
        if self.bad_email is None:
            return "no bad email to fix"
        key, email = self.bad_email
        self.bad_email = None
        self.world.rows[key]["Work Email"] = email
        return f"HR fixed {key}'s email"

    def mass_terminations(self) -> str:
        keys = self._pick(self.mass_termination)
        for key in keys:
            self.world.rows[key].update({"Status": "Terminated",
                                         "Termination Date": self._past_everywhere()})
        self.terminated.extend(keys)
        return f"{len(keys)} people terminated at once (a site closure?)"

    def truncated_export(self) -> str:
        self.truncated_left = self.truncated_ticks
        return "the HR export arrives truncated (40% of its rows) for a while"

    def throttle(self) -> str:
        seconds = 15 * self.fault_seconds
        self.faults.throttle(seconds)
        return f"the LMS throttles for {seconds:g} s (429 with Retry-After)"

    def slow_lms(self) -> str:
        delay, seconds = 2.0 * self.fault_seconds, 20 * self.fault_seconds
        self.faults.slow(delay, for_seconds=seconds)
        return f"the LMS answers slowly ({delay:g} s a request) for {seconds:g} s"

    def taken_user_name(self) -> str:
        key = employee_id(self.next_id)
        self.world.rows[key] = World.person(self.next_id)
        self.next_id += 1
        login = self.world.rows[key]["Work Email"]
        self.faults.refuse_create_of(login)

        def login_freed() -> str:
            self.faults.allow_create_of(login)
            return f"IT retired the legacy account that held {key}'s login"

        # Until IT acts, each create goes dead (a conflict is not retried); then a person
        # (the demo's on-call) retries it.
        self._later(self.taken_login_ticks, login_freed)
        return f"hired {key}, whose login the LMS says is already taken (409)"

    def lost_answers(self) -> str:
        keys = []
        for _ in range(2):  # started yesterday: active in every time zone
            key = employee_id(self.next_id)
            self.world.rows[key] = World.person(self.next_id, **{"Hire Date": self._day(-1)})
            self.next_id += 1
            keys.append(key)
        self.faults.reset_connections(2, method="POST", after=True)
        return (f"hired {' and '.join(keys)}; the network resets the LMS's answers to the "
                "next two creates (the accounts exist: retries must find them, not make twins)")

    def short_outage(self) -> str:
        seconds = 8 * self.fault_seconds
        self.faults.outage(seconds)
        return f"the LMS is down for {seconds:g} s (503), then back"

    def bad_email_for_a_while(self) -> str:
        if self.bad_email is not None:  # one broken e-mail at a time: HR fixes it first
            return self.fix_bad_email()
        what = self.give_bad_email()
        self._later(self.bad_email_ticks, self.fix_bad_email)
        return what + " (HR will fix it)"

    def outage(self) -> str:
        seconds = 20 * self.fault_seconds
        self.faults.outage(seconds)
        return f"the LMS is down for {seconds:g} s (503)"

    def revoke_token(self) -> str:
        self.faults.revoke_token(True)
        # Long enough for a full reconcile to meet it, whatever the timing.
        self._later(self.revoked_ticks, self.restore_token)
        return "the LMS token is revoked (401)"

    def restore_token(self) -> str:
        self.faults.revoke_token(False)
        return "IT rotated the LMS token back in: it works again (the job stays " \
            "quarantined until someone resumes it)"
