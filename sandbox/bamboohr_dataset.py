"""The BambooHR sandbox's Datasets API: the documented successor of the custom report.

The custom report is "deprecated in favour of Datasets > Get Data from Dataset"
(https://documentation.bamboohr.com/reference/request-custom-report). Served here, as
BambooHR's OpenAPI-generated client documents them (BambooHR/bhr-api-php,
docs/Api/DatasetsApi.md and docs/Model/*.md):

    GET  /v1_2/datasets/{name}/fields   {"name", "label", "fields": [{"name", "label",
                                         "parentType", "parentName", "entityName"}],
                                         "pagination": {"total_records", "current_page",
                                         "total_pages", "next_page", "prev_page"}}
    POST /v2/datasets/{name}/data       body {"fields", "filter", "orderBy", "page",
                                         "pageSize"}; answer {"data": [{"fields": {...}}],
                                         "links": {"next", "prev"}, "meta": {"page",
                                         "pageSize", "totalPages", "totalItems"}}

Documented and simulated: ``pageSize`` defaults to 100, at most 1000; the ``employee``
dataset names fields with section prefixes (``jobInformationDepartment``,
``jobInformationJobTitle``, ``employmentStatus``); filters are OData-like (``eq``,
``ne``, ``in (...)``, ``and``/``or`` but not both in one expression: 422
INVALID_FILTER); errors are RFC 7807 problem documents; an unknown dataset is 404.

[inferred], kept configurable in the connector: the names of the other fields (see
DATASET_FIELDS), that a requested field the dataset does not know is refused with 400
(the docs say inaccessible fields give an error rather than silent omission), that
rows without a filter include Inactive people (future hires are Inactive; the docs
say to include Inactive "in your status filter"), and that values are current ones.
"""

from __future__ import annotations

import json
import re
from typing import Any

DATASET = "employee"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100

# Dataset field name -> the employee field id it shows. jobInformation* and
# employmentStatus are documented; the rest are [inferred].
DATASET_FIELDS: dict[str, str] = {
    "employeeId": "id", "employeeNumber": "employeeNumber", "firstName": "firstName",
    "lastName": "lastName", "preferredName": "preferredName", "workEmail": "workEmail",
    "jobInformationDepartment": "department", "jobInformationDivision": "division",
    "jobInformationJobTitle": "jobTitle", "jobInformationLocation": "location",
    "supervisorEId": "supervisorEId", "supervisorId": "supervisorId",
    "employmentStatus": "employmentHistoryStatus", "status": "status",
    "hireDate": "hireDate", "terminationDate": "terminationDate", "timeZone": "timeZone",
    "lastChanged": "lastChanged",
}
_CLAUSE = re.compile(r"\s*(\w+)\s+(eq|ne|in)\s+(.+?)\s*")


def _problem(status: int, title: str, detail: str, code: str | None = None
             ) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                            "detail": detail}
    if code:
        body["code"] = code
    return status, body


def dataset_fields(name: str, known: set[str]) -> tuple[int, dict[str, Any]]:
    if name != DATASET:
        return _problem(404, "Not Found", f"Dataset {name!r} is not accessible")
    fields = [{"name": n, "label": n, "parentType": "page", "parentName": "Personal",
               "entityName": "employee"} for n, f in DATASET_FIELDS.items() if f in known]
    return 200, {"name": DATASET, "label": "Employee", "fields": fields,
                 "pagination": {"total_records": len(fields), "current_page": 1,
                                "total_pages": 1, "next_page": None, "prev_page": None}}


def dataset_data(name: str, body: bytes, people: list[dict[str, Any]],
                 known: set[str]) -> tuple[int, dict[str, Any]]:
    """One page of the dataset; ``people`` hold their current values already."""
    if name != DATASET:
        return _problem(404, "Not Found", f"Dataset {name!r} is not accessible")
    try:
        request = json.loads(body)
    except ValueError:
        return _problem(400, "Bad Request", "The body is not JSON")
    fields = request.get("fields") if isinstance(request, dict) else None
    if not isinstance(fields, list) or not fields:
        return _problem(400, "Bad Request", "fields must be a non-empty list")
    catalog = {n: f for n, f in DATASET_FIELDS.items() if f in known}
    unknown = [f for f in fields if f not in catalog]
    if unknown:
        return _problem(400, "Bad Request", f"Unknown field(s): {', '.join(unknown)}")
    page, size = request.get("page", 1), request.get("pageSize", DEFAULT_PAGE_SIZE)
    if not (isinstance(page, int) and page >= 1 and isinstance(size, int)
            and 1 <= size <= MAX_PAGE_SIZE):
        return _problem(400, "Bad Request", f"page must be >= 1 and pageSize 1..{MAX_PAGE_SIZE}")
    try:
        keep = _filter(request.get("filter"), catalog)
    except ValueError as exc:
        return _problem(422, "Unprocessable Entity", str(exc), "INVALID_FILTER")
    # No orderBy: "the row order is unspecified"; newest ids first, so that a client
    # relying on any order is caught.
    rows = sorted((p for p in people if keep(p)), key=lambda p: (len(p["id"]), p["id"]),
                  reverse=True)
    total = len(rows)
    pages = max(1, -(-total // size))
    chunk = rows[(page - 1) * size: page * size]
    links: dict[str, str] = {}
    if page < pages:
        links["next"] = f"/api/v2/datasets/{name}/data?page={page + 1}"
    if page > 1:
        links["prev"] = f"/api/v2/datasets/{name}/data?page={page - 1}"
    return 200, {
        "data": [{"fields": {f: _value(p.get(catalog[f])) for f in fields}} for p in chunk],
        "links": links,
        "meta": {"page": page, "pageSize": size, "totalPages": pages, "totalItems": total},
    }


def _value(value: Any) -> Any:
    return None if value == "0000-00-00" else value


def _filter(expression: Any, catalog: dict[str, str]):
    if not expression:
        return lambda person: True
    if not isinstance(expression, str):
        raise ValueError("filter must be a string")
    has_and, has_or = " and " in expression, " or " in expression
    if has_and and has_or:
        raise ValueError("A filter may use 'and' or 'or', not both")
    parts = expression.split(" and " if has_and else " or ")
    tests = [_clause(part, catalog) for part in parts]
    if has_or:
        return lambda person: any(t(person) for t in tests)
    return lambda person: all(t(person) for t in tests)


def _clause(text: str, catalog: dict[str, str]):
    match = _CLAUSE.fullmatch(text)
    if match is None:
        raise ValueError(f"Cannot parse filter clause {text.strip()!r}")
    name, op, raw = match.groups()
    if name not in catalog:
        raise ValueError(f"Unknown filter field {name!r}")
    field = catalog[name]
    if op == "in":
        inner = re.fullmatch(r"\((.*)\)", raw)
        if inner is None:
            raise ValueError(f"'in' needs a parenthesised list: {raw!r}")
        values = {_literal(v) for v in inner.group(1).split(",")}
        if len(values) > 1 and name != "status" and name != "employmentStatus":
            # multi-value `in` is for options-type fields only (documented 422)
            raise ValueError(f"multi-value 'in' is not allowed on {name!r}")
        return lambda person: str(person.get(field)) in values
    value = _literal(raw)
    if op == "eq":
        return lambda person: str(person.get(field)) == value
    return lambda person: str(person.get(field)) != value


def _literal(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1].replace("''", "'")
    return raw
