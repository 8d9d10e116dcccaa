"""Canvas wire format, pure: Link headers, error bodies, and Account <-> user/login JSON.

Section numbers are those of docs/canvas.md. Nothing here does IO; sync.connectors.canvas
moves the bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.canvas_attributes import (
    NOT_CLEARABLE,
    creation_attributes,
    read_attributes,
)
from rostersync.sync.connectors.wire_types import is_text_id, unfit_sentence, unfit_text
from rostersync.sync.models import Account, ErrorClass

# -- paging (§7.1) ---------------------------------------------------------------------

# One link-value of RFC 8288: <uri> followed by ;-separated parameters. The URI may hold
# commas (Canvas page bookmarks can), so links are found by their brackets, not by
# splitting the header on commas; a link's parameters run to the next "<".
_LINK = re.compile(r"<([^>]*)>([^<]*)")
_PARAM = re.compile(r";\s*([^=;,\s]+)\s*(?:=\s*(\"[^\"]*\"|[^;,]*))?")


def parse_link_header(value: str | None) -> dict[str, str]:
    """rel -> URL for every link in a Link header (rel names lower-cased).

    A link may carry several space-separated rels; the first link wins for a repeated rel.
    """
    links: dict[str, str] = {}
    for match in _LINK.finditer(value or ""):
        url, params = match.group(1).strip(), match.group(2)
        for name, raw in _PARAM.findall(params):
            if name.lower() != "rel":
                continue
            for rel in raw.strip().strip('"').lower().split():
                links.setdefault(rel, url)
    return links


# -- errors (§7.1, §7.2) ---------------------------------------------------------------


@dataclass(frozen=True)
class ErrorDetail:
    where: str  # e.g. "pseudonym.unique_id"; "" for a top-level message
    type: str | None  # e.g. "taken", "blank"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


def error_details(body: Any) -> list[ErrorDetail]:
    """Every message in a Canvas error body, flat.

    Canvas sends ``{"errors": [{"message": ...}]}`` for most failures and a tree keyed by
    object and attribute for validation errors (``{"errors": {"pseudonym": {"unique_id":
    [{"attribute", "type", "message"}]}}}``); some answers have a top-level ``message``.
    """
    if not isinstance(body, dict):
        return []
    out: list[ErrorDetail] = []

    def walk(node: Any, path: list[str]) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, path)
        elif isinstance(node, dict):
            message = node.get("message")
            if isinstance(message, str):
                kind = node.get("type")
                out.append(ErrorDetail(".".join(path), kind if isinstance(kind, str) else None,
                                       message))
                return
            for key, child in node.items():
                walk(child, [*path, str(key)])
        elif isinstance(node, str) and node:
            out.append(ErrorDetail(".".join(path), None, node))

    walk(body.get("errors"), [])
    if not out and isinstance(body.get("message"), str):
        out.append(ErrorDetail("", None, body["message"]))
    return out


def is_throttled(status: int, text: str, rate_limit_text: str) -> bool:
    """A throttled call: 403 with "Rate Limit Exceeded" in the body (§7.1). A genuine
    permission 403 does not say it."""
    return status == 403 and rate_limit_text.casefold() in text.casefold()


# Words in a validation message that mean "another record holds this value".
_TAKEN = ("already in use", "already taken", "has already been taken")


def classify(status: int, details: list[ErrorDetail], throttled: bool) -> ErrorClass:
    if throttled or status == 429 or status >= 500:
        return ErrorClass.transient
    if status in (401, 403):
        return ErrorClass.auth
    if status == 404:
        return ErrorClass.not_found
    if status == 409 or any(d.type == "taken" or any(w in d.message.casefold() for w in _TAKEN)
                            for d in details):
        return ErrorClass.conflict
    # 400 and 422 carry values Canvas refuses (blank, too long, invalid): HR data.
    return ErrorClass.data


# -- names (§7.2) ----------------------------------------------------------------------


def name_params(given: str, family: str, display: str) -> dict[str, str]:
    """user[name], user[short_name] and user[sortable_name] for an account's names.

    ``name`` is the full name, ``short_name`` the display name and ``sortable_name``
    "Family, Given", which is what lets the two parts be read back apart.
    """
    full = f"{given} {family}".strip()
    sortable = f"{family}, {given}" if family and given else (family or given)
    return {"name": full, "short_name": display or full, "sortable_name": sortable}


def split_names(name: str, sortable: str) -> tuple[str, str]:
    """(given, family) from a user's name and sortable_name.

    Either part may itself hold ", " ("Smith, Jr."), so every split of sortable_name is
    tried and the one that rebuilds ``name`` wins; failing that, the last comma splits.
    """
    if ", " not in sortable:
        return (sortable, "") if sortable == name or not sortable else ("", sortable)
    parts = sortable.split(", ")
    for cut in range(1, len(parts)):
        family, given = ", ".join(parts[:cut]), ", ".join(parts[cut:])
        if f"{given} {family}" == name:
            return given, family
    family, _, given = sortable.rpartition(", ")
    return given, family


# -- accounts (§7.2) -------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value != "" else None


def canvas_id(value: Any) -> str | None:
    """A Canvas id as a string (they arrive as JSON numbers, or strings); None for an
    object, a list or a boolean, whose text would name no user."""
    if isinstance(value, dict | list | bool):
        return None
    text = _text(value)
    return text.removesuffix(".0") if text else None


def managed_login(user: dict[str, Any], logins: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The login rostersync manages: the one holding the user's SIS id, else the one
    named by the user's login_id, else the first. A user may have several (SSO and a
    local login, say); the others are left alone."""
    usable = [lg for lg in logins if isinstance(lg, dict)]
    sis = _text(user.get("sis_user_id"))
    for chosen in ([lg for lg in usable if sis and _text(lg.get("sis_user_id")) == sis],
                   [lg for lg in usable if _text(lg.get("unique_id")) is not None
                    and _text(lg.get("unique_id")) == _text(user.get("login_id"))],
                   usable):
        if chosen:
            return chosen[0]
    return None


