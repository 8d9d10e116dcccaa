"""The engine's vocabulary: Person, Account, drift and operation kinds.

Person is pydantic (it is where HR data is validated); Account is a slotted dataclass
because the engine builds and compares hundreds of thousands of them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from operator import attrgetter
from typing import Any

from pydantic import BaseModel, ConfigDict


class Status(StrEnum):
    active = "active"
    leave = "leave"
    pre_hire = "pre_hire"
    terminated = "terminated"


class DriftKind(StrEnum):
    missing = "missing"
    mismatch = "mismatch"
    pending_termination = "pending_termination"
    reactivation = "reactivation"
    orphan = "orphan"
    unlinked = "unlinked"
    disputed = "disputed"
    invalid = "invalid"
    unmapped = "unmapped"
    member_missing = "member_missing"  # an audience's rule holds, the LMS lacks the member
    member_extra = "member_extra"  # in an LMS audience whose rule no longer holds
    # Conflicts inside the HR feed (sync.feed_conflicts): nothing is written for the field.
    conflict = "conflict"  # a login or e-mail another person in the feed also holds
    manager_unknown = "manager_unknown"  # the manager id names nobody in the feed
    manager_cycle = "manager_cycle"  # the manager chain loops back to the person
    # Every generated login candidate is held (sync.mapping_logins): no account is made.
    login_taken = "login_taken"


class OpKind(StrEnum):
    create = "create"
    update = "update"
    deactivate = "deactivate"
    reactivate = "reactivate"
    link = "link"
    delete = "delete"
    member_add = "member_add"  # payload {"audience": id}: into an LMS group/cohort
    member_remove = "member_remove"


# Audience membership operations (sync.audiences): applied after every account operation.
MEMBER_OP_KINDS = (OpKind.member_add, OpKind.member_remove)


class OpStatus(StrEnum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    dead = "dead"
    held = "held"
    suppressed = "suppressed"
    superseded = "superseded"


OPEN_OP_STATUSES = (OpStatus.pending, OpStatus.running, OpStatus.failed, OpStatus.held,
                    OpStatus.suppressed)


class ErrorClass(StrEnum):
    transient = "transient"
    auth = "auth"
    conflict = "conflict"
    data = "data"
    mapping = "mapping"
    not_found = "not_found"


# Who has to act on a failure of each class (shown in the console and reports).
ERROR_OWNER: dict[str, str] = {
    ErrorClass.transient: "IT",
    ErrorClass.auth: "IT",
    ErrorClass.conflict: "IT/L&D",
    ErrorClass.data: "HR",
    ErrorClass.mapping: "L&D",
    ErrorClass.not_found: "IT",
}

DRIFT_OWNER: dict[str, str] = {
    DriftKind.invalid: "HR",
    DriftKind.unmapped: "L&D",
    DriftKind.disputed: "IT",
    DriftKind.orphan: "IT",
    DriftKind.conflict: "HR",
    DriftKind.manager_unknown: "HR",
    DriftKind.manager_cycle: "HR",
    # Two people may share a name: the HR data is right; the candidate list (config)
    # needs another entry.
    DriftKind.login_taken: "IT",
}


class Person(BaseModel):
    """The canonical HR record, after validation and normalisation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    employee_id: str
    employee_number: str | None = None
    first_name: str
    last_name: str
    preferred_name: str | None = None
    email: str | None = None
    department: str | None = None
    job_title: str | None = None
    location: str | None = None
    cost_center: str | None = None
    manager_id: str | None = None
    status: Status = Status.active
    hire_date: date | None = None
    termination_date: date | None = None
    timezone: str = "UTC"
    source_updated_at: datetime | None = None
    attributes: dict[str, str] = {}

    @property
    def display_name(self) -> str:
        return f"{self.preferred_name or self.first_name} {self.last_name}".strip()


# The Account fields rostersync manages, in the order they are compared and shown.
MANAGED_FIELDS = (
    "user_name", "given_name", "family_name", "display_name", "email", "title",
    "department", "employee_number", "manager_key", "active",
)


_managed_values = attrgetter(*MANAGED_FIELDS)


@dataclass(slots=True)
class Account:
    """An LMS account: desired (from a Person) or actual (read from the LMS).

    ``manager_key`` is the manager's *external key* (employee_id) on both sides, so that
    desired and actual compare without knowing LMS ids; connectors translate it to and
    from the LMS's own manager reference.
    """

    external_key: str | None
    user_name: str
    given_name: str = ""
    family_name: str = ""
    display_name: str = ""
    email: str | None = None
    title: str | None = None
    department: str | None = None
    employee_number: str | None = None
    manager_key: str | None = None
    active: bool = True
    lms_id: str | None = None
    version: str | None = None  # ETag / meta.version when the target offers one
    extra: dict[str, Any] = field(default_factory=dict)
    # Target attributes beyond the fields above, by their target name (a SCIM attribute
    # path or URN-qualified name), as [mapping.attributes] maps them: str, number, bool.
    attributes: dict[str, Any] = field(default_factory=dict)

    def managed(self) -> dict[str, Any]:
        return dict(zip(MANAGED_FIELDS, _managed_values(self), strict=True))

    def value(self, name: str) -> Any:
        """A field's value, or a mapped target attribute's (None when not held)."""
        if name in _SLOT_NAMES:
            return getattr(self, name)
        return self.attributes.get(name)

    def set_values(self, changes: dict[str, Any]) -> None:
        """Applies changes to fields and mapped target attributes alike."""
        for name, value in changes.items():
            if name in _SLOT_NAMES:
                setattr(self, name, value)
            else:
                self.attributes[name] = value

    def content_hash(self) -> bytes:
        # repr() of a tuple of str/bool/None is canonical and the same in every process,
        # and several times cheaper than JSON on the reconcile path.
        if self.attributes:
            return digest_bytes(repr((_managed_values(self),
                                      sorted(self.attributes.items()))).encode())
        return digest_bytes(repr(_managed_values(self)).encode())

    def to_json(self) -> str:
        # Not dataclasses.asdict: its deep copy costs more than the whole diff. The keys
        # go in sorted, so the unsorting encoder writes the same text as canonical_json
        # (which an `extra` of the target's own fields still needs, for its nested keys).
        # Target attributes are written only when there are some, so an account without
        # them reads the same as before they existed.
        data = dict(zip(_SORTED_SLOTS, _sorted_values(self), strict=True))
        if self.attributes:
            data["attributes"] = self.attributes
            return canonical_json(data)
        return canonical_json(data) if self.extra else _encode_in_order(data)

    @classmethod
    def from_json(cls, text: str) -> Account:
        return cls(**json.loads(text))


_SLOT_NAMES = frozenset(Account.__slots__)
_SLOTS = set(Account.__slots__) - {"attributes"}
_SORTED_SLOTS = tuple(sorted(_SLOTS))
_sorted_values = attrgetter(*_SORTED_SLOTS)

# json.dumps with any option builds a new encoder on every call; on the reconcile path
# (tens of thousands of records) a shared one saves a third of the encoding time. Output is
# the same text json.dumps(value, separators=(",", ":"), sort_keys=True, default=str) gives.
canonical_json = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=str).encode
# For dicts whose keys are already in order, nested ones included.
_encode_in_order = json.JSONEncoder(separators=(",", ":"), default=str).encode


def digest_of(value: Any) -> bytes:
    """An 8-byte content digest of a JSON-able value (stable across processes)."""
    data = canonical_json(value).encode()
    return hashlib.blake2b(data, digest_size=8).digest()


def digest_bytes(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=8).digest()
