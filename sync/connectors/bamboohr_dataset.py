"""BambooHR Datasets v2 as a way to read current values (pure; docs/bamboohr.md §1.2 E).

The custom report is deprecated in favour of "Datasets > Get Data from Dataset"
(https://documentation.bamboohr.com/reference/request-custom-report). The wire format,
as BambooHR's generated client documents it (BambooHR/bhr-api-php,
docs/Api/DatasetsApi.md): ``POST {base}/v2/datasets/{name}/data`` with
``{"fields", "filter", "page", "pageSize"}`` answers ``{"data": [{"fields": {...}}],
"links", "meta": {"page", "pageSize", "totalPages", "totalItems"}}``, at most 1000 rows
a page; ``GET {base}/v1_2/datasets/{name}/fields`` lists the dataset's field names.

The employee dataset names fields differently from the employee endpoints
(``jobInformationDepartment`` for ``department``): DEFAULT_NAMES maps the field ids the
rest of the connector speaks to dataset names. jobInformation* and employmentStatus are
documented; the others are [inferred] and overridable with ``hris.dataset_fields``.
"""

from __future__ import annotations

from typing import Any

from rostersync.sync.schema_check import MissingColumn

DEFAULT_NAMES: dict[str, str] = {
    "id": "employeeId", "employeeNumber": "employeeNumber", "firstName": "firstName",
    "lastName": "lastName", "preferredName": "preferredName", "workEmail": "workEmail",
    "department": "jobInformationDepartment", "division": "jobInformationDivision",
    "jobTitle": "jobInformationJobTitle", "location": "jobInformationLocation",
    "supervisorEId": "supervisorEId", "supervisorId": "supervisorId",
    "employmentHistoryStatus": "employmentStatus", "status": "status",
    "hireDate": "hireDate", "terminationDate": "terminationDate", "timeZone": "timeZone",
    "lastChanged": "lastChanged",
}
# Future hires are "Inactive" in datasets; the docs say to include Inactive in the
# status filter to get them, so a full read names both statuses explicitly.
EVERYONE = "status in ('Active','Inactive')"
IDS_PER_FILTER = 50  # ids joined with "or" in one delta filter (a multi-value `in` is 422)


def dataset_names(fields: list[str], overrides: dict[str, str]) -> dict[str, str]:
    """Field id -> dataset field name for every requested field."""
    names = {**DEFAULT_NAMES, **overrides}
    return {f: names.get(f, f) for f in fields}


def missing_in_catalog(configured: list[tuple[str, str]], names: dict[str, str],
                       catalog: set[str], optional: list[str]) -> list[MissingColumn]:
    """Configured fields whose dataset name the dataset does not list, named as the
    dataset spells them and by the config key that asks for them."""
    out: list[MissingColumn] = []
    seen: set[str] = set()
    for key, field in configured:
        name = names.get(field, field)
        if field in optional or name in catalog or name in seen:
            continue
        seen.add(name)
        where = f"{key}, dataset name from hris.dataset_fields or the default"
        out.append(MissingColumn(name, where))
    return out


def catalog_page(answer: Any) -> tuple[set[str], bool] | None:
    """(field names on this page of the catalog, whether more pages follow); None when
    the answer is not the documented shape."""
    if not isinstance(answer, dict) or not isinstance(answer.get("fields"), list):
        return None
    names = {str(f["name"]) for f in answer["fields"] if isinstance(f, dict) and f.get("name")}
    paging = found if isinstance(found := answer.get("pagination"), dict) else {}
    current, total = paging.get("current_page"), paging.get("total_pages")
    more = isinstance(current, int) and isinstance(total, int) and current < total
    return names, more


def data_request(names: dict[str, str], filter_: str, page: int, size: int) -> dict[str, Any]:
    return {"fields": list(dict.fromkeys(names.values())), "filter": filter_,
            "page": page, "pageSize": size}


def ids_filters(ids: list[str], id_name: str) -> list[str]:
    """Filters naming these employees, ``or``-joined in chunks (documented: one filter
    may use ``or`` but not mix it with ``and``; a multi-value ``in`` is only for
    options-type fields)."""
    out = []
    for start in range(0, len(ids), IDS_PER_FILTER):
        chunk = ids[start:start + IDS_PER_FILTER]
        out.append(" or ".join(f"{id_name} eq '{_quoted(i)}'" for i in chunk))
    return out


def data_page(answer: Any, names: dict[str, str]) -> tuple[list[dict[str, Any]], bool] | None:
    """(employees keyed by field id, whether more pages follow); None when the answer is
    not the documented shape."""
    if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
        return None
    back = {name: field for field, name in names.items()}
    employees = []
    for row in answer["data"]:
        values = row.get("fields") if isinstance(row, dict) else None
        if not isinstance(values, dict):
            return None
        employees.append({back[k]: _plain(v) for k, v in values.items() if k in back})
    meta = found if isinstance(found := answer.get("meta"), dict) else {}
    page, total = meta.get("page"), meta.get("totalPages")
    more = isinstance(page, int) and isinstance(total, int) and page < total
    return employees, more


def _plain(value: Any) -> Any:
    # Ids may come as numbers in datasets; the rest of the connector speaks strings.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else value


def _quoted(value: str) -> str:
    return value.replace("'", "''")