# Fields of a user or login read as text; anything but a string or number is refused.
_TEXT_FIELDS = ("id", "sis_user_id", "login_id", "unique_id", "integration_id", "name",
                "sortable_name", "short_name", "email", "workflow_state")


def account_from_canvas(user: dict[str, Any], login: dict[str, Any] | None, *,
                        employee_number_field: str, active_state: str,
                        attributes: tuple[str, ...] = ()) -> Account:
    """An Account from a user object and its managed login, with the mapped Canvas
    ``attributes`` (sync.connectors.canvas_attributes) read from them.

    Canvas has no title, department or manager: those are always None here. Without a
    login (``None``) the state is unknown and the account counts as active, which is
    what a login freshly made by Canvas is.
    """
    login = login or {}
    for part, obj in (("user", user), ("login", login)):
        unfit = unfit_text(obj, _TEXT_FIELDS)
        if unfit:  # its text ("{'a': 1}") would read as somebody's SIS id or login
            who = user.get("id") if is_text_id(user.get("id")) else "?"
            raise ConnectorError(f"Canvas answer for user {who}: the {part}'s "
                                 f"{unfit_sentence(*unfit)}; the answer was refused",
                                 ErrorClass.transient)
    name = _text(user.get("name")) or ""
    sortable = _text(user.get("sortable_name")) or name
    given, family = split_names(name, sortable)
    state = _text(login.get("workflow_state"))
    number = (_text(login.get("integration_id")) or _text(user.get("integration_id"))
              if employee_number_field == "integration_id" else None)
    return Account(
        external_key=_text(login.get("sis_user_id")) or _text(user.get("sis_user_id")),
        user_name=_text(login.get("unique_id")) or _text(user.get("login_id")) or "",
        given_name=given,
        family_name=family,
        display_name=_text(user.get("short_name")) or name,
        email=_text(user.get("email")),
        employee_number=number,
        active=state is None or state == active_state,
        lms_id=canvas_id(user.get("id")),
        extra={"login_id": canvas_id(login.get("id"))} if login.get("id") is not None else {},
        attributes=read_attributes(user, login, attributes) if attributes else {},
    )


