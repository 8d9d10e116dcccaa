"""SuccessFactors: which entity sets are read, with which $select/$expand, and how their
records are joined back into one person (pure; docs/successfactors.md §3.2, §3.6).

``fromDate``/``toDate`` choose the records of the *top-level* entity only (KBA 2853045):
with PerPerson on top, ``jobInfoNav`` and ``personalInfoNav`` come back as of today, so a
scheduled termination or a future hire would be invisible. So the effective-dated
entities (EmpJob, PerPersonal) are read at the top level with the date range, EmpEmployment
(with its User) at the top level too, and PerPerson for what is not effective-dated
(email, termination info). The join rebuilds the PerPerson shape the rest of the source
reads (``personalInfoNav``, ``employmentNav[].jobInfoNav``), so paths in the config keep
their meaning.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rostersync.sync.connectors.base import FeedError
from rostersync.sync.connectors.odata import results_of
from rostersync.sync.connectors.successfactors_config import NAVIGATIONS, SuccessFactorsSourceConfig
from rostersync.sync.schema_check import MissingColumn, describe

PERSON, PERSONAL, EMPLOYMENT, JOB = "PerPerson", "PerPersonal", "EmpEmployment", "EmpJob"
ENTITIES = (PERSONAL, EMPLOYMENT, JOB, PERSON)  # the order a full pull reads them in
DATED = (PERSONAL, JOB)  # effective-dated: read with fromDate/toDate

# A config path's head -> (entity set, navigation inside it).
HEADS = {"personal": (PERSONAL, ""), "employment": (EMPLOYMENT, ""),
         "user": (EMPLOYMENT, "userNav"), "job": (JOB, ""),
         "email": (PERSON, "emailNav"), "termination": (PERSON, "personEmpTerminationInfoNav")}

# A PerPerson navigation path (as delta_navigations name them) -> the entity set that
# holds it at the top level; the longest match wins.
_NAV_ENTITY = {"employmentNav/jobInfoNav": JOB, "employmentNav": EMPLOYMENT,
               "personalInfoNav": PERSONAL}

# Always read: what joining and choosing the current records needs (§3.6). seqNumber
# orders several job records on one date (KBA 3201077).
BASE_SELECT = {
    PERSON: ["personIdExternal", "lastModifiedDateTime", "emailNav/isPrimary"],
    PERSONAL: ["personIdExternal", "startDate", "endDate"],
    EMPLOYMENT: ["personIdExternal", "userId", "startDate", "endDate", "assignmentClass"],
    JOB: ["userId", "startDate", "endDate", "seqNumber", "emplStatus",
          "emplStatusNav/externalCode"],
}
BASE_EXPAND = {PERSON: ["emailNav"], PERSONAL: [], EMPLOYMENT: [], JOB: ["emplStatusNav"]}


def locate(path: str) -> tuple[str, str]:
    """(entity set, property path inside it) for a config path:
    "job.departmentNav.name_localized" -> ("EmpJob", "departmentNav/name_localized")."""
    head, _, rest = path.partition(".")
    if head in HEADS and rest:
        entity, nav = HEADS[head]
        return entity, "/".join(p for p in (nav, rest.replace(".", "/")) if p)
    return PERSON, path.replace(".", "/")


def nav_entity(nav: str) -> tuple[str, str]:
    """(entity set, navigation inside it) for a PerPerson navigation path:
    "employmentNav/userNav" -> ("EmpEmployment", "userNav")."""
    for prefix in sorted(_NAV_ENTITY, key=len, reverse=True):
        if nav == prefix or nav.startswith(prefix + "/"):
            return _NAV_ENTITY[prefix], nav[len(prefix) + 1:]
    return PERSON, nav


@dataclass
class Query:
    """$select and $expand of one entity set, and which config key named each property."""

    entity: str
    select: list[str]
    expand: list[str]
    named_by: dict[str, tuple[str, str]] = field(default_factory=dict)  # prop -> (key, path)

    def without(self, properties: Iterable[str]) -> Query:
        gone = set(properties)
        return Query(self.entity, [s for s in self.select if s not in gone], self.expand,
                     {k: v for k, v in self.named_by.items() if k not in gone})


def queries(config: SuccessFactorsSourceConfig) -> dict[str, Query]:
    """One Query per entity set, covering every configured path (§3.3)."""
    out = {e: Query(e, list(BASE_SELECT[e]), list(BASE_EXPAND[e])) for e in ENTITIES}
    named = [(f"hris.fields.{name}", path) for name, path in config.paths.items()]
    named += [(f"hris.attributes.{name}", path) for name, path in config.attributes.items()]
    for key, path in ((k, alt) for k, p in named for alt in p.split("|")):
        entity, prop = locate(path)
        query = out[entity]
        query.select.append(prop)
        query.named_by.setdefault(prop, (key, path))
        hops = prop.split("/")[:-1]
        if hops:
            query.expand.append("/".join(hops))
    for query in out.values():
        query.select = list(dict.fromkeys(query.select))
        full: set[str] = set()
        for item in query.expand:  # every ancestor too: "a/b" relies on "a"
            parts = item.split("/")
            full.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
        query.expand = sorted(full)
    return out


def without_refused(query: Query, names: list[str], detail: str,
                    optional: Iterable[str]) -> Query:
    """After a 400 for unknown $select properties (KBA 2545055): the query without them
    when every one is configured and marked optional; else FeedError naming each property
    and the config key that names it (sync.schema_check.describe), so that the feed is
    rejected as for a column gone from an export."""
    named = [query.named_by.get(name) for name in names]
    if names and all(n is not None and n[1] in set(optional) for n in named):
        return query.without(names)
    what = f"SuccessFactors GET /odata/v2/{query.entity}"
    if not names or any(n is None for n in named):
        raise FeedError(f"{what}: HTTP 400 ({detail})")
    missing = [MissingColumn(n[1], n[0]) for n in named if n is not None]
    raise FeedError(f"{what}: " + describe(
        missing, f"the {query.entity} properties of the tenant (HTTP 400: {detail})",
        "property"))


def text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value).strip() or None


class Joined:
    """Records of PerPersonal, EmpEmployment and EmpJob gathered by person, ready to be
    joined onto PerPerson records as they stream past."""

    def __init__(self) -> None:
        self.personal: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.employments: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.jobs: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def add(self, entity: str, row: dict[str, Any]) -> None:
        if entity == PERSONAL:
            key = text(row.get("personIdExternal"))
            if key:
                self.personal[key].append(row)
        elif entity == EMPLOYMENT:
            key = text(row.get("personIdExternal"))
            if key:
                self.employments[key].append(row)
        elif entity == JOB:
            user = text(row.get("userId"))
            if user:
                self.jobs[user].append(row)

    def users_of(self, keys: Iterable[str]) -> list[str]:
        return sorted({u for k in keys for e in self.employments.get(k, [])
                       if (u := text(e.get("userId")))})

    def has_employment(self, key: str) -> bool:
        return bool(self.employments.get(key))

    def join(self, person: dict[str, Any]) -> dict[str, Any]:
        """``person`` with ``personalInfoNav`` and ``employmentNav`` (each employment with
        its ``jobInfoNav``) filled from the top-level reads, in the PerPerson shape."""
        key = text(person.get("personIdExternal")) or ""
        employments = []
        for employment in self.employments.get(key, []):
            user = text(employment.get("userId")) or ""
            employments.append({**employment,
                                "jobInfoNav": {"results": list(self.jobs.get(user, []))}})
        return {**person, "personalInfoNav": {"results": list(self.personal.get(key, []))},
                "employmentNav": {"results": employments}}


def carried(row: Any, prefix: str = "", out: set[str] | None = None) -> set[str]:
    """The property paths ("departmentNav/name_localized") an answer's record carries."""
    out = set() if out is None else out
    if not isinstance(row, dict):
        return out
    for name, value in row.items():
        if name == "__metadata" or (isinstance(value, dict) and "__deferred" in value):
            continue
        if isinstance(value, dict):
            items = value.get("results") if "results" in value else [value]
            for item in items if isinstance(items, list) else []:
                carried(item, f"{prefix}{name}/", out)
        else:
            out.add(prefix + name)
    return out


