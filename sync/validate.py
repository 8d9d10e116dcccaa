"""Turn one record's canonical field strings into a Person, or say everything wrong with it.

Pure functions, no IO: the engine calls ``to_person`` for every changed row, and every
problem of a record is reported at once so HR can fix a row in one pass instead of
discovering its errors one sync at a time.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from rostersync.sync.config import CANONICAL_FIELDS, Config
from rostersync.sync.models import Person, Status

# Plain optional text fields: stripped, empty -> None.
_TEXT_FIELDS = (
    "employee_number",
    "preferred_name",
    "department",
    "job_title",
    "location",
    "cost_center",
)
_ATTRIBUTE_PREFIX = "attributes."
# HRIS exports write "no date" as a zero date rather than leaving the cell empty.
_NO_DATE = "0000-00-00"
# Fields held to mapping.max_name_length; every other one to mapping.max_field_length.
_NAME_FIELDS = frozenset({"first_name", "last_name", "preferred_name"})
# Characters no LMS should receive: C0 controls (NUL cuts strings short in C code, ESC
# drives terminals), DEL and C1 controls, and the bidirectional embeddings, overrides and
# isolates, which make a name display as something other than what it is.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_NAMES = {0x00: "NUL", 0x1B: "ESC", 0x7F: "DEL", 0x09: "TAB", 0x0A: "LINE FEED",
                  0x0D: "CARRIAGE RETURN"}
# A problem quotes at most this much of a value: a 1 MiB field must not fill the drift.
_QUOTE_CHARS = 60

# local@domain.tld: a dot-atom local part, then two or more domain labels whose last (the
# TLD) starts with a letter. Letters may be non-ASCII (internationalised addresses); the
# intent is catching typos like "bob@@x" or "bob smith@x.com", not enforcing RFC 5322.
_ATOM = r"[\w!#$%&'*+/=?^`{|}~-]+"
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[^\W\d_](?:[\w-]*[^\W_])?")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one record, worded for the HR person who must fix it."""

    locator: str
    field: str | None
    value: str | None
    message: str

    def __str__(self) -> str:
        where = self.locator + (f" field {self.field}" if self.field else "")
        shown = "" if self.value is None else f" (value {_quote(self.value)})"
        return f"{where}: {self.message}{shown}"


def to_person(
    fields: dict[str, str | None], locator: str, config: Config, today: date
) -> Person | list[Problem]:
    """Validate and normalise one record; a Person, or every Problem found."""
    problems: list[Problem] = []

    def problem(field: str, value: str | None, message: str) -> None:
        problems.append(Problem(locator, field, value, message))

    # Sources hand over stripped strings already; strip again so any source is safe.
    values = {
        name: (raw.strip() or None) if (raw := fields.get(name)) else None
        for name in CANONICAL_FIELDS
    }
    unsafe = _unsafe_fields(values, fields, config, problem)
    # An unsafe value is reported once, as such, not again as a bad email or date.
    for name in unsafe:
        if name in values:
            values[name] = None
    for name in ("employee_id", "first_name", "last_name"):
        if values[name] is None and name not in unsafe:
            problem(name, None, "required but empty")
    employee_id = values["employee_id"]
    if employee_id is not None and any(map(str.isspace, employee_id)):
        problem("employee_id", employee_id, "contains whitespace")

    email = values["email"]
    if email is not None:
        if _valid_email(email):
            email = email.lower()
        else:
            problem("email", email, "not a valid email address")

    status = None if "status" in unsafe else _status(fields, config, problem)
    dates: dict[str, date | None] = {}
    for name in ("hire_date", "termination_date"):
        raw = values[name]
        try:
            dates[name] = _parse_date(raw, tuple(config.hris.date_formats)) if raw else None
        except ValueError:
            formats = ", ".join(config.hris.date_formats)
            problem(name, raw, f"not a date in any configured format ({formats})")
            dates[name] = None

    updated_at = None
    if values["source_updated_at"] is not None:
        updated_at = _parse_datetime(values["source_updated_at"])
        if updated_at is None:
            problem(
                "source_updated_at",
                values["source_updated_at"],
                "not an ISO 8601 date-time (e.g. 2024-05-01T09:30:00Z)",
            )

    timezone = values["timezone"] or config.mapping.default_timezone
    if not _valid_zone(timezone):
        problem("timezone", timezone, "not a valid IANA time zone (e.g. Europe/Berlin)")

    manager_id = values["manager_id"]
    if manager_id is not None and manager_id == employee_id:
        problem("manager_id", manager_id, "same as employee_id (nobody manages themselves)")

    if problems:
        return problems
    termination = dates["termination_date"]
    if termination is not None and status is not None:
        status = _effective_status(status, dates["hire_date"], termination, today)
    attributes = {
        name.removeprefix(_ATTRIBUTE_PREFIX): value
        for name, raw in fields.items()
        if name.startswith(_ATTRIBUTE_PREFIX) and (value := _clean(raw)) is not None
    }
    try:
        return Person(
            employee_id=employee_id,
            first_name=values["first_name"],
            last_name=values["last_name"],
            email=email,
            manager_id=manager_id,
            status=status or Status.active,
            hire_date=dates["hire_date"],
            termination_date=termination,
            timezone=timezone,
            source_updated_at=updated_at,
            attributes=attributes,
            **{name: values[name] for name in _TEXT_FIELDS},
        )
    except ValidationError as exc:  # a rule above should have caught it; never crash a sync
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        return [Problem(locator, field, None, err["msg"])]