def creation_params(account: Account, *, employee_number_field: str,
                    authentication_provider_id: str | None,
                    enable_sis_reactivation: bool) -> dict[str, str]:
    """The POST /accounts/:id/users form for an account (§7.2); empty values left out.

    No invitation or confirmation mail: the HRIS, not the person, asked for the account.
    """
    names = name_params(account.given_name, account.family_name, account.display_name)
    form = {f"user[{k}]": v for k, v in names.items() if v}
    form["user[skip_registration]"] = "true"
    form["pseudonym[unique_id]"] = account.user_name
    form["pseudonym[send_confirmation]"] = "false"
    if account.external_key:
        form["pseudonym[sis_user_id]"] = account.external_key
    if account.employee_number and employee_number_field == "integration_id":
        form["pseudonym[integration_id]"] = account.employee_number
    if authentication_provider_id:
        form["pseudonym[authentication_provider_id]"] = authentication_provider_id
    if account.email:
        form["communication_channel[type]"] = "email"
        form["communication_channel[address]"] = account.email
        form["communication_channel[skip_confirmation]"] = "true"
    if enable_sis_reactivation:
        form["enable_sis_reactivation"] = "true"
    form.update(creation_attributes(account.attributes))
    return form


# Account fields by where Canvas keeps them. Title, department and manager have no
# Canvas field (§8 of the connector sheet): they cannot be written.
USER_FIELDS = frozenset({"given_name", "family_name", "display_name", "email"})
LOGIN_FIELDS = frozenset({"user_name", "external_key", "employee_number", "active"})
UNSUPPORTED_FIELDS = frozenset({"title", "department", "manager_key"})


def same(field: str, wanted: Any, got: Any) -> bool:
    """Does a value read back equal the one written? Login ids and emails ignore case."""
    if wanted in ("", None) and got in ("", None):
        return True
    if field in ("user_name", "unique_id", "email") and isinstance(wanted, str) and isinstance(got, str):
        return wanted.casefold() == got.casefold()
    return wanted == got


def remaining_units(value: str | None) -> float | None:
    """X-Rate-Limit-Remaining (a float; present only when throttling applies, §7.1)."""
    try:
        return float((value or "").strip())
    except ValueError:
        return None


def failure(status: int, text: str, body: Any, rate_limit_text: str
            ) -> tuple[ErrorClass, str, str | None]:
    """(class, detail, first error type) of an error answer; detail is raw, not cut."""
    details = error_details(body)
    error_class = classify(status, details, is_throttled(status, text, rate_limit_text))
    code = next((d.type for d in details if d.type), None)
    return error_class, "; ".join(map(str, details)) or text, code


def split_changes(changes: dict[str, Any], employee_number_field: str,
                  mapped: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[str], list[str]]:
    """(writable changes, fields Canvas cannot hold, unknown fields) of an update;
    ``mapped`` are the Canvas attributes [mapping.attributes] names."""
    unknown = sorted(set(changes) - USER_FIELDS - LOGIN_FIELDS - UNSUPPORTED_FIELDS
                     - set(mapped))
    refused = sorted(set(changes) & UNSUPPORTED_FIELDS)
    refused += [k for k in sorted(set(changes) & set(mapped))
                if k in NOT_CLEARABLE and changes[k] in (None, "")]
    if "employee_number" in changes and employee_number_field == "none":
        refused.append("employee_number")
    if "email" in changes and not changes["email"]:
        refused.append("email")  # Canvas keeps a user's address: it cannot be cleared
    writable = {k: v for k, v in changes.items() if k not in refused and k not in unknown}
    return writable, refused, unknown


