"""Account <-> SCIM 2.0 User JSON (RFC 7643 §4.1 core User + §4.3 enterprise extension).

Request bodies are built with scim2-models so that what goes on the wire is what the
RFC's schemas say, except the email value (see ``_work_email``). Responses are read as
plain JSON (see ``account_from_resource`` for why).
"""

from __future__ import annotations

from typing import Any

from scim2_models import (
    Context,
    EnterpriseUser,
    Manager,
    Name,
    PatchOp,
    PatchOperation,
    ScimPolicy,
    User,
)

from rostersync.sync.models import Account

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ScimUser = User[EnterpriseUser]

# For the few responses read with scim2-models (Error, ServiceProviderConfig): real
# LMSs add their own attributes, and the default policy forbids anything undeclared.
TOLERANT = ScimPolicy(unknown=ScimPolicy.Unknown.ignore)

# Account field (plus external_key, used to link) -> SCIM PATCH path.
PATCH_PATHS = {
    "active": "active",
    "user_name": "userName",
    "given_name": "name.givenName",
    "family_name": "name.familyName",
    "display_name": "displayName",
    "email": "emails",
    "title": "title",
    "department": f"{ENTERPRISE}:department",
    "employee_number": f"{ENTERPRISE}:employeeNumber",
    "manager_key": f"{ENTERPRISE}:manager",
    "external_key": "externalId",
}


def _work_email(email: str) -> list[dict[str, Any]]:
    # Plain JSON, not scim2_models.Email: its value is a pydantic EmailStr, which
    # refuses addresses LMSs accept (``x@localhost``, quoted local parts) and rewrites
    # the domain to lower case, so the stored email would never equal HR's.
    return [{"value": email, "type": "work", "primary": True}]


def creation_body(account: Account, manager_lms_id: str | None) -> dict[str, Any]:
    """The POST /Users body for an account; empty values are left out.

    Built as plain JSON: creating 5,000 accounts a minute, scim2-models' validation and
    serialisation (~0.1 ms a body) were a fifth of the client's work. The test suite
    holds it equal to ``creation_body_reference`` (built with scim2-models) over many
    accounts, so the two cannot drift apart.
    """
    body: dict[str, Any] = {"schemas": [CORE]}
    if account.external_key:
        body["externalId"] = account.external_key
    body["userName"] = account.user_name
    name = {k: v for k, v in (("familyName", account.family_name),
                              ("givenName", account.given_name)) if v}
    if name:
        body["name"] = name
    if account.display_name:
        body["displayName"] = account.display_name
    if account.title:
        body["title"] = account.title
    body["active"] = account.active
    enterprise: dict[str, Any] = {k: v for k, v in (("employeeNumber", account.employee_number),
                                    ("department", account.department)) if v}
    if manager_lms_id:
        enterprise["manager"] = {"value": manager_lms_id}
    if enterprise:
        body["schemas"] = [CORE, ENTERPRISE]
        body[ENTERPRISE] = enterprise
    if account.email:
        body["emails"] = _work_email(account.email)
    if account.attributes:
        _put_attributes(body, account.attributes)
    return body


def attribute_place(name: str) -> tuple[str | None, list[str]]:
    """Where a mapped target attribute lives in a User resource: its extension schema
    (None for the core schema) and its path inside it. "urn:acme:params:User:country"
    is ("urn:acme:params:User", ["country"]); "name.middleName" is (None, ["name",
    "middleName"]) (RFC 7644 §3.10: an extension attribute is named by its schema URN,
    a colon and its name)."""
    if name.startswith("urn:"):
        schema, _, attribute = name.rpartition(":")
        return schema, attribute.split(".")
    return None, name.split(".")


def _put_attributes(body: dict[str, Any], attributes: dict[str, Any]) -> None:
    for name, value in attributes.items():
        if value is None or value == "":
            continue
        schema, path = attribute_place(name)
        node = body
        if schema is not None:
            node = body.setdefault(schema, {})
            if schema not in body["schemas"]:
                body["schemas"] = [*body["schemas"], schema]
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value