def configured_paths(config: SuccessFactorsSourceConfig) -> list[tuple[str, str]]:
    """(config key, path) for every alternative of every configured path."""
    named = [(f"hris.fields.{name}", path) for name, path in config.paths.items()]
    named += [(f"hris.attributes.{name}", path) for name, path in config.attributes.items()]
    return [(key, alt) for key, path in named for alt in path.split("|")]


class Seen:
    """Which configured paths the joined records carried, as config paths
    ("job.departmentNav.name_localized"), and which navigations held any object."""

    def __init__(self) -> None:
        self.present: set[str] = set()
        # "" is PerPerson itself, reached only once one was returned: an export of nobody
        # says nothing about which properties it carries.
        self._reached: set[str] = set()

    def add(self, row: Any) -> None:
        if isinstance(row, dict):
            self._reached.add("")
            self._walk(row, "", [""])

    def _walk(self, obj: dict[str, Any], nav: str, prefixes: list[str]) -> None:
        for name, value in obj.items():
            if name == "__metadata" or (isinstance(value, dict) and "__deferred" in value):
                continue
            child = f"{nav}/{name}" if nav else name
            items = results_of(value) if isinstance(value, dict) and "results" in value \
                else ([value] if isinstance(value, dict) else None)
            if items is None:
                self.present.update(f"{p}{name}" for p in prefixes)
                continue
            inner = [f"{p}{name}." for p in prefixes] + [
                f"{head}." for head, full in NAVIGATIONS.items() if full == child]
            for item in items or []:
                if isinstance(item, dict):
                    self._reached.update(i.rstrip(".") for i in inner)
                    self._walk(item, child, inner)

    def knows(self, path: str) -> bool:
        """Whether an object that would carry ``path`` was returned at all."""
        return path.rpartition(".")[0] in self._reached
