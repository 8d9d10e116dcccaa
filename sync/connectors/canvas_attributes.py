"""Canvas fields [mapping.attributes] may name beyond the built-in attributes (pure).

docs/canvas.md §7.5 cites Canvas's source for each: where the field lives (the user or its
login), how it is written and where Canvas answers it. The Canvas fields the built-in
attributes already write are refused under their Canvas names, with the attribute to
map instead: one value must not have two expressions.
"""

from __future__ import annotations

from typing import Any

# user[...] on create (POST /accounts/:id/users) and on PUT /users/:id.
USER_ATTRIBUTES = ("time_zone", "locale")
# pseudonym[...] on create, login[...] on PUT /accounts/:id/logins/:id.
LOGIN_ATTRIBUTES = ("authentication_provider_id", "integration_id")
ATTRIBUTES = USER_ATTRIBUTES + LOGIN_ATTRIBUTES

# Canvas fields written by something else, and what to map instead.
_OWNED = {
    "name": "given_name and family_name (name is \"Given Family\")",
    "sortable_name": "given_name and family_name (sortable_name is \"Family, Given\")",
    "short_name": "display_name",
    "unique_id": "mapping.user_name (the login id)",
    "login_id": "mapping.user_name (the login id)",
    "sis_user_id": "external_key, the employee id (not mappable)",
    "workflow_state": "the person's HR status (not mappable)",
    "communication_channel": "email",
}

# Canvas cannot hold "no value" for these: an unset time zone reads as the account's
# default (user_json: user.time_zone || the root account's default_time_zone), and a
# login's provider cannot be cleared (an empty authentication_provider_id is looked up and
# answered 404, PseudonymsController#find_authentication_provider).
NOT_CLEARABLE = {
    "time_zone": "an unset time zone reads as the account's default time zone",
    "authentication_provider_id": "Canvas looks an empty provider up and answers 404",
}


def allowed(employee_number_field: str) -> tuple[str, ...]:
    """The Canvas attributes a mapping may name under this [lms] section."""
    if employee_number_field == "integration_id":
        return tuple(a for a in ATTRIBUTES if a != "integration_id")
    return ATTRIBUTES


def check_canvas_attributes(names: tuple[str, ...] | list[str], *, employee_number_field: str,
                            authentication_provider_id: str | None) -> None:
    """Raises ValueError, naming the key, for a name a Canvas target cannot take."""
    takes = allowed(employee_number_field)
    for name in names:
        key = f"key 'mapping.attributes.{name}'"
        if name in _OWNED:
            raise ValueError(f"{key}: that Canvas field is written by {_OWNED[name]}; map "
                             "that instead (docs/canvas.md)")
        if name == "integration_id" and name not in takes:
            raise ValueError(f"{key}: the login's integration_id holds employee_number "
                             "(lms.employee_number_field = \"integration_id\"); map "
                             "employee_number, or set lms.employee_number_field = \"none\"")
        if name == "authentication_provider_id" and authentication_provider_id:
            raise ValueError(f"{key}: lms.authentication_provider_id already sets the "
                             "provider of new logins; keep one of the two")
        if name not in takes:
            raise ValueError(f"{key}: a Canvas target has no attribute of that name; beyond "
                             "the built-in attributes it takes " + ", ".join(takes)
                             + " (docs/canvas.md)")


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value).removesuffix(".0")
    return value if isinstance(value, str) and value != "" else None


def read_attributes(user: dict[str, Any], login: dict[str, Any] | None,
                    names: tuple[str, ...]) -> dict[str, Any]:
    """The mapped attributes' values in a user object and its managed login (None when
    absent). Canvas answers a provider id as a number; it is kept as text."""
    login = login or {}
    return {n: _text((user if n in USER_ATTRIBUTES else login).get(n)) for n in names}


def as_param(value: Any) -> str:
    """An expression's result as a form value (a date as YYYY-MM-DD)."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return _text(value) or ""


def creation_attributes(attributes: dict[str, Any]) -> dict[str, str]:
    """The POST /accounts/:id/users form entries for mapped attributes; empty values are
    left out (Canvas's own defaults stand)."""
    form: dict[str, str] = {}
    for name, value in attributes.items():
        text = as_param(value)
        if not text or name not in ATTRIBUTES:
            continue
        prefix = "user" if name in USER_ATTRIBUTES else "pseudonym"
        form[f"{prefix}[{name}]"] = text
    return form


def same_attribute(wanted: Any, got: Any) -> bool:
    """Does a mapped attribute read back as written? Compared as text, empty as missing."""
    return (as_param(wanted) or None) == _text(got)
