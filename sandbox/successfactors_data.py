"""The data side of the SuccessFactors sandbox: a tenant's people, how HR changes them
(each change stamps lastModifiedDateTime on the entity it touches, not on PerPerson), a
small $filter language, and the JSON rendering of PerPerson (docs/successfactors.md §3).

People are kept as plain dicts in the wire's own field names. Dates are ``date``
(Edm.DateTime) and change stamps ``datetime`` (Edm.DateTimeOffset); rendering turns them
into ``/Date(ms)/`` and ``/Date(ms+0000)/``. Effective-dated navigations (personalInfoNav,
jobInfoNav) are lists of segments with startDate/endDate.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

OPEN_END = date(9999, 12, 31)  # an open-ended segment (§3.4)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EFFECTIVE_DATED = ("personalInfoNav", "jobInfoNav")
COLLECTIONS = ("personalInfoNav", "emailNav", "employmentNav", "jobInfoNav")
# Per-tenant picklist option ids for emplStatus (§3.2: never hard-code these).
STATUS_OPTION_IDS = {"A": "4595", "U": "4596", "P": "4597", "S": "4598", "T": "4600",
                     "R": "4601", "D": "4602", "F": "4603", "O": "4604"}
DEPARTMENTS = {"FIN": "Finance", "ENG": "Engineering", "SAL": "Sales", "SUP": "Support"}


class ODataRefusal(Exception):
    """An OData error answer: HTTP status, error code and message (§3.7)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def person(pid: str, first: str, last: str, *, user_id: str | None = None,
           email: str | None = None, department: str = "ENG", title: str = "Specialist",
           manager: str | None = None, status: str = "A", hired: date = date(2020, 3, 1),
           location: str = "Berlin") -> dict[str, Any]:
    """One worker with one standard employment and one job segment from ``hired``."""
    user_id = user_id or f"u{pid}"
    email = email or f"{first.lower()}.{last.lower()}@acme.example"
    return {
        "personIdExternal": pid,
        "personalInfoNav": [{"firstName": first, "lastName": last, "preferredName": None,
                             "startDate": hired, "endDate": OPEN_END}],
        "emailNav": [{"emailAddress": email, "emailType": "B", "isPrimary": True}],
        "employmentNav": [{
            "personIdExternal": pid, "userId": user_id, "startDate": hired, "endDate": None,
            "assignmentClass": "ST",
            "userNav": {"userId": user_id, "username": email.split("@")[0], "email": email,
                        "status": "t", "empId": f"E{pid}", "title": title,
                        "location": location, "department": DEPARTMENTS.get(department)},
            "jobInfoNav": [job_segment(user_id, hired, department=department, title=title,
                                       manager=manager, status=status)],
        }],
        "personEmpTerminationInfoNav": {"activeEmploymentsCount": 1,
                                        "latestTerminationDate": None},
    }


def job_segment(user_id: str, start: date, *, department: str, title: str,
                manager: str | None, status: str, end: date = OPEN_END) -> dict[str, Any]:
    return {"userId": user_id, "startDate": start, "endDate": end, "department": department,
            "jobTitle": title, "managerId": manager or "NO_MANAGER",
            "seqNumber": 1, "emplStatus": STATUS_OPTION_IDS.get(status, "9999"),
            "emplStatusNav": {"id": STATUS_OPTION_IDS.get(status, "9999"), "externalCode": status},
            "departmentNav": {"externalCode": department,
                              "name_localized": DEPARTMENTS.get(department, department)}}


def organisation(n: int) -> list[dict[str, Any]]:
    """A small organisation: person 1001 at the top, four reports per manager."""
    firsts = ["Lena", "Karl", "Mia", "Jonas", "Sofia", "Paul", "Emma", "Felix"]
    lasts = ["Vogt", "Weber", "Braun", "Klein", "Wolf", "Neumann", "Schulz"]
    out = []
    for i in range(n):
        boss = None if i == 0 else f"u{1001 + (i - 1) // 4}"
        out.append(person(str(1001 + i), firsts[i % len(firsts)], f"{lasts[i % len(lasts)]}{i}",
                          department=list(DEPARTMENTS)[i % len(DEPARTMENTS)], manager=boss))
    return out


