"""The Moodle sandbox's site: users, cohorts and the rules Moodle enforces on them.

Kept apart from the HTTP side (sandbox/moodle.py) so that the rules read on their own.
Each web service function is a method taking the decoded parameters and returning what
Moodle would send, or raising WsError, which the app turns into the 200-body exception
(docs/moodle.md §6.1). Its rules follow the Moodle source docs/moodle.md cites.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import parse_qsl

SEARCH_KEYS = ("id", "lastname", "firstname", "idnumber", "username", "email", "auth")
LIKE_KEYS = ("email", "firstname", "lastname")  # matched with SQL LIKE, case-insensitive
LOOKUP_FIELDS = ("id", "idnumber", "username", "email")
TEXT_FIELDS = ("firstname", "lastname", "email", "idnumber", "department", "institution",
               "city", "country", "phone1", "phone2", "address", "alternatename",
               "middlename", "auth")
AUTH_PLUGINS = ("manual", "oauth2", "saml2", "ldap", "nologin", "shibboleth")


class WsError(Exception):
    """``{"exception", "errorcode", "message", "debuginfo"}`` in a 200 answer."""

    def __init__(self, exception: str, errorcode: str, message: str,
                 debuginfo: str | None = None) -> None:
        super().__init__(message)
        self.exception, self.errorcode, self.message = exception, errorcode, message
        self.debuginfo = debuginfo


def invalid(debuginfo: str) -> WsError:
    return WsError("invalid_parameter_exception", "invalidparameter",
                   "Invalid parameter value detected", debuginfo)


def decode_form(body: str) -> dict[str, Any]:
    """PHP's reading of ``a[0][b]=x`` form fields into nested arrays (lists when every
    key at a level is an index)."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        head, _, rest = key.partition("[")
        parts = [head] + (re.findall(r"([^\[\]]*)\]", "[" + rest) if rest else [])
        node = root
        for depth, part in enumerate(parts):
            name = part if part != "" else str(len(node))  # "a[]" appends
            if depth == len(parts) - 1:
                node[name] = value
                break
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                raise invalid(f"{key} mixes a value and an array")
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def clean_username(value: str, extended: bool) -> str:
    """Moodle's PARAM_USERNAME (lib/moodlelib.php clean_param)."""
    value = value.strip().lower()
    return value if extended else re.sub(r"[^-.@_a-z0-9]", "", value)


def _list(params: dict[str, Any], key: str, where: str = "") -> list[Any]:
    value = params.get(key)
    if value is None:
        raise invalid(f"Missing required key in single structure: {key}")
    if value == "" or value == {}:
        return []
    if not isinstance(value, list):
        raise invalid(f"Only arrays accepted. {where or key}")
    return value


def _required(record: Any, keys: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise invalid(f"Only arrays accepted in {where}")
    for key in keys:
        if key not in record:
            raise invalid(f"Missing required key in single structure: {key}")
    return record


class MoodleSite:
    """One Moodle site's data; safe to use from the server thread and the test thread."""

    def __init__(self, *, profile_fields: tuple[str, ...] = (), debug: bool = True,
                 extended_username_chars: bool = False, allow_same_email: bool = False,
                 unique_idnumber: bool = False) -> None:
        self.profile_fields = set(profile_fields)
        # A field's data type as answers name it ("text", "checkbox", ...); text unless set.
        self.profile_datatypes: dict[str, str] = {}
        self.debug = debug
        self.extended_username_chars = extended_username_chars
        self.allow_same_email = allow_same_email
        self.unique_idnumber = unique_idnumber
        self.ignored_fields: set[str] = set()  # update_users accepts these, applies nothing
        self.users: dict[int, dict[str, Any]] = {}
        self.cohorts: dict[int, dict[str, Any]] = {}
        self.members: dict[int, set[int]] = {}
        self._lock = threading.RLock()
        self._next_user = 1
        self._next_cohort = 1
        for name in ("guest", "admin"):  # every site has them; they carry no idnumber
            self._insert({"username": name, "firstname": name.title(), "lastname": "User",
                          "email": f"{name}@localhost", "auth": "manual"})

    # -- helpers -----------------------------------------------------------------------

    def _insert(self, fields: dict[str, Any]) -> dict[str, Any]:
        user = {"id": self._next_user, "suspended": 0, "deleted": 0, "customfields": {},
                **{k: "" for k in TEXT_FIELDS}, "auth": "manual"}
        user.update(fields)
        self.users[user["id"]] = user
        self._next_user += 1
        return user

    def _debug(self, error: WsError) -> WsError:
        # Without debugging, Moodle leaves debuginfo out (§6.1).
        if not self.debug:
            error.debuginfo = None
        return error

    def _live(self) -> list[dict[str, Any]]:
        return [u for u in self.users.values() if not u["deleted"]]

    def _taken(self, field: str, value: str, but: int | None = None) -> bool:
        value = value.lower()
        return any(u[field].lower() == value and u["id"] != but for u in self._live()
                   if u[field])

    def view(self, user: dict[str, Any]) -> dict[str, Any]:
        """A user as web services show it: empty optional fields left out, custom
        profile fields as {type, value, name, shortname} (type is the data type)."""
        out: dict[str, Any] = {"id": user["id"], "username": user["username"],
                               "fullname": f"{user['firstname']} {user['lastname']}",
                               "suspended": bool(user["suspended"]), "confirmed": True}
        out.update({k: user[k] for k in TEXT_FIELDS if user[k] != ""})
        # 4.3 leaves out a field whose value is empty.
        held = {k: v for k, v in sorted(user["customfields"].items()) if v != ""}
        if held:
            out["customfields"] = [{"type": self.profile_datatypes.get(k, "text"), "value": v,
                                    "displayvalue": v, "name": k.title(), "shortname": k}
                                   for k, v in held.items()]
        return out

    def user_by(self, field: str, value: str) -> dict[str, Any] | None:
        with self._lock:
            for user in self._live():
                if str(user[field]) == value:
                    return user
        return None

    # -- users -------------------------------------------------------------------------

    def get_users(self, params: dict[str, Any]) -> dict[str, Any]:
        criteria = _list(params, "criteria")
        if not criteria:
            raise invalid("At least one search criterion is required")
        found, warnings = self._live(), []
        for criterion in criteria:
            criterion = _required(criterion, ("key", "value"), "criteria")
            key, value = criterion["key"], str(criterion["value"])
            if key not in SEARCH_KEYS:
                warnings.append({"item": key, "warningcode": "invalidfieldparameter",
                                 "message": f"The search key '{key}' is not supported, "
                                            "look at the web service documentation"})
                continue
            if key in LIKE_KEYS:
                pattern = re.compile("^" + ".*".join(map(re.escape, value.split("%"))) + "$",
                                     re.IGNORECASE | re.DOTALL)
                found = [u for u in found if pattern.match(u[key])]
            else:
                found = [u for u in found if str(u[key]) == value]
        # A 4.3 site drops an unsupported key with its warning and still answers the
        # users the other criteria select (all of them when none is left).
        return {"users": [self.view(u) for u in found], "warnings": warnings}

    def get_users_by_field(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        field = params.get("field")
        if field not in LOOKUP_FIELDS:
            raise WsError("coding_exception", "codingerror", "Coding error detected, it must "
                          "be fixed by a programmer: invalid field parameter")
        values = {str(v) for v in _list(params, "values")}
        if field == "username":  # a value that cleaning would change is refused
            for value in values:
                cleaned = clean_username(value, self.extended_username_chars)
                if value != cleaned:
                    raise self._debug(invalid(f"The field 'username' value is invalid: "
                                              f"{value}(cleaned value: {cleaned})"))
        with self._lock:  # an exact match, letter case included (email too)
            return [self.view(u) for u in self._live() if str(u[field]) in values]

    def _check_user(self, record: dict[str, Any], current: dict[str, Any] | None) -> None:
        but = None if current is None else current["id"]
        username = record.get("username")
        if username is not None:
            if username != clean_username(username, self.extended_username_chars):
                raise self._debug(invalid(f"The username contains invalid characters: "
                                          f"{username}"))
            if self._taken("username", username, but):
                raise self._debug(invalid(f"Username already exists: {username}"))
        email = record.get("email")
        if email is not None:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
                raise self._debug(invalid(f"Email address is invalid: {email}"))
            if not self.allow_same_email and self._taken("email", email, but):
                raise self._debug(invalid(f"Email address already exists: {email}"))
        idnumber = record.get("idnumber")
        if idnumber and self.unique_idnumber and self._taken("idnumber", idnumber, but):
            raise self._debug(invalid(f"Idnumber already exists: {idnumber}"))
        auth = record.get("auth")
        if auth is not None and auth not in AUTH_PLUGINS:
            raise self._debug(invalid(f"Invalid authentication type: {auth}"))
        for key in ("firstname", "lastname"):
            if key in record and not str(record[key]).strip():
                raise self._debug(invalid(f"The field {key} cannot be empty"))

    def _apply(self, user: dict[str, Any], record: dict[str, Any]) -> None:
        for key, value in record.items():
            if key in self.ignored_fields:
                continue
            if key == "customfields":
                for entry in value if isinstance(value, list) else []:
                    entry = _required(entry, ("type", "value"), "customfields")
                    if entry["type"] in self.profile_fields:  # unknown ones: ignored
                        user["customfields"][entry["type"]] = entry["value"]
            elif key == "suspended":
                user["suspended"] = 1 if str(value) in ("1", "true") else 0
            elif key in TEXT_FIELDS or key == "username":
                user[key] = str(value)

    def create_users(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        records = _list(params, "users")
        with self._lock:
            for record in records:  # all or nothing, like Moodle's delegated transaction
                _required(record, ("username", "firstname", "lastname", "email"), "users")
                if not record.get("password") and str(record.get("createpassword")) != "1":
                    raise invalid("Invalid password: you must provide a password, or set "
                                  "createpassword.")
                self._check_user(record, None)
            # Moodle creates them one by one inside one transaction: the second user of
            # a call holding a value the first took fails the call, and nothing is kept.
            for field, message in (("username", "Username"), ("email", "Email address"),
                                   ("idnumber", "Idnumber")):
                if field == "email" and self.allow_same_email:
                    continue
                if field == "idnumber" and not self.unique_idnumber:
                    continue
                seen: set[str] = set()
                for record in records:
                    value = str(record.get(field) or "").lower()
                    if value and value in seen:
                        raise self._debug(invalid(f"{message} already exists: {value}"))
                    seen.add(value)
            created = []
            for record in records:
                user = self._insert({"username": record["username"]})
                self._apply(user, {k: v for k, v in record.items()
                                   if k not in ("password", "createpassword")})
                created.append({"id": user["id"], "username": user["username"]})
            return created

    def _update_refusal(self, record: dict[str, Any],
                        user: dict[str, Any]) -> tuple[str, str] | None:
        """The (warningcode, message) a 4.3 site's update_users answers for one user it
        refuses: its own email checks, and a taken username reaching the database's
        unique index."""
        email = record.get("email")
        if email is not None and email != user["email"]:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
                return "useremailinvalid", "error/useremailinvalid"
            if not self.allow_same_email and self._taken("email", email, user["id"]):
                return "useremailduplicate", "Duplicate address"
        username = record.get("username")
        if username is not None and self._taken("username", username, user["id"]):
            return "dmlwriteexception", "Error writing to database"
        try:
            self._check_user({k: v for k, v in record.items() if k != "email"}, user)
        except WsError as error:
            return "invalidparameter", error.debuginfo or error.message
        return None

    def update_users(self, params: dict[str, Any]) -> dict[str, Any]:
        warnings = []
        with self._lock:
            for record in _list(params, "users"):
                record = _required(record, ("id",), "users")
                user = self.users.get(int(record["id"]))
                if user is None or user["deleted"]:
                    warnings.append({"item": "user", "itemid": int(record["id"]),
                                     "warningcode": "invaliduserid",
                                     "message": "Invalid user ID"})
                    continue
                refused = self._update_refusal(record, user)
                if refused is not None:
                    warnings.append({"item": "user", "itemid": user["id"],
                                     "warningcode": refused[0], "message": refused[1]})
                    continue
                self._apply(user, {k: v for k, v in record.items() if k != "id"})
        return {"warnings": warnings}

    def delete_users(self, params: dict[str, Any]) -> None:
        with self._lock:
            for user_id in _list(params, "userids"):
                user = self.users.get(int(user_id))
                if user is None or user["deleted"]:
                    raise WsError("dml_missing_record_exception", "invalidrecord",
                                  "Can't find data record in database table user.")
                if user["username"] == "admin":
                    raise WsError("moodle_exception", "useradminodelete",
                                  "Administrator accounts cannot be deleted")
                user["deleted"] = 1
                for members in self.members.values():
                    members.discard(user["id"])
        return None

    # -- cohorts -----------------------------------------------------------------------

    def _cohort(self, kind: str, value: str) -> dict[str, Any] | None:
        for cohort in self.cohorts.values():
            if str(cohort["id" if kind == "id" else "idnumber"]) == str(value):
                return cohort
        return None

    def create_cohorts(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        with self._lock:
            for record in _list(params, "cohorts"):
                record = _required(record, ("categorytype", "name"), "cohorts")
                idnumber = record.get("idnumber", "")
                if idnumber and self._cohort("idnumber", idnumber):
                    raise self._debug(invalid(f"Duplicate idnumber: {idnumber}"))
                cohort = {"id": self._next_cohort, "name": record["name"],
                          "idnumber": idnumber, "description": "", "descriptionformat": 1,
                          "visible": True, "theme": ""}
                self._next_cohort += 1
                self.cohorts[cohort["id"]] = cohort
                self.members[cohort["id"]] = set()
                out.append(dict(cohort))
        return out

    def get_cohorts(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        ids = [int(i) for i in params.get("cohortids") or []]
        with self._lock:  # unknown ids are left out, not refused
            return [dict(c) for i, c in sorted(self.cohorts.items()) if not ids or i in ids]

    def get_cohort_members(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        with self._lock:
            for cohort_id in _list(params, "cohortids"):
                if int(cohort_id) not in self.cohorts:
                    raise WsError("dml_missing_record_exception", "invalidrecord",
                                  "Can't find data record in database table cohort.")
                out.append({"cohortid": int(cohort_id),
                            "userids": sorted(self.members[int(cohort_id)])})
        return out

    def add_cohort_members(self, params: dict[str, Any]) -> dict[str, Any]:
        """Moodle's per-member warnings (cohort/externallib.php, add_cohort_members):
        code "1" a cohorttype other than id/idnumber or a usertype other than
        id/username, "2" a cohort or user that does not exist, "3" a member already."""
        warnings = []
        with self._lock:
            for member in _list(params, "members"):
                member = _required(member, ("cohorttype", "usertype"), "members")
                ctype, utype = member["cohorttype"], member["usertype"]
                kinds = ((ctype.get("type"), ("id", "idnumber"), "cohortype"),
                         (utype.get("type"), ("id", "username"), "usertype"))
                bad = next((f"invalid parameter: {name}={kind}" for kind, allowed, name in kinds
                            if kind not in allowed), None)
                if bad:
                    warnings.append({"warningcode": "1", "message": bad})
                    continue
                cohort = self._cohort(ctype["type"], ctype.get("value"))
                user = self.user_by(utype["type"], str(utype.get("value")))
                if cohort is None or user is None:
                    what, kind = ("cohort", ctype) if cohort is None else ("user", utype)
                    warnings.append({"warningcode": "2", "message":
                                     f"{what} {kind['type']}={kind.get('value')} not exists"})
                    continue
                if user["id"] in self.members[cohort["id"]]:
                    warnings.append({"warningcode": "3", "message": (
                        f"record already exists: cohort({ctype['type']}={ctype.get('value')} "
                        f"{utype['type']}={utype.get('value')})")})
                    continue
                self.members[cohort["id"]].add(user["id"])
        return {"warnings": warnings}

    def delete_cohort_members(self, params: dict[str, Any]) -> None:
        with self._lock:
            for member in _list(params, "members"):
                member = _required(member, ("cohortid", "userid"), "members")
                if int(member["cohortid"]) not in self.cohorts:
                    raise WsError("dml_missing_record_exception", "invalidrecord",
                                  "Can't find data record in database table cohort.")
                user = self.users.get(int(member["userid"]))
                if user is None or user["deleted"]:
                    raise WsError("dml_missing_record_exception", "invaliduser",
                                  "Invalid user")
                self.members[int(member["cohortid"])].discard(int(member["userid"]))
        return None