def read_attributes(resource: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The mapped target attributes' values in a User resource (None when absent)."""
    out: dict[str, Any] = {}
    for name in names:
        schema, path = attribute_place(name)
        node: Any = _dict(resource.get(schema)) if schema is not None else resource
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        out[name] = node if isinstance(node, str | int | float | bool) and node != "" \
            else None
    return out


def creation_body_reference(account: Account, manager_lms_id: str | None) -> dict[str, Any]:
    """The same body built with scim2-models: the RFC's schema, for the tests."""
    user = ScimUser(
        external_id=account.external_key or None,
        user_name=account.user_name,
        name=Name(given_name=account.given_name or None,
                  family_name=account.family_name or None)
        if (account.given_name or account.family_name) else None,
        display_name=account.display_name or None,
        title=account.title or None,
        active=account.active,
    )
    if account.department or account.employee_number or manager_lms_id:
        user[EnterpriseUser] = EnterpriseUser(
            department=account.department or None,
            employee_number=account.employee_number or None,
            manager=Manager(value=manager_lms_id) if manager_lms_id else None,
        )
    body = user.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    if account.email:
        body["emails"] = _work_email(account.email)
    return body


def patch_body(changes: dict[str, Any], manager_lms_id: str | None) -> dict[str, Any]:
    """One PatchOp with a ``replace`` per changed field; None or "" becomes ``remove``.

    ``manager_key`` in changes means "set the manager to manager_lms_id": the engine
    translates employee ids to LMS ids, this module only ever sees LMS ids.
    """
    operations = []
    mapped: list[dict[str, Any]] = []  # target attributes, named by their own SCIM path
    for field, value in changes.items():
        path = PATCH_PATHS.get(field)
        if path is None and field not in Account.__slots__:
            # Built as plain JSON: scim2-models checks a path against the schemas it
            # knows, and a custom extension is not one of them.
            mapped.append({"op": "remove", "path": field} if value is None or value == ""
                          else {"op": "replace", "path": field, "value": value})
            continue
        if path is None:
            raise ValueError(f"SCIM cannot update unknown account field {field!r}")
        if field == "manager_key":
            value = {"value": manager_lms_id} if manager_lms_id else None
        elif field == "active":
            if not isinstance(value, bool):
                raise ValueError(f"active must be true or false, not {value!r}")
        elif field == "email" and value:
            value = _work_email(value)
        if value is None or value == "":
            operations.append(PatchOperation[ScimUser](op="remove", path=path))
        else:
            operations.append(PatchOperation[ScimUser](op="replace", path=path, value=value))
    if not operations:
        return {"schemas": [PATCH_OP], "Operations": mapped}
    body = PatchOp[ScimUser](operations=operations).model_dump(
        scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    if mapped:
        body["Operations"] = [*body["Operations"], *mapped]
    return body


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _emails(resource: dict[str, Any]) -> list[dict[str, Any]]:
    emails = resource.get("emails")
    if not isinstance(emails, list):
        return []
    return [e for e in emails if isinstance(e, dict) and _str(e.get("value"))]


def _pick_email(resource: dict[str, Any]) -> str | None:
    """The primary email, else the work one, else the first (RFC 7643 §4.1.2)."""
    emails = _emails(resource)
    for chosen in ([e for e in emails if e.get("primary") is True],
                   [e for e in emails if str(e.get("type", "")).lower() == "work"],
                   emails):
        if chosen:
            return chosen[0]["value"]
    return None


def account_from_resource(resource: dict[str, Any], etag: str | None = None,
                          attributes: tuple[str, ...] = ()) -> Account:
    """Map a SCIM User JSON object to an Account.

    Plain dict access, not scim2-models, for three reasons: validating a 1000-user
    ListResponse with scim2-models costs ~165 ms against ~4 ms for json.loads (a full
    reconcile lists every account); its EmailStr refuses or rewrites emails the LMS
    holds, so one odd address would make an account unreadable; and its default
    policy rejects vendor extensions. Hence the defensive type checks below.
    """
    name = _dict(resource.get("name"))
    enterprise = _dict(resource.get(ENTERPRISE))
    manager = _dict(enterprise.get("manager"))
    active = resource.get("active")
    return Account(
        external_key=_str(resource.get("externalId")),
        user_name=_str(resource.get("userName")) or "",
        given_name=_str(name.get("givenName")) or "",
        family_name=_str(name.get("familyName")) or "",
        display_name=_str(resource.get("displayName")) or "",
        email=_pick_email(resource),
        title=_str(resource.get("title")),
        department=_str(enterprise.get("department")),
        employee_number=_str(enterprise.get("employeeNumber")),
        manager_key=None,  # the engine translates extra["manager_lms_id"]
        # An absent `active` means the LMS does not track it; such accounts can log in.
        active=active if isinstance(active, bool) else True,
        lms_id=_str(resource.get("id")),
        version=_str(_dict(resource.get("meta")).get("version")) or etag,
        extra={"manager_lms_id": _str(manager.get("value"))},
        attributes=read_attributes(resource, attributes) if attributes else {},
    )


def resource_matches(resource: dict[str, Any], attribute: str, wanted: str) -> bool:
    """Does a search hit really carry the value searched for?

    Servers differ in filter support (some ignore unknown filters and return
    everyone, some match case-insensitively where the RFC says caseExact), so every
    hit is checked: externalId exactly (caseExact in RFC 7643), userName and email
    case-insensitively.
    """
    if attribute == "externalId":
        return resource.get("externalId") == wanted
    if attribute == "userName":
        user_name = resource.get("userName")
        return isinstance(user_name, str) and user_name.casefold() == wanted.casefold()
    if attribute == "emails.value":
        return any(e["value"].casefold() == wanted.casefold() for e in _emails(resource))
    raise ValueError(f"no match rule for attribute {attribute!r}")