class PeopleStore:
    """The tenant's PerPerson records; safe to change from any thread."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._people: dict[str, dict[str, Any]] = {}

    def put(self, record: dict[str, Any]) -> None:
        """Insert or replace a person; every entity in it gets the current stamp."""
        record = copy.deepcopy(record)
        stamp_all(record, self.clock())
        with self._lock:
            self._people[record["personIdExternal"]] = record

    def get(self, pid: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._people.get(pid)
            return copy.deepcopy(found) if found is not None else None

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(p) for _, p in sorted(self._people.items())]

    def edit(self, pid: str, change: Callable[[dict[str, Any], datetime], None]) -> None:
        with self._lock:
            change(self._people[pid], self.clock())

    # -- HR actions (each stamps only what it touches) ---------------------------------

    def change_job(self, pid: str, effective: date, **fields: Any) -> None:
        """A new job segment from ``effective`` (past, today or future-dated)."""
        def change(record: dict[str, Any], now: datetime) -> None:
            jobs = record["employmentNav"][-1]["jobInfoNav"]
            base = next(s for s in reversed(jobs) if s["startDate"] <= effective)
            segment = {**copy.deepcopy(base), **fields, "startDate": effective,
                       "seqNumber": 1, "lastModifiedDateTime": now}
            if "status" in fields:
                code = segment.pop("status")
                segment["emplStatus"] = STATUS_OPTION_IDS.get(code, "9999")
                segment["emplStatusNav"] = {"id": segment["emplStatus"], "externalCode": code}
            if "department" in fields:
                segment["departmentNav"] = {"externalCode": fields["department"],
                                            "name_localized": DEPARTMENTS.get(
                                                fields["department"], fields["department"])}
            base["endDate"] = effective - timedelta(days=1)
            base["lastModifiedDateTime"] = now
            jobs.append(segment)
            jobs.sort(key=lambda s: (s["startDate"], s.get("seqNumber", 1)))
        self.edit(pid, change)

    def add_job_record(self, pid: str, effective: date, **fields: Any) -> None:
        """Another job record from ``effective`` the way EC writes several on one date
        (KBA 3201077): the record it follows keeps ``endDate = effective`` (the two
        overlap on that day) and the new one gets the next ``seqNumber`` for the date."""
        def change(record: dict[str, Any], now: datetime) -> None:
            jobs = record["employmentNav"][-1]["jobInfoNav"]
            base = max((s for s in jobs if s["startDate"] <= effective),
                       key=lambda s: (s["startDate"], s.get("seqNumber", 1)))
            same_day = [s.get("seqNumber", 1) for s in jobs if s["startDate"] == effective]
            segment = {**copy.deepcopy(base), **fields, "startDate": effective,
                       "seqNumber": max(same_day, default=0) + 1, "lastModifiedDateTime": now}
            base.update(endDate=effective, lastModifiedDateTime=now)
            jobs.append(segment)
            jobs.sort(key=lambda s: (s["startDate"], s.get("seqNumber", 1)))
        self.edit(pid, change)

    def terminate(self, pid: str, last_day: date) -> None:
        """A T segment from the day after the last working day; EmpEmployment.endDate
        is set at once, whether the date is past or future (§3.6).

        PersonEmpTerminationInfo goes null while the termination is processed: Entra's
        SuccessFactors reference warns that its ``activeEmploymentsCount ne null`` filter
        then drops the person from deltas (connectors.md §3.6). The sandbox leaves it null
        so that a filter relying on it misses the termination here as it would there."""
        self.change_job(pid, last_day + timedelta(days=1), status="T")

        def change(record: dict[str, Any], now: datetime) -> None:
            employment = record["employmentNav"][-1]
            employment.update(endDate=last_day, lastModifiedDateTime=now)
            record["personEmpTerminationInfoNav"] = None
        self.edit(pid, change)

    def rename(self, pid: str, **fields: Any) -> None:
        """Correct the current personal segment (no new segment)."""
        def change(record: dict[str, Any], now: datetime) -> None:
            record["personalInfoNav"][-1].update(**fields, lastModifiedDateTime=now)
        self.edit(pid, change)


def stamp_all(value: Any, now: datetime) -> None:
    if isinstance(value, list):
        for item in value:
            stamp_all(item, now)
    elif isinstance(value, dict):
        if "emplStatus" in value or "userId" in value or "personIdExternal" in value \
                or "startDate" in value or "emailAddress" in value \
                or "activeEmploymentsCount" in value:
            value["lastModifiedDateTime"] = now
        for item in value.values():
            if isinstance(item, dict | list):
                stamp_all(item, now)


# -- $filter (§3.3, §3.5) -------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<typed>datetimeoffset|datetime)'(?P<tval>[^']*)'"
                    r"|'(?P<str>(?:[^']|'')*)'|(?P<num>-?\d+(?:\.\d+)?)(?![\w/])"
                    r"|(?P<paren>[()])|(?P<word>[A-Za-z_][\w/]*))")
_OPERATORS = {"eq", "ne", "gt", "ge", "lt", "le"}


def parse_filter(text: str) -> Callable[[dict[str, Any]], bool]:
    """A predicate over stored people for `path op literal` joined by and/or/not with
    parentheses. A path through a collection matches if any element does, across ALL
    segments of effective-dated navigations (§3.5)."""
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            if text[pos:].strip() == "":
                break
            raise ODataRefusal(400, "COE_GENERAL_BAD_REQUEST",
                               f"Invalid $filter near {text[pos:pos + 20]!r}")
        tokens.append(match)
        pos = match.end()
    index = 0

    def peek_word() -> str | None:
        if index < len(tokens) and tokens[index].group("word"):
            return tokens[index].group("word")
        return None

    def take() -> re.Match[str]:
        nonlocal index
        if index >= len(tokens):
            raise ODataRefusal(400, "COE_GENERAL_BAD_REQUEST", "Invalid $filter: it ends early")
        index += 1
        return tokens[index - 1]

    def disjunction() -> Callable[[dict[str, Any]], bool]:
        parts = [conjunction()]
        while peek_word() == "or":
            take()
            parts.append(conjunction())
        return lambda p: any(part(p) for part in parts)

    def conjunction() -> Callable[[dict[str, Any]], bool]:
        parts = [unary()]
        while peek_word() == "and":
            take()
            parts.append(unary())
        return lambda p: all(part(p) for part in parts)

    def unary() -> Callable[[dict[str, Any]], bool]:
        if peek_word() == "not":
            take()
            inner = unary()
            return lambda p: not inner(p)
        token = take()
        if token.group("paren") == "(":
            inner = disjunction()
            if take().group("paren") != ")":
                raise ODataRefusal(400, "COE_GENERAL_BAD_REQUEST", "Invalid $filter: no ')'")
            return inner
        path = token.group("word")
        operator = take().group("word")
        if not path or operator not in _OPERATORS:
            raise ODataRefusal(400, "COE_GENERAL_BAD_REQUEST",
                               f"Invalid $filter: expected 'property op value' at {path!r}")
        literal = _literal(take())
        return lambda p: _compare(values_at(p, path), operator, literal)

    predicate = disjunction()
    if index != len(tokens):
        raise ODataRefusal(400, "COE_GENERAL_BAD_REQUEST", "Invalid $filter: trailing text")
    return predicate


def _literal(token: re.Match[str]) -> Any:
    if token.group("typed"):
        value = token.group("tval")
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ODataRefusal(400, "COE_GENERAL_BAD_REQUEST",
                               f"Invalid date literal {value!r}") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if token.group("str") is not None:
        return token.group("str").replace("''", "'")
    if token.group("num"):
        return float(token.group("num"))
    word = token.group("word")
    if word in ("null", "true", "false"):
        return {"null": None, "true": True, "false": False}[word]
    raise ODataRefusal(400, "COE_GENERAL_BAD_REQUEST", f"Invalid $filter value {word!r}")


KNOWN_NAVIGATIONS = {"personalInfoNav", "emailNav", "employmentNav", "userNav", "jobInfoNav",
                     "personEmpTerminationInfoNav", "emplStatusNav", "departmentNav"}


def values_at(record: dict[str, Any], path: str) -> list[Any]:
    """Every value at a '/'-separated path (collections fan out)."""
    current: list[Any] = [record]
    parts = path.split("/")
    for number, part in enumerate(parts):
        if number < len(parts) - 1 and part not in KNOWN_NAVIGATIONS:
            raise ODataRefusal(400, "COE_PROPERTY_NOT_FOUND",
                               f"Invalid property name {part!r} in {path!r}")
        found: list[Any] = []
        for item in current:
            value = item.get(part) if isinstance(item, dict) else None
            found.extend(value if isinstance(value, list) else [value])
        current = found
    return current


def _comparable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def _compare(values: list[Any], operator: str, literal: Any) -> bool:
    if literal is None:
        present = any(v is not None for v in values)
        return present if operator == "ne" else not present
    for value in values:
        left, right = _comparable(value), _comparable(literal)
        if left is None:
            continue
        try:
            if {"eq": left == right, "ne": left != right, "gt": left > right,
                    "ge": left >= right, "lt": left < right, "le": left <= right}[operator]:
                return True
        except TypeError:
            continue
    return False


# -- rendering (§3.3, §3.4) -----------------------------------------------------------


def in_window(segment: dict[str, Any], window: tuple[date, date]) -> bool:
    start, end = segment.get("startDate") or date.min, segment.get("endDate") or OPEN_END
    return start <= window[1] and end >= window[0]


def api_order(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Job records as the API lists them without $orderby: by date, but several records
    on one date (KBA 3201077) with the latest seqNumber first. OData v2 promises no order
    without $orderby, and a client that takes the last one listed gets the superseded one."""
    def sequence(job: dict[str, Any]) -> int:
        value = job.get("seqNumber")
        return int(value) if isinstance(value, int) or str(value).isdigit() else 0

    return sorted(jobs, key=lambda s: (s.get("startDate") or date.min, -sequence(s)))


