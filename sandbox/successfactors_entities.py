"""The SuccessFactors sandbox's entity sets besides PerPerson: PerPersonal, EmpEmployment
and EmpJob read at the top level (docs/successfactors.md §3.2, §3.6).

The tenant keeps each person as one nested PerPerson dict (sandbox.successfactors_data);
these functions list the records of one entity set out of it, the way the API serves
them as top-level entities, and say which properties an entity set has (for the 400
answer to an unknown ``$select`` property).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from rostersync.sandbox.successfactors_data import api_order, in_window, person, stamp_all

SERVICE_PATH = "/odata/v2/"
_DEFAULT_PORTS = {"http": 80, "https": 443}
ENTITIES = ("PerPerson", "PerPersonal", "EmpEmployment", "EmpJob")
# Effective-dated: fromDate/toDate (or asOfDate) choose which of their records are listed
# when they are the top level (KBA 2853045). EmpEmployment is not effective-dated (§3.6).
EFFECTIVE_DATED_ENTITIES = ("PerPersonal", "EmpJob")
# Where each entity sits inside a PerPerson, as a path prefix: drop_property() names
# properties by their PerPerson path, and the same property read at the top level of
# its own entity is dropped as well.
PREFIX = {"PerPerson": "", "PerPersonal": "personalInfoNav/", "EmpEmployment": "employmentNav/",
          "EmpJob": "employmentNav/jobInfoNav/"}
KEY = {"PerPerson": ("personIdExternal",), "PerPersonal": ("personIdExternal", "startDate"),
       "EmpEmployment": ("personIdExternal", "userId"), "EmpJob": ("seqNumber", "startDate",
                                                                    "userId")}


def rows_of(people: list[dict[str, Any]], entity: str) -> list[dict[str, Any]]:
    """The records of ``entity`` in the tenant, in the order the API lists them."""
    if entity == "PerPerson":
        return people
    out: list[dict[str, Any]] = []
    for record in people:
        pid = record["personIdExternal"]
        if entity == "PerPersonal":
            out += [{**segment, "personIdExternal": pid}
                    for segment in record.get("personalInfoNav") or []]
            continue
        for employment in record.get("employmentNav") or []:
            if entity == "EmpEmployment":
                out.append({**employment, "personIdExternal": pid})
            else:
                out += api_order(employment.get("jobInfoNav") or [])
    return out


def dated(rows: list[dict[str, Any]], entity: str,
          window: tuple[date, date]) -> list[dict[str, Any]]:
    """The records of an effective-dated entity set that overlap ``window`` (KBA 2853045:
    the date parameters filter the top level); others are returned whole."""
    if entity not in EFFECTIVE_DATED_ENTITIES:
        return rows
    return [row for row in rows if in_window(row, window)]


def _paths(value: Any, prefix: str, out: set[str]) -> None:
    if isinstance(value, list):
        for item in value:
            _paths(item, prefix, out)
    elif isinstance(value, dict):
        for name, inner in value.items():
            out.add(prefix + name)
            _paths(inner, f"{prefix}{name}/", out)


def known_properties(people: list[dict[str, Any]], entity: str) -> set[str]:
    """Every property path ("departmentNav/name_localized") the entity set has: those of a
    template worker plus any a stored record carries (custom fields added by a test)."""
    template = person("0", "Template", "Worker")
    stamp_all(template, datetime(2000, 1, 1, tzinfo=UTC))
    out: set[str] = set()
    for row in rows_of([template, *people], entity):
        _paths(row, "", out)
    return out


def request_origin(scope: dict[str, Any], headers: dict[str, str]) -> str:
    """The origin the client addressed (its Host header), written with an explicit port
    even when the client left the default one out: SAP's ``__next`` links read
    ``https://host:443/odata/v2/…`` (KBA 2489065), and a client has to accept them."""
    scheme = scope.get("scheme", "http")
    host, port = scope["server"]
    name, _, given = headers.get("host", "").rpartition(":") if ":" in headers.get(
        "host", "") else (headers.get("host", ""), "", "")
    if name:
        host = name
        port = int(given) if given.isdigit() else _DEFAULT_PORTS.get(scheme, port)
    return f"{scheme}://{host}:{port}"


def entity_uri(origin: str, entity: str, row: dict[str, Any]) -> str:
    keys = ",".join(f"{k}='{quote(str(row.get(k)))}'" for k in KEY[entity] if k in row)
    return f"{origin}{SERVICE_PATH}{entity}({keys})"
