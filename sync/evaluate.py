"""Evaluate a batch of people: build what is known about each, decide, plan.

This is the seam between storage (IO) and the pure decisions in lifecycle, mapping,
diff and plan. It reads what it needs for one batch with a handful of indexed queries
and returns a ChangeSet the engine writes in the run's transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from rostersync.storage import accounts as account_store
from rostersync.storage import drift as drift_store
from rostersync.storage import match_decisions as match_store
from rostersync.storage import memberships as membership_store
from rostersync.storage import ops as op_store
from rostersync.storage import people as people_store
from rostersync.storage import suppressions as suppression_store
from rostersync.storage.db import Store, parse_ts, ts
from rostersync.sync.audiences.batch import AudienceBatch
from rostersync.sync.config import Config
from rostersync.sync.connectors.base import HrisSource, RawRecord, RecordError
from rostersync.sync.diff import (
    Decision,
    DriftItem,
    Intent,
    MatchChoice,
    Policy,
    Subject,
    Vanished,
    decide,
)
from rostersync.sync.feed_conflicts import Issues, describe_cycle
from rostersync.sync.lifecycle import lifecycle
from rostersync.sync.mapping import map_person
from rostersync.sync.mapping_logins import LoginBook, login_drift, settle_logins
from rostersync.sync.models import DRIFT_OWNER, Account, DriftKind, OpKind, OpStatus, Person, Status
from rostersync.sync.plan import NewOp, OpenOp, Suppression, apply_suppression, reconcile
from rostersync.sync.validate import null_mask, to_person


@dataclass
class Parsed:
    """One HRIS record, read and validated."""

    key: str
    locator: str
    digest: bytes
    person: Person | None
    problems: list[str]
    null_mask: int
    active: bool
    hr_status: str | None
    # The day to read this person again though nothing will report a change (a
    # future-dated change in the HRIS takes effect then): HrisSource.revisit_on.
    revisit_on: date | None = None


def parse_record(source: HrisSource, record: RawRecord, config: Config, today: date) -> Parsed:
    try:
        fields = source.fields(record)
    except RecordError as exc:
        return Parsed(record.key, record.locator, record.digest, None, [str(exc)], 0, False, None)
    result = to_person(fields, record.locator, config, today)
    hr_status = fields.get("status")
    if isinstance(result, Person):
        active = result.status in (Status.active, Status.leave)
        return Parsed(record.key, record.locator, record.digest, result, [], null_mask(fields),
                      active, hr_status, source.revisit_on(record, today))
    mapped = config.mapping.status_values.get((hr_status or "").strip().lower())
    active = mapped in (Status.active, Status.leave)
    return Parsed(record.key, record.locator, record.digest, None, [str(p) for p in result],
                  null_mask(fields), active, hr_status)


@dataclass
class ChangeSet:
    people_rows: list[dict[str, Any]] = field(default_factory=list)
    drift_opened: list[tuple[str, str, str | None, dict, str | None]] = field(default_factory=list)
    drift_refreshed: list[tuple[int, str | None, dict]] = field(default_factory=list)
    drift_resolved: list[int] = field(default_factory=list)
    new_ops: list[NewOp] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)
    unsuppressed: list[int] = field(default_factory=list)
    suppressed: list[tuple[int, Suppression]] = field(default_factory=list)
    drift_counts: Counter = field(default_factory=Counter)
    audience_rows: list[tuple[str, dict, dict, datetime | None]] = field(default_factory=list)
    # (employee id, the day to read them again or None) where that day moved.
    revisits: list[tuple[str, str | None]] = field(default_factory=list)
    evaluated: int = 0



@dataclass
class PlanSummary:
    """What a run planned, counted batch by batch (the batches themselves are written
    and dropped, so a million-person plan does not sit in memory)."""

    evaluated: int = 0
    drift: Counter = field(default_factory=Counter)
    planned: Counter = field(default_factory=Counter)
    held: int = 0
    hold_reason: str | None = None
    scheduled: int = 0
    suppressed: int = 0
    superseded: int = 0
    plan: list[dict[str, Any]] | None = None  # dry runs: the ops themselves
    rewrites: Counter = field(default_factory=Counter)  # attribute -> accounts updated

    def add_batch(self, changes: ChangeSet) -> None:
        self.evaluated += changes.evaluated
        self.drift.update(changes.drift_counts)
        self.superseded += len(changes.superseded)

    def add_ops(self, ops: list[NewOp], now: datetime) -> None:
        for op in ops:
            self.planned[str(op.kind)] += 1
            if op.kind in (OpKind.update, OpKind.reactivate, OpKind.link):
                self.rewrites.update(k for k in op.payload.get("changes") or ()
                                     if k != "active")
            if op.status == OpStatus.held:
                self.held += 1
                self.hold_reason = self.hold_reason or op.hold_reason
            elif op.status == OpStatus.suppressed:
                self.suppressed += 1
            if op.not_before and op.not_before > now:
                self.scheduled += 1
            if self.plan is not None and len(self.plan) < 10_000:
                self.plan.append({
                    "employee_id": op.employee_id, "kind": str(op.kind),
                    "status": str(op.status), "reason": op.reason, "lms_id": op.lms_id,
                    "not_before": op.not_before.isoformat() if op.not_before else None,
                    "changes": op.payload.get("changes"), "hold_reason": op.hold_reason,
                    "audience": op.payload.get("audience")})


def policy_of(config: Config) -> Policy:
    g = config.guards
    return Policy(timedelta(hours=g.vanished_grace_hours), g.vanished_grace_pulls,
                  frozenset(config.scope.skip_create_statuses))


def _account(text: str | None) -> Account | None:
    return Account.from_json(text) if text else None


def evaluate(store: Store, config: Config, now: datetime, keys: list[str],
             fresh: dict[str, Parsed], *, missing: set[str] | frozenset[str] = frozenset(),
             issues: Issues | None = None, absent: frozenset[str] = frozenset(),
             logins: LoginBook | None = None) -> ChangeSet:
    """Decide and plan for ``keys``. ``fresh`` holds the records read in this run;
    ``missing`` the keys a full pull just found absent from the feed; ``issues`` the
    conflicts inside the feed found for the run (feed_issues); ``absent`` the account
    fields whose HR column this export lacks (mapping.absent_account_fields)."""
    out = ChangeSet()
    if not keys:
        return out
    rows = people_store.load_people(store, keys)
    actual_by_key = account_store.by_external_keys(store, keys)
    open_drift = drift_store.open_for(store, keys)
    open_ops = op_store.open_ops_for(store, keys)
    suppressions = suppression_store.active_for(store, keys, now)
    policy = policy_of(config)
    now_text = ts(now)

    subjects: dict[str, Subject] = {}
    person_rows: dict[str, dict[str, Any]] = {}
    need_candidates: list[Subject] = []
    persons: dict[str, Person | None] = {}
    for key in keys:
        row = rows.get(key)
        parsed = fresh.get(key)
        actual = _account(actual_by_key.get(key))
        subject = Subject(key, actual=actual)
        person: Person | None = None
        missing_since, missing_pulls = None, 0
        if parsed is not None:
            person = parsed.person
            revisit = parsed.revisit_on.isoformat() if parsed.revisit_on else None
            if person is not None and revisit != (row["revisit_on"] if row else None):
                out.revisits.append((key, revisit))
            subject.problems = parsed.problems
            subject.locator = parsed.locator
            subject.hr_status = parsed.hr_status
            if person is None and row and row["record"]:
                person = Person.model_validate_json(row["record"])  # last good state
        elif row is not None:
            person = Person.model_validate_json(row["record"]) if row["record"] else None
            missing_since = parse_ts(row["missing_since"])
            missing_pulls = row["missing_pulls"]
            if key in missing:  # absent from this full feed (again)
                missing_since = missing_since or now
                missing_pulls += 1
            if missing_since is not None:
                subject.vanished = Vanished(missing_since, missing_pulls)
        if person is not None:
            subject.state = lifecycle(person, now, config.guards.termination_cutoff)
            subject.mapped = map_person(person, subject.state, config, today=now.date())
            if absent:
                subject.mapped.unmanaged = subject.mapped.unmanaged | absent
            if actual is None and subject.mapped.desired is not None:
                need_candidates.append(subject)
        subjects[key] = subject
        persons[key] = person
        if row is None and parsed is None:
            continue  # an LMS account whose key HR never sent: handled as orphan below
        person_rows[key] = _person_row(key, parsed, person, subject, row, now_text,
                                       missing_since, missing_pulls)

    audiences = AudienceBatch(store, config, now, persons)
    if config.mapping.generated_login:  # before matching: the settled login is matched
        for key in settle_logins(store, subjects.values(), logins):
            if key in person_rows:
                desired = _desired(subjects[key])
                person_rows[key]["desired"] = desired.to_json()
                person_rows[key]["desired_digest"] = desired.content_hash()
    _attach_candidates(store, need_candidates)
    _attach_choices(store, need_candidates)
    _unmanage_unresolvable_managers(store, subjects.values())
    if issues is not None:
        _leave_conflicting_fields(subjects.values(), issues)

    for key in keys:
        subject = subjects[key]
        if key not in person_rows:
            decision = _unknown_key(subject, config)
        else:
            decision = decide(subject, now, policy)
            taken = login_drift(subject)
            if taken is not None:
                decision.drift.append(taken)
            if issues is not None:
                decision.drift += _issue_drift(key, issues, subject)
            audiences.extend(decision, subject, persons[key])
            row = person_rows[key]
            if row["missing_since"] and not (subject.actual and subject.actual.active):
                row["status"] = "vanished"  # settled: nothing left to enforce
        _record_drift(out, key, decision.drift, open_drift.get(key, {}))
        _plan(out, key, decision.intents, open_ops.get(key, []), suppressions.get(key), now)
    out.people_rows = list(person_rows.values())
    out.audience_rows = audiences.rows
    out.evaluated = len(keys)
    return out


def _person_row(key: str, parsed: Parsed | None, person: Person | None, subject: Subject,
                row: dict[str, Any] | None, now_text: str, missing_since: datetime | None,
                missing_pulls: int) -> dict[str, Any]:
    invalid_now = parsed is not None and parsed.person is None
    desired = subject.mapped.desired if subject.mapped else None
    state = subject.state
    if invalid_now and person is None:
        status = "invalid"
    else:
        status = str(state.state) if state else (row["status"] if row else "invalid")
    return {
        "employee_id": key,
        "status": status,
        "in_scope": int(bool(subject.mapped and subject.mapped.in_scope)),
        "manager_id": person.manager_id if person else None,
        "manager_changed": bool(person and person.manager_id is not None and (
            row is None or row["manager_id"] != person.manager_id)),
        "record": parsed.person.model_dump_json() if parsed and parsed.person else None,
        "desired": desired.to_json() if desired else None,
        "desired_digest": desired.content_hash() if desired else None,
        "keep_record": int(invalid_now),
        "locator": parsed.locator if parsed else None,
        "effective_at": ts(state.next_change_at) if state and state.next_change_at else None,
        "now": now_text,
        "last_seen_at": now_text if parsed else None,
        "missing_since": ts(missing_since),
        "missing_pulls": missing_pulls,
    }


def _desired(subject: Subject) -> Account:
    """The account wanted for a subject that needs one (mapped, in scope)."""
    assert subject.mapped is not None and subject.mapped.desired is not None
    return subject.mapped.desired


def _attach_candidates(store: Store, subjects: list[Subject]) -> None:
    if not subjects:
        return
    emails = [email for s in subjects if (email := _desired(s).email)]
    names = [_desired(s).user_name for s in subjects]
    found = [Account.from_json(t) for t in account_store.candidates(store, emails, names)]
    by_email: dict[str, list[Account]] = {}
    by_name: dict[str, list[Account]] = {}
    for account in found:
        if account.email:
            by_email.setdefault(account.email.lower(), []).append(account)
        by_name.setdefault(account.user_name.lower(), []).append(account)
    for subject in subjects:
        desired = _desired(subject)
        seen: dict[str | None, Account] = {}
        for account in (by_email.get((desired.email or "").lower(), [])
                        + by_name.get(desired.user_name.lower(), [])):
            seen[account.lms_id] = account
        subject.candidates = list(seen.values())


def _attach_choices(store: Store, subjects: list[Subject]) -> None:
    """The operators' decisions on these people's matches, with the account a link
    decision names as last read (None: the LMS no longer has it)."""
    if not subjects:
        return
    decided = match_store.active_for(store, [s.employee_id for s in subjects])
    if not decided:
        return
    chosen = account_store.by_lms_ids(
        store, [d.lms_id for d in decided.values() if d.decision == "link" and d.lms_id])
    for subject in subjects:
        d = decided.get(subject.employee_id)
        if d is not None:
            subject.choice = MatchChoice(d.decision, d.lms_id, d.reason, d.decided_by,
                                         d.decided_at, _account(chosen.get(d.lms_id or "")))


def _unmanage_unresolvable_managers(store: Store, subjects: Collection[Subject]) -> None:
    """A manager without an LMS account cannot be referenced: leave the field alone
    (the manager's own drift says why) instead of planning an update that cannot land.
    When the manager's account appears, the executor marks the reports for a revisit."""
    wanted = {s.mapped.desired.manager_key for s in subjects
              if s.mapped and s.mapped.desired and s.mapped.desired.manager_key}
    if not wanted:
        return
    known = account_store.keys_with_accounts(store, sorted(wanted))
    for s in subjects:
        mapped = s.mapped
        desired = mapped.desired if mapped else None
        if mapped and desired and desired.manager_key and desired.manager_key not in known:
            mapped.unmanaged = mapped.unmanaged | {"manager_key"}


def _leave_conflicting_fields(subjects: Collection[Subject], issues: Issues) -> None:
    """Nothing is written for a field in conflict: it is left unmanaged, and no account
    is created for someone whose login or e-mail another person also claims."""
    for s in subjects:
        mapped = s.mapped
        if mapped is None or mapped.desired is None:
            continue
        key = s.employee_id
        fields = set(issues.conflicts.get(key, ()))
        if key in issues.unknown_manager or key in issues.cycles:
            fields.add("manager_key")
        if not fields:
            continue
        mapped.unmanaged = mapped.unmanaged | fields
        if "manager_key" in fields and s.actual is None:
            # A create carries the whole account: it is made without the broken link.
            mapped.desired.manager_key = None
        if key in issues.conflicts:
            shared = ", ".join(sorted(issues.conflicts[key]))
            mapped.blocked = f"{shared} also held by another person in the HR feed"


def _issue_drift(key: str, issues: Issues, subject: Subject) -> list[DriftItem]:
    lms_id = subject.actual.lms_id if subject.actual else None
    out: list[DriftItem] = []
    shared = issues.conflicts.get(key)
    if shared:
        others = sorted({o for _v, found in shared.values() for o in found})
        out.append(DriftItem(DriftKind.conflict, {
            "fields": {name: {"value": value, "with": list(found)}
                       for name, (value, found) in sorted(shared.items())},
            "with": others,
            "reason": f"{', '.join(sorted(shared))} also held by {', '.join(others)} "
                      "in the HR feed; nothing is written for it until HR fixes the data"},
            lms_id))
    if key in issues.unknown_manager:
        manager = issues.unknown_manager[key]
        out.append(DriftItem(DriftKind.manager_unknown, {
            "manager_id": manager, "chain": [key, manager],
            "reason": f"manager {manager} is not in the HR feed; the LMS manager is left "
                      "as it is"}, lms_id))
    if key in issues.cycles:
        loop = issues.cycles[key]
        out.append(DriftItem(DriftKind.manager_cycle, {
            "chain": list(loop), "cycle": describe_cycle(loop),
            "reason": f"the manager chain loops: {describe_cycle(loop)}; the LMS manager "
                      "is left as it is"}, lms_id))
    return out


def _unknown_key(subject: Subject, config: Config) -> Decision:
    decision = Decision()
    actual = subject.actual
    if actual is not None and actual.active:
        decision.drift.append(DriftItem(DriftKind.orphan, {"reason": "unknown to HR"},
                                        actual.lms_id))
        if config.guards.orphan_policy == "deactivate":
            decision.intents.append(Intent(OpKind.deactivate, {}, "unknown to HR",
                                           actual.lms_id))
    return decision


def _record_drift(out: ChangeSet, key: str, items: list[DriftItem],
                  open_now: dict[str, int]) -> None:
    seen: set[str] = set()
    for item in items:
        kind = str(item.kind)
        if kind in seen:
            continue
        seen.add(kind)
        out.drift_counts[kind] += 1
        if kind in open_now:
            out.drift_refreshed.append((open_now[kind], item.lms_id, item.detail))
        else:
            out.drift_opened.append((key, kind, item.lms_id, item.detail,
                                     DRIFT_OWNER.get(item.kind)))
    out.drift_resolved.extend(i for kind, i in open_now.items() if kind not in seen)


def _plan(out: ChangeSet, key: str, intents: list[Intent], open_rows: list[dict[str, Any]],
          suppression_row: dict[str, Any] | None, now: datetime) -> None:
    open_ops = [OpenOp(r["id"], key, r["kind"], r["idem_key"], r["status"]) for r in open_rows]
    plan = reconcile(key, intents, open_ops)
    suppression = None
    if suppression_row is not None:
        suppression = Suppression(key, suppression_row["reason"], suppression_row["until_dt"],
                                  suppression_row["created_by"])
    for op in plan.new:
        apply_suppression(op, suppression, now)
        out.new_ops.append(op)
    for kept in plan.keep:
        if kept.status == OpStatus.suppressed and suppression is None:
            out.unsuppressed.append(kept.id)
        elif kept.status in (OpStatus.pending, OpStatus.failed) and suppression is not None:
            out.suppressed.append((kept.id, suppression))
    out.superseded.extend(op.id for op in plan.supersede)


def write_changes(conn: Any, changes: ChangeSet, now: datetime, run_id: int | None,
                  max_attempts: int, ops: list[NewOp] | None = None) -> None:
    """Write a ChangeSet inside the caller's transaction. ``ops`` overrides which new ops
    are written (the engine holds back deactivations until the run's mass check)."""
    people_store.upsert_people(conn, changes.people_rows)
    people_store.set_revisits(conn, changes.revisits)
    membership_store.write_people(conn, now, changes.audience_rows)
    drift_store.write(conn, now, changes.drift_opened, changes.drift_refreshed,
                      changes.drift_resolved)
    op_store.set_status(conn, now, changes.superseded, "superseded", finished_at=ts(now))
    op_store.set_status(conn, now, changes.unsuppressed, "pending", suppressed_reason=None,
                        suppressed_until=None, suppressed_by=None)
    for op_id, s in changes.suppressed:
        op_store.set_status(conn, now, [op_id], "suppressed", suppressed_reason=s.reason,
                            suppressed_until=ts(s.until), suppressed_by=s.by)
    op_store.insert_ops(conn, now, run_id, changes.new_ops if ops is None else ops, max_attempts)