def render(record: dict[str, Any], uri: str, select: list[str] | None, expand: set[str],
           window: tuple[date, date], prefix: str = "",
           entity: str = "PerPerson") -> dict[str, Any]:
    """One entity as JSON: selected properties, expanded navigations inline (collections
    as {"results": [...]}), the rest deferred; effective-dated navigations limited to
    ``window``, which the caller sets to the as-of day (fromDate/toDate choose only the
    top level's records, KBA 2853045)."""
    out: dict[str, Any] = {}
    if not prefix:
        out["__metadata"] = {"uri": uri, "type": f"SFOData.{entity}"}
    for name, value in record.items():
        path = f"{prefix}{name}"
        if name in KNOWN_NAVIGATIONS:
            if path not in expand:
                if select is None or path in select:
                    out[name] = {"__deferred": {"uri": f"{uri}/{name}"}}
                continue
            if select is not None and not any(s == path or s.startswith(path + "/")
                                              for s in select):
                continue
            if isinstance(value, list):
                items = [v for v in value if name not in EFFECTIVE_DATED or in_window(v, window)]
                if name == "jobInfoNav":
                    items = api_order(items)
                out[name] = {"results": [render(v, uri, select, expand, window, path + "/")
                                         for v in items]}
            else:
                out[name] = (render(value, uri, select, expand, window, path + "/")
                             if isinstance(value, dict) else None)
        elif select is None or path in select:
            out[name] = _wire(value)
    return out


def _wire(value: Any) -> Any:
    """Edm.DateTimeOffset as /Date(ms+0000)/, Edm.DateTime as /Date(ms)/ (§3.4)."""
    if isinstance(value, datetime):
        return f"/Date({_millis(value)}+0000)/"
    if isinstance(value, date):
        return f"/Date({_millis(datetime(value.year, value.month, value.day, tzinfo=UTC))})/"
    return value


def _millis(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)
