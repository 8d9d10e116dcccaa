"""Moodle web services on the wire, as pure functions (docs/moodle.md).

PHP bracket encoding of parameters (§6.1), Moodle's username cleaning (§6.2), the error
and warning shapes that arrive inside HTTP 200 answers (§6.1), and the mapping between
a Moodle user object and an Account (§6.3, §8). No IO here: sync.connectors.moodle
does the talking.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.http_retry import retry_after_seconds
from rostersync.sync.connectors.moodle_config import (
    HOMELESS_FIELDS,
    PROFILE_PREFIX,
    MoodleCohortConfig,
    MoodleTargetConfig,
)
from rostersync.sync.connectors.wire_types import unfit_sentence, unfit_text
from rostersync.sync.models import Account, ErrorClass

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# -- §6.1 PHP bracket encoding ----------------------------------------------------------


def encode_params(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Flatten nested dicts and lists into PHP form fields, in order.

    ``{"users": [{"username": "jdoe"}]}`` -> ``[("users[0][username]", "jdoe")]``.
    Booleans become 1/0 (PHP's PARAM_BOOL/PARAM_INT); None leaves the key out (Moodle
    then uses the parameter's default). A JSON body or a PHP-style array string is what
    Moodle refuses with "Missing required key in single structure" (§6.1).
    """
    out: list[tuple[str, str]] = []

    def walk(key: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for sub, item in value.items():
                walk(f"{key}[{sub}]", item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(f"{key}[{index}]", item)
        elif isinstance(value, bool):
            out.append((key, "1" if value else "0"))
        elif isinstance(value, int | float | str):
            out.append((key, str(value)))
        else:
            raise TypeError(f"cannot send {type(value).__name__} for {key}")

    for name, value in params.items():
        walk(name, value)
    return out


# -- §6.2 usernames ---------------------------------------------------------------------

_NOT_USERNAME = re.compile(r"[^-.@_a-z0-9]")


def clean_username(value: str, extended_chars: bool = False) -> str:
    """Moodle's PARAM_USERNAME cleaning: trim, lower-case, and unless the site allows
    extended characters, drop everything but ``[-.@_a-z0-9]`` (spaces included)."""
    value = value.strip().lower()
    if extended_chars:
        return value
    return _NOT_USERNAME.sub("", value)


# -- §6.1 errors inside 200 answers -----------------------------------------------------


@dataclass(frozen=True)
class MoodleFault:
    """``{"exception", "errorcode", "message", "debuginfo"?}`` as Moodle sends it."""

    exception: str
    errorcode: str
    message: str
    debuginfo: str | None = None

    def text(self) -> str:
        detail = f"{self.errorcode}: {self.message}"
        if self.debuginfo and self.debuginfo not in self.message:
            detail += f" ({self.debuginfo})"
        return detail


def fault_of(data: Any) -> MoodleFault | None:
    """The error a decoded answer carries, or None. An object with an ``exception`` key
    is an error whatever the HTTP status (§6.1)."""
    if not isinstance(data, dict) or "exception" not in data:
        return None
    return MoodleFault(str(data.get("exception") or ""), str(data.get("errorcode") or ""),
                       str(data.get("message") or ""),
                       None if data.get("debuginfo") is None else str(data["debuginfo"]))


def warnings_of(data: Any) -> list[dict[str, Any]]:
    """The ``warnings`` entries of an answer (§6.1); each one is a refusal."""
    if not isinstance(data, dict):
        return []
    found = data.get("warnings")
    if not isinstance(found, list):
        return []
    return [w if isinstance(w, dict) else {"message": str(w)} for w in found]


def warning_text(warning: dict[str, Any]) -> str:
    code = warning.get("warningcode")
    item = " ".join(str(warning[k]) for k in ("item", "itemid") if warning.get(k) is not None)
    head = f"{code}: " if code else ""
    return f"{head}{warning.get('message') or 'no message'}" + (f" ({item})" if item else "")


_AUTH_CODES = frozenset({
    "invalidtoken", "accessexception", "nopermissions", "requireloginerror",
    "servicerequireslogin", "usernotfullysetup", "invalidlogin", "forbiddenwsuser",
    "wsaccessuserdeleted", "wsaccessusersuspended", "wsaccessusernologin",
    "invalidtimedtoken", "enablewsdescription", "restrictedcontextexception",
})
_AUTH_EXCEPTIONS = frozenset({"webservice_access_exception", "required_capability_exception",
                              "require_login_exception", "restricted_context_exception"})
_NOT_FOUND_CODES = frozenset({"invaliduser", "invaliduserid", "invalidrecord",
                              "usernotexists"})
_TRANSIENT_CODES = frozenset({"sitemaintenance", "dbconnectionfailed", "dbupdatefailed",
                              "servicenotavailable"})
_DUPLICATE = re.compile(r"(username|e-?mail( address)?|idnumber)\b.{0,40}\balready\b"
                        r"|\balready (exists|taken|in use|registered)", re.IGNORECASE)


_ERRORCODE = re.compile(r"[a-z0-9_]*")  # a language string key, as errorcodes are


def classify_fault(fault: MoodleFault) -> ErrorClass:
    """Which kind of failure a Moodle exception is (docs/moodle.md, "Errors")."""
    code = fault.errorcode.lower()
    if code in _AUTH_CODES or fault.exception in _AUTH_EXCEPTIONS:
        return ErrorClass.auth
    if _DUPLICATE.search(f"{fault.message} {fault.debuginfo or ''}") \
            or code in ("usernameexists", "emailexists", "useremailduplicate"):
        return ErrorClass.conflict
    if code == "useremailinvalid":  # update_users' warning for an email it refuses
        return ErrorClass.data
    if not _ERRORCODE.fullmatch(code):
        # A refusal thrown with its text as the error code (create_users' password policy
        # check does this): the policy is the site's, so the fix is in the config.
        return ErrorClass.mapping if "password" in code else ErrorClass.data
    if code in _NOT_FOUND_CODES or fault.exception == "dml_missing_record_exception":
        return ErrorClass.not_found
    if code in _TRANSIENT_CODES or fault.exception.startswith("dml_"):
        return ErrorClass.transient
    if fault.exception == "invalid_parameter_exception" or code.startswith("invalid"):
        return ErrorClass.data
    # Anything else is the site's own trouble (coding_exception, a plugin's moodle_exception):
    # worth a bounded retry, and owned by IT rather than blamed on the HR record.
    return ErrorClass.transient


def one_line(text: str, redact: Callable[[str], str], limit: int = 160) -> str:
    """Server text fit for a message: redacted first (a cut could leave part of the
    token), then on one line and short."""
    return " ".join(redact(text).split())[:limit] or "an empty body"


def _auth_hint(token_env: str | None) -> str:
    return (f" (check the token in ${token_env} and that its service offers this "
            "function)")


def http_error(label: str, status: int, body: str, retry_after: str | None,
               redact: Callable[[str], str], endpoint: str,
               token_env: str | None) -> ConnectorError:
    """A non-200 answer: Moodle itself answers 200, so this is the web server or a proxy."""
    head = f"{label} failed: HTTP {status}: {one_line(body, redact)}"
    if status in RETRY_STATUSES:
        return ConnectorError(head, ErrorClass.transient, status=status,
                              retry_after=retry_after_seconds(retry_after))
    if status == 403 and not body.strip():
        # webservice/rest/server.php answers a bare 403 when web services or the REST
        # protocol are not enabled; a token problem is a 200 exception instead.
        return ConnectorError(f"{label} failed: HTTP 403 with an empty body: web services or "
                              "the REST protocol are not enabled on the site (Site "
                              "administration > Server > Web services)", ErrorClass.auth,
                              status=status)
    if status in (401, 403):
        return ConnectorError(head + _auth_hint(token_env), ErrorClass.auth, status=status)
    if status in (404, 405):
        return ConnectorError(f"{label} failed: HTTP {status}: there is no Moodle REST "
                              f"endpoint at {endpoint} (check lms.base_url)",
                              ErrorClass.mapping, status=status)
    return ConnectorError(head, ErrorClass.transient, status=status)


def fault_error(fault: MoodleFault, label: str, redact: Callable[[str], str],
                token_env: str | None) -> ConnectorError:
    error_class = classify_fault(fault)
    hint = _auth_hint(token_env) if error_class is ErrorClass.auth else ""
    return ConnectorError(f"{label} failed: {one_line(fault.text(), redact, 300)}{hint}",
                          error_class, status=200, code=fault.errorcode or fault.exception)


# update_users' warnings name no field ("Duplicate address", "Error writing to database"
# for a taken username): the parameter each one is about, quoted from what was sent.
_WARNING_FIELD = {"useremailduplicate": "email", "useremailinvalid": "email",
                  "dmlwriteexception": "username"}


def refusal(warnings: list[dict[str, Any]], label: str, redact: Callable[[str], str],
            sent: Mapping[str, Any] | None = None) -> ConnectorError:
    """A ``warnings`` answer: Moodle did not do (all of) what was asked."""
    first = warnings[0]
    fault = MoodleFault("warning", str(first.get("warningcode") or ""),
                        str(first.get("message") or ""))
    more = f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else ""
    about = _WARNING_FIELD.get(fault.errorcode)
    if sent and about is not None and about in sent:
        more += f"; {about} sent: {json.dumps(str(sent[about]), ensure_ascii=False)}"
    return ConnectorError(f"{label} refused: {one_line(warning_text(first), redact, 300)}"
                          f"{more}", classify_fault(fault), status=200,
                          code=fault.errorcode or "warning")


def check_write_answer(data: Any, label: str, redact: Callable[[str], str],
                       sent: Mapping[str, Any] | None = None) -> None:
    """update/delete/cohort writes answer null, [] or {"warnings": []}; else refused."""
    warnings = warnings_of(data)
    if warnings:
        raise refusal(warnings, label, redact, sent)
    if data is None or data == [] or (isinstance(data, dict) and set(data) <= {"warnings"}):
        return
    raise ConnectorError(f"{label}: unexpected answer {one_line(json.dumps(data), redact)}",
                         ErrorClass.transient)


def user_list(data: Any, label: str) -> list[dict[str, Any]]:
    """A list of user objects, each with a numeric id; deleted ones left out."""
    if not isinstance(data, list) or not all(
            isinstance(u, dict) and str(u.get("id", "")).isdigit() for u in data):
        raise ConnectorError(f"{label}: the answer is not a list of users with ids",
                             ErrorClass.transient)
    for user in data:
        unfit = unfit_text(user, _TEXT_FIELDS)
        if unfit:  # its text ("{'a': 1}") would read as somebody's idnumber or username
            raise ConnectorError(f"{label}: user {user['id']}'s {unfit_sentence(*unfit)}; "
                                 "the answer was refused", ErrorClass.transient)
    return [u for u in data if not u.get("deleted")]


# Fields of a user read as text; anything but a string or number is refused.
_TEXT_FIELDS = ("username", "idnumber", "email", "firstname", "lastname", "department",
                "auth")


# -- §6.3 / §8 users and accounts -------------------------------------------------------


class Refused(ValueError):
    """A value Moodle cannot take; becomes a data error naming the field."""

    def __init__(self, field: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.field, self.value, self.message = field, value, message

    def __str__(self) -> str:
        return f"{self.field} {self.value!r}: {self.message}"


# Account field -> core Moodle user field, for the fields every site has.
CORE_FIELDS = {"user_name": "username", "given_name": "firstname",
               "family_name": "lastname", "email": "email", "department": "department",
               "external_key": "idnumber"}
REQUIRED = ("given_name", "family_name", "email")  # Moodle refuses a user without them


def derived_display_name(given: str | None, family: str | None) -> str:
    """Moodle shows fullname() = firstname lastname: the only display name it has."""
    return f"{given or ''} {family or ''}".strip()


def display_name_held(wanted: str | None, user: Mapping[str, Any]) -> bool:
    return (wanted or "") == derived_display_name(_text(user.get("firstname")),
                                                  _text(user.get("lastname")))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text != "" else None


def custom_field(user: Mapping[str, Any], shortname: str) -> str | None:
    """A custom profile field's value; answers list them as {shortname, value, type...}."""
    for entry in user.get("customfields") or []:
        if isinstance(entry, Mapping) and entry.get("shortname") == shortname:
            return _text(entry.get("value"))
    return None


def mapped_value(user: Mapping[str, Any], name: str) -> str | bool | None:
    """A [mapping.attributes] profile field as the diff compares it: its text, or for a
    checkbox field (answers say ``"type": "checkbox"``, value "1"/"0") true or false.
    4.3 leaves a field whose value is empty out of ``customfields`` (None here)."""
    shortname = name.removeprefix(PROFILE_PREFIX)
    for entry in user.get("customfields") or []:
        if isinstance(entry, Mapping) and entry.get("shortname") == shortname:
            if entry.get("type") == "checkbox":
                return str(entry.get("value")) == "1"
            return _text(entry.get("value"))
    return None


def profile_text(value: Any) -> str:
    """An expression's result as a profile field value: true/false as a checkbox's 1/0,
    a date as YYYY-MM-DD, nothing as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def home_value(user: Mapping[str, Any], home: str) -> str | None:
    if home.startswith(PROFILE_PREFIX):
        return custom_field(user, home.removeprefix(PROFILE_PREFIX))
    return _text(user.get(home))


def account_from_user(user: Mapping[str, Any], config: MoodleTargetConfig) -> Account:
    """A Moodle user object (core_user_get_users[_by_field]) as an Account.

    Moodle has no manager reference (so no ``manager_lms_id``); a configured home for
    ``manager_key`` holds the manager's HRIS key itself.
    """
    given, family = _text(user.get("firstname")) or "", _text(user.get("lastname")) or ""
    homed = {name: home_value(user, home) for name, home in config.fields.items()}
    return Account(
        external_key=_text(user.get("idnumber")),
        user_name=_text(user.get("username")) or "",
        given_name=given,
        family_name=family,
        display_name=derived_display_name(given, family),
        email=_text(user.get("email")),
        title=homed.get("title"),
        department=_text(user.get("department")),
        employee_number=homed.get("employee_number"),
        manager_key=homed.get("manager_key"),
        active=not _flag(user.get("suspended")),
        lms_id=str(user["id"]),
        attributes={name: mapped_value(user, name) for name in config.mapped_attributes},
    )


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip() not in ("", "0", "false")
    return bool(value)


def moodle_username(user_name: str, config: MoodleTargetConfig) -> str:
    """The username to send for an Account's user_name, by the configured rules."""
    cleaned = clean_username(user_name, config.extended_username_chars)
    if not cleaned:
        raise Refused("user_name", user_name, "leaves nothing once cleaned by Moodle's "
                      "username rules")
    if cleaned != user_name.strip().lower() and config.invalid_username == "reject":
        raise Refused("user_name", user_name, "has characters a Moodle username cannot "
                      f"hold (it would become {cleaned!r}; lms.invalid_username = \"clean\" "
                      "sends that instead)")
    return cleaned


def user_fields(changes: Mapping[str, Any],
                config: MoodleTargetConfig) -> tuple[dict[str, Any], list[str]]:
    """Account-field changes -> Moodle user parameters, and the fields with no home.

    ``display_name`` is never sent: Moodle derives it from the names, so whether it is
    held can only be told from the user read back (see ``display_name_held``).
    """
    out: dict[str, Any] = {}
    custom: list[dict[str, str]] = []
    homeless: list[str] = []
    for name, value in changes.items():
        if name == "user_name":
            out["username"] = moodle_username(value or "", config)
        elif name in CORE_FIELDS:
            if name in REQUIRED and not value:
                raise Refused(name, value, "is required by Moodle")
            out[CORE_FIELDS[name]] = value or ""
        elif name == "active":
            if not isinstance(value, bool):
                raise Refused(name, value, "must be true or false")
            out["suspended"] = 0 if value else 1
        elif name in config.fields:
            home = config.fields[name]
            if home.startswith(PROFILE_PREFIX):
                custom.append({"type": home.removeprefix(PROFILE_PREFIX),
                               "value": value or ""})
            else:
                out[home] = value or ""
        elif name in config.mapped_attributes:  # a profile field [mapping.attributes] maps
            custom.append({"type": name.removeprefix(PROFILE_PREFIX),
                           "value": profile_text(value)})
        elif name == "display_name":
            pass  # derived from the names; the caller checks it against the read-back
        elif name not in HOMELESS_FIELDS:
            raise ValueError(f"Moodle cannot update unknown account field {name!r}")
        elif value not in (None, ""):
            homeless.append(name)  # clearing a field Moodle never held needs nothing
    if custom:
        out["customfields"] = custom
    return out, homeless


def verify_applied(sent: Mapping[str, Any], user: Mapping[str, Any]) -> list[str]:
    """Parameters the user read back does not show as sent: "field: sent X, holds Y"."""
    wrong = []
    for key, value in sent.items():
        if key == "customfields":
            for entry in value:
                held = custom_field(user, entry["type"]) or ""
                if held != entry["value"]:
                    wrong.append(f"{PROFILE_PREFIX}{entry['type']}: sent {entry['value']!r}, "
                                 f"holds {held!r}")
        elif key == "suspended":
            if _flag(user.get("suspended")) != bool(value):
                wrong.append(f"suspended: sent {value}, holds {user.get('suspended')!r}")
        elif key not in ("id", "auth", "password", "createpassword"):
            held = _text(user.get(key)) or ""
            want = str(value)
            if key in ("username", "email"):
                held, want = held.lower(), want.lower()
            if held != want:
                wrong.append(f"{key}: sent {value!r}, holds {user.get(key)!r}")
    return wrong


# -- §6.4 cohorts -----------------------------------------------------------------------


def slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", value.strip().lower()).strip("-")


def cohort_idnumber(value: str | None, config: MoodleCohortConfig) -> str | None:
    """The idnumber of the cohort a field value puts a user in (None: no cohort)."""
    if value is None or not value.strip():
        return None
    if value in config.idnumbers:
        return config.idnumbers[value]
    if config.idnumber_prefix is None or not slug(value):
        return None
    return config.idnumber_prefix + slug(value)


def is_managed_cohort(idnumber: str | None, config: MoodleCohortConfig) -> bool:
    if not idnumber:
        return False
    return idnumber in config.idnumbers.values() or (
        config.idnumber_prefix is not None and idnumber.startswith(config.idnumber_prefix))


def cohort_note(value: str | None, held: set[str], config: MoodleCohortConfig) -> str | None:
    """What is wrong with a user's managed cohorts for its field value (None: nothing)."""
    wanted = cohort_idnumber(value, config)
    expected = {wanted} if wanted else set()
    if held == expected:
        return None
    notes = [f"not in cohort {wanted}"] if wanted and wanted not in held else []
    notes += [f"also in cohort {c}" for c in sorted(held - expected)]
    return "; ".join(notes)