def user_params(current: Account, changes: dict[str, Any]
                ) -> tuple[dict[str, str], dict[str, str]]:
    """(the account's new names, the user fields to send) for a PUT /users/:id.

    The three name fields are always sent together: each one derives from both parts.
    """
    names = {k: changes.get(k, getattr(current, k))
             for k in ("given_name", "family_name", "display_name")}
    sent = name_params(names["given_name"], names["family_name"], names["display_name"])
    if changes.get("email"):
        sent["email"] = changes["email"]
    return names, sent


def login_params(changes: dict[str, Any], *, by_event: bool, active_state: str,
                 suspended_state: str) -> tuple[dict[str, str], str | None]:
    """(the login fields to send, the wanted workflow_state or None) for a login PUT.

    With ``by_event`` the state is left out: a user event changes it instead.
    """
    sent: dict[str, str] = {}
    for field, key in (("user_name", "unique_id"), ("external_key", "sis_user_id"),
                       ("employee_number", "integration_id")):
        if field in changes:
            sent[key] = changes[field] or ""
    state = None
    if "active" in changes:
        state = active_state if changes["active"] else suspended_state
        if not by_event:
            sent["workflow_state"] = state
    return sent, state


def is_permission_refusal(status: int, body: Any) -> bool:
    """A refusal of a valid token's user, not of the token.

    Canvas answers a call its user may not make with 401 and ``{"status": "unauthorized",
    "errors": [{"message": "user not authorized to perform that action"}]}``
    (render_json_unauthorized, lib/authentication_methods.rb); a bad, expired or revoked
    token is a 401 whose body has no ``status`` ("Invalid access token.",
    ApplicationController#api_error_json). A 403 that is not throttling is a refusal too.
    """
    if status == 403:
        return True
    return status == 401 and isinstance(body, dict) and body.get("status") == "unauthorized"


def failure_hint(status: int, error_class: ErrorClass, *, attempts: int, wait: float | None,
                 max_wait: float, token_env: str | None, refused: bool = False) -> str:
    """What to make of a failure, appended to its message in parentheses; ``refused``
    (is_permission_refusal) tells a missing permission from a bad token."""
    if error_class is ErrorClass.transient:
        if wait is not None and wait > max_wait:
            return f" (asked to wait {wait:g}s, more than {max_wait:g}s)"
        return f" (still failing after {attempts} attempt{'s' if attempts > 1 else ''})"
    if refused:
        return " (the token's user lacks the permission for this call)"
    if status == 401:
        return f" (check the access token in ${token_env})" if token_env else ""
    return ""


def bearer_token(raw: str | None, token_env: str | None) -> str | None:
    """The access token as it may go into a header, or a ConnectorError naming the
    variable (never the value)."""
    if raw is None:
        return None
    token = raw.strip()  # a trailing newline from `export X=$(cat file)` is common
    # httpx quotes an illegal header value in its exception: refuse it here.
    if not token or any(not 0x21 <= ord(ch) <= 0x7E for ch in token):
        raise ConnectorError(f"the Canvas access token from ${token_env} is empty or contains "
                             "spaces or non-ASCII characters", ErrorClass.auth)
    return token


def next_page(link_header: str | None, current_url: str, api_root: str, seen: set[str],
              what: str) -> str | None:
    """The absolute URL of the next page, or None after the last (§7.1).

    The URL is followed as given (opaque), but never to another host (the bearer token
    goes with every request) nor back to a page already read (a loop).
    """
    link = parse_link_header(link_header).get("next")
    if not link:
        return None
    url = urljoin(current_url, link)
    here, there = urlsplit(api_root), urlsplit(url)
    if (here.scheme, here.netloc.lower()) != (there.scheme, there.netloc.lower()):
        raise ConnectorError(f"Canvas {what} failed: the next page is on {there.netloc}, not "
                             f"on {here.netloc} (check base_url)", ErrorClass.mapping)
    if url in seen:
        raise ConnectorError(f"Canvas {what} failed: the Link header sends the listing back "
                             "to a page already read", ErrorClass.transient)
    seen.add(url)
    return url