def _unsafe_fields(
    values: dict[str, str | None],
    fields: dict[str, str | None],
    config: Config,
    problem: Callable[[str, str | None, str], None],
) -> set[str]:
    """Fields whose value is too long or holds a character no LMS should receive."""
    checked = [(name, value) for name, value in values.items() if value is not None]
    checked += [(name, value) for name, raw in fields.items()
                if name.startswith(_ATTRIBUTE_PREFIX) and (value := _clean(raw)) is not None]
    unsafe: set[str] = set()
    for name, value in checked:
        if name in _NAME_FIELDS:
            limit, key = config.mapping.max_name_length, "mapping.max_name_length"
        else:
            limit, key = config.mapping.max_field_length, "mapping.max_field_length"
        if len(value) > limit:
            unsafe.add(name)
            problem(name, value, f"is {len(value):,} characters long, over the limit of "
                                 f"{limit:,} ({key})")
            continue
        found = _FORBIDDEN.search(value)
        if found is not None:
            unsafe.add(name)
            problem(name, value, f"contains {_describe(found.group())} at character "
                                 f"{found.start() + 1}, which no LMS should receive")
    return unsafe


def _describe(char: str) -> str:
    code = ord(char)
    name = _CONTROL_NAMES.get(code) or unicodedata.name(char, "a control character")
    return f"U+{code:04X} ({name})"


def _quote(value: str) -> str:
    if len(value) <= _QUOTE_CHARS:
        return repr(value)
    return f"{value[:_QUOTE_CHARS]!r}... ({len(value):,} characters)"


def null_mask(fields: dict[str, str | None]) -> int:
    """Bit i set when CANONICAL_FIELDS[i] is absent or empty (for the feed's null-rate gate)."""
    mask = 0
    for bit, name in enumerate(CANONICAL_FIELDS):
        if _clean(fields.get(name)) is None:
            mask |= 1 << bit
    return mask


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


def _status(
    fields: dict[str, str | None], config: Config, problem: Callable[[str, str | None, str], None]
) -> Status | None:
    """The mapped status; None when the feed has no status column (then: active)."""
    if "status" not in fields:
        return None
    raw = _clean(fields["status"])
    if raw is None:
        problem("status", None, "required but empty")
        return None
    known = config.mapping.status_values  # keys already folded to stripped lower case
    found = known.get(raw.lower())
    if found is None:
        # Also forgive doubled inner spaces ("On  Leave").
        folded = " ".join(raw.lower().split())
        found = next((v for k, v in known.items() if " ".join(k.split()) == folded), None)
    if found is None:
        problem("status", raw, "not a known status; add it to mapping.status_values")
    return found


def _effective_status(status: Status, hire: date | None, termination: date, today: date) -> Status:
    """The status as of ``today``: the termination date is the last working day.

    Through that day the person is still working, whatever HR has already typed (a
    scheduled termination); from the day after, they are gone even if HR forgot to
    change the status. The engine acts on the termination at its own cutoff time.
    """
    if hire is not None and hire > termination:
        return status  # a rehire: HR systems keep the old termination date around
    if status is Status.terminated and termination >= today:
        return Status.active
    if status in (Status.active, Status.leave) and termination < today:
        return Status.terminated
    return status


@functools.lru_cache(maxsize=8192)  # a feed holds few distinct dates; strptime is slow
def _parse_date(raw: str, formats: tuple[str, ...]) -> date | None:
    """The date ``raw`` denotes in the first format that reads it; ValueError if none."""
    if raw == _NO_DATE:
        return None
    for fmt in formats:
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    raise ValueError(raw)


def _parse_datetime(raw: str) -> datetime | None:
    try:
        # Python 3.11 reads "Z" and offsets; a bare date means its midnight.
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@functools.lru_cache(maxsize=1024)
def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _valid_email(value: str) -> bool:
    local = value.partition("@")[0]
    return len(value) <= 254 and len(local) <= 64 and _EMAIL.fullmatch(value) is not None
