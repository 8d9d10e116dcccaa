"""The Canvas sandbox's data: users, their logins, account groups (in group categories)
and their memberships, and Canvas's validation rules.

Users and logins (pseudonyms) are separate records, as in Canvas: a user has names and
an email, a login has the login id (``unique_id``), the SIS and integration ids and a
``workflow_state``. Login ids are unique per account and authentication provider
(ignoring case), SIS and integration ids per account; deleted users keep holding their
SIS id until revived with ``enable_sis_reactivation`` (docs/canvas.md §7.2).

Invalid input raises ``Invalid`` with the nested error body Canvas sends.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

MAX_NAME = 255
LOGIN_STATES = ("active", "suspended")


class Invalid(Exception):
    """A refused write: the HTTP status and Canvas's ``{"errors": ...}`` body."""

    def __init__(self, status: int, errors: Any) -> None:
        super().__init__(str(errors))
        self.status = status
        self.body = {"errors": errors}


class NotFound(Exception):
    pass


def _field_error(status: int, obj: str | None, attribute: str, kind: str,
                 message: str) -> Invalid:
    detail = {attribute: [{"attribute": attribute, "type": kind, "message": message}]}
    return Invalid(status, {obj: detail} if obj else detail)


def _valid_email(address: str) -> bool:
    local, at, domain = address.partition("@")
    return bool(at and local and "." in domain and "@" not in domain and " " not in address)


class CanvasData:
    """One root account's users and logins; safe to use from any thread."""

    def __init__(self, account_id: int = 1, account_name: str = "Acme Learning") -> None:
        self.account = {"id": account_id, "name": account_name, "parent_account_id": None,
                        "root_account_id": None, "workflow_state": "active"}
        self._lock = threading.RLock()
        self._users: dict[int, dict[str, Any]] = {}
        self._logins: dict[int, dict[str, Any]] = {}
        self._next_user, self._next_login = 101, 5001
        # Account-level group categories, their groups and the groups' memberships (§7.4).
        self._categories: dict[int, dict[str, Any]] = {}
        self._groups: dict[int, dict[str, Any]] = {}
        self._memberships: dict[int, dict[str, Any]] = {}
        self._next_category, self._next_group, self._next_membership = 31, 701, 9001

    # -- reading -----------------------------------------------------------------------

    def _live_logins(self, user_id: int) -> list[dict[str, Any]]:
        return sorted((lg for lg in self._logins.values()
                       if lg["user_id"] == user_id and lg["workflow_state"] != "deleted"),
                      key=lambda lg: lg["id"])

    def user_json(self, user_id: int) -> dict[str, Any]:
        with self._lock:
            user = self._users[user_id]
            logins = self._live_logins(user_id)
            primary = logins[0] if logins else {}
            sis = next((lg for lg in logins if lg["sis_user_id"]), primary)
            return {
                "id": user["id"], "name": user["name"], "sortable_name": user["sortable_name"],
                "short_name": user["short_name"], "sis_user_id": sis.get("sis_user_id"),
                "integration_id": sis.get("integration_id"),
                "login_id": primary.get("unique_id"), "email": user["email"],
                "avatar_url": None, "locale": None, "last_login": None, "time_zone": None,
                "bio": None, "created_at": user["created_at"],
            }

    def find_user(self, ref: str) -> int:
        """A user by Canvas id or ``sis_user_id:...``; NotFound if absent or deleted."""
        with self._lock:
            if ref.startswith("sis_user_id:"):
                sis = ref.removeprefix("sis_user_id:")
                for login in self._logins.values():
                    if login["sis_user_id"] == sis and login["workflow_state"] != "deleted":
                        return login["user_id"]
                raise NotFound(ref)
            if ref.isdigit() and int(ref) in self._users \
                    and self._users[int(ref)]["workflow_state"] != "deleted":
                return int(ref)
            raise NotFound(ref)

    def list_users(self, search_term: str | None = None) -> list[dict[str, Any]]:
        """Live users sorted by sortable name, optionally matching a search term in
        their names, email, login ids or SIS id (ignoring case)."""
        with self._lock:
            out = []
            for user_id, user in self._users.items():
                if user["workflow_state"] == "deleted":
                    continue
                view = self.user_json(user_id)
                if search_term:
                    term = search_term.casefold()
                    texts = [view["name"], view["sortable_name"], view["short_name"],
                             view["email"], view["sis_user_id"],
                             *(lg["unique_id"] for lg in self._live_logins(user_id))]
                    if not any(t and term in t.casefold() for t in texts):
                        continue
                out.append(view)
            return sorted(out, key=lambda u: (u["sortable_name"].casefold(), u["id"]))

    def logins_of(self, user_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(lg) for lg in self._live_logins(user_id)]

    # -- writing -----------------------------------------------------------------------

    def _check_login_ids(self, login: dict[str, Any], status: int, obj: str | None) -> None:
        unique = login["unique_id"]
        if not unique or not unique.strip():
            raise _field_error(status, obj, "unique_id", "blank", "can't be blank")
        if len(unique) > 100:
            raise _field_error(status, obj, "unique_id", "too_long",
                               "is too long (maximum is 100 characters)")
        for other in self._logins.values():
            if other["id"] == login.get("id") or other["workflow_state"] == "deleted":
                continue
            if other["unique_id"].casefold() == unique.casefold() and \
                    other["authentication_provider_id"] == login["authentication_provider_id"]:
                raise _field_error(status, obj, "unique_id", "taken",
                                   "ID already in use for this account and authentication "
                                   "provider")
        for key, label in (("sis_user_id", "SIS ID"), ("integration_id", "Integration ID")):
            value = login[key]
            # Deleted logins still hold their SIS id (that is what reactivation revives).
            if value and any(o[key] == value and o["id"] != login.get("id")
                             for o in self._logins.values()):
                raise _field_error(status, obj, key, "taken",
                                   f'{label} "{value}" is already in use')

    def _names(self, params: dict[str, str], fallback: str) -> dict[str, str]:
        name = params.get("user[name]", "").strip() or fallback
        short = params.get("user[short_name]", "").strip() or name
        sortable = params.get("user[sortable_name]", "").strip() or name
        for key, value in (("name", name), ("short_name", short), ("sortable_name", sortable)):
            if len(value) > MAX_NAME:
                raise _field_error(400, "user", key, "too_long",
                                   f"is too long (maximum is {MAX_NAME} characters)")
        return {"name": name, "short_name": short, "sortable_name": sortable}

    def create_user(self, params: dict[str, str]) -> dict[str, Any]:
        """POST /accounts/:id/users with form parameters (§7.2)."""
        with self._lock:
            unique = params.get("pseudonym[unique_id]", "")
            sis = params.get("pseudonym[sis_user_id]") or None
            revive = params.get("enable_sis_reactivation", "").lower() in ("1", "true")
            if sis and revive:
                revived = self._revive(sis, params)
                if revived is not None:
                    return revived
            login = {"unique_id": unique, "sis_user_id": sis,
                     "integration_id": params.get("pseudonym[integration_id]") or None,
                     "authentication_provider_id":
                         params.get("pseudonym[authentication_provider_id]") or None}
            self._check_login_ids(login, 400, "pseudonym")
            names = self._names(params, unique)
            email = params.get("communication_channel[address]") or None
            if email and not _valid_email(email):
                raise _field_error(400, "communication_channel", "address", "invalid",
                                   "is invalid")
            user_id, self._next_user = self._next_user, self._next_user + 1
            login_id, self._next_login = self._next_login, self._next_login + 1
            self._users[user_id] = {"id": user_id, **names, "email": email,
                                    "workflow_state": "registered",
                                    "created_at": datetime.now(UTC).isoformat()}
            self._logins[login_id] = {**login, "id": login_id, "user_id": user_id,
                                      "account_id": self.account["id"],
                                      "workflow_state": "active"}
            return self.user_json(user_id)

    def _revive(self, sis: str, params: dict[str, str]) -> dict[str, Any] | None:
        login = next((lg for lg in self._logins.values()
                      if lg["sis_user_id"] == sis and lg["workflow_state"] == "deleted"), None)
        if login is None:
            return None
        user = self._users[login["user_id"]]
        candidate = {**login, "unique_id": params.get("pseudonym[unique_id]", "")}
        self._check_login_ids(candidate, 400, "pseudonym")
        user.update(self._names(params, candidate["unique_id"]), workflow_state="registered")
        login.update(unique_id=candidate["unique_id"], workflow_state="active")
        return self.user_json(user["id"])

    def update_user(self, user_id: int, params: dict[str, str]) -> dict[str, Any]:
        """PUT /users/:id: names, email, and ``user[event]`` suspend/unsuspend."""
        with self._lock:
            user = self._users[user_id]
            event = params.get("user[event]")
            if event is not None:
                if event not in ("suspend", "unsuspend"):
                    raise _field_error(400, "user", "event", "invalid",
                                       "must be suspend or unsuspend")
                for login in self._live_logins(user_id):
                    login["workflow_state"] = "suspended" if event == "suspend" else "active"
            if any(k in params for k in ("user[name]", "user[short_name]",
                                         "user[sortable_name]")):
                current = {"user[name]": user["name"], "user[short_name]": user["short_name"],
                           "user[sortable_name]": user["sortable_name"]}
                user.update(self._names({**current, **params}, user["name"]))
            if "user[email]" in params:
                email = params["user[email]"].strip()
                if not _valid_email(email):
                    raise _field_error(400, None, "email", "invalid", "is invalid")
                user["email"] = email
            return self.user_json(user_id)

    def update_login(self, login_id: int, params: dict[str, str]) -> dict[str, Any]:
        """PUT /accounts/:id/logins/:login_id with ``login[...]`` parameters (§7.2)."""
        with self._lock:
            login = self._logins.get(login_id)
            if login is None or login["workflow_state"] == "deleted":
                raise NotFound(str(login_id))
            changed = dict(login)
            for key in ("unique_id", "sis_user_id", "integration_id"):
                if f"login[{key}]" in params:
                    value = params[f"login[{key}]"]
                    changed[key] = value if key == "unique_id" else (value or None)
            state = params.get("login[workflow_state]")
            if state is not None:
                # PseudonymsController#update_pseudonym_from_params: only these two.
                if state not in LOGIN_STATES:
                    raise _field_error(400, None, "workflow_state", "invalid workflow_state",
                                       "invalid workflow_state")
                changed["workflow_state"] = state
            # `render json: @pseudonym.errors, status: :bad_request`: not wrapped in "login".
            self._check_login_ids(changed, 400, None)
            login.update(changed)
            return dict(login)

    def delete_user(self, user_id: int) -> dict[str, Any]:
        with self._lock:
            view = self.user_json(user_id)
            self._users[user_id]["workflow_state"] = "deleted"
            for login in self._live_logins(user_id):
                login["workflow_state"] = "deleted"
            return view

    # -- groups (§7.4) -----------------------------------------------------------------

    def categories(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for _i, c in sorted(self._categories.items())]

    def create_category(self, params: dict[str, str]) -> dict[str, Any]:
        """POST /accounts/:id/group_categories: names are unique within the account."""
        with self._lock:
            name = params.get("name", "").strip()
            if not name:
                raise _field_error(400, None, "name", "blank", "can't be blank")
            if any(c["name"] == name for c in self._categories.values()):
                raise _field_error(400, None, "name", "taken", "Name is already in use")
            category_id, self._next_category = self._next_category, self._next_category + 1
            self._categories[category_id] = {
                "id": category_id, "name": name, "role": None, "self_signup": None,
                "group_limit": None, "context_type": "Account",
                "account_id": self.account["id"]}
            return dict(self._categories[category_id])

    def _group_view(self, group: dict[str, Any]) -> dict[str, Any]:
        count = sum(1 for m in self._memberships.values()
                    if m["group_id"] == group["id"] and m["workflow_state"] == "accepted")
        return {**group, "members_count": count}

    def group(self, group_id: int) -> dict[str, Any]:
        with self._lock:
            group = self._groups.get(group_id)
            if group is None or group["workflow_state"] == "deleted":
                raise NotFound(str(group_id))
            return self._group_view(group)

    def groups_in(self, category_id: int) -> list[dict[str, Any]]:
        with self._lock:
            if category_id not in self._categories:
                raise NotFound(str(category_id))
            return [self._group_view(g) for _i, g in sorted(self._groups.items())
                    if g["group_category_id"] == category_id
                    and g["workflow_state"] != "deleted"]

    def create_group(self, category_id: int, params: dict[str, str]) -> dict[str, Any]:
        """POST /group_categories/:id/groups (names need not be unique, as in Canvas)."""
        with self._lock:
            if category_id not in self._categories:
                raise NotFound(str(category_id))
            name = params.get("name", "").strip()
            if not name:
                raise _field_error(400, None, "name", "blank", "can't be blank")
            if len(name) > MAX_NAME:
                raise _field_error(400, None, "name", "too_long",
                                   f"is too long (maximum is {MAX_NAME} characters)")
            group_id, self._next_group = self._next_group, self._next_group + 1
            self._groups[group_id] = {
                "id": group_id, "name": name, "description": params.get("description") or None,
                "is_public": False, "join_level": params.get("join_level") or "invitation_only",
                "group_category_id": category_id, "context_type": "Account",
                "account_id": self.account["id"], "sis_group_id": None,
                "workflow_state": "available"}
            return self._group_view(self._groups[group_id])

    def memberships_of(self, group_id: int, states: list[str] | None = None
                       ) -> list[dict[str, Any]]:
        with self._lock:
            self.group(group_id)
            return [dict(m) for _i, m in sorted(self._memberships.items())
                    if m["group_id"] == group_id and m["workflow_state"] != "deleted"
                    and (not states or m["workflow_state"] in states)]

    def _membership_of(self, group_id: int, user_id: int) -> dict[str, Any] | None:
        return next((m for m in self._memberships.values() if m["group_id"] == group_id
                     and m["user_id"] == user_id and m["workflow_state"] != "deleted"), None)

    def add_membership(self, group_id: int, params: dict[str, str]) -> dict[str, Any]:
        """POST /groups/:id/memberships with user_id; an existing member's membership is
        answered again ("If the membership or join request already exists, then it is
        simply returned"). GroupMembership#auto_join accepts it at once, and
        #ensure_mutually_exclusive_membership deletes the user's memberships of the other
        groups of the category (Group#peer_groups: every category but the
        student_organized and communities ones)."""
        with self._lock:
            group = self.group(group_id)
            user_id = self.find_user(params.get("user_id", "").strip())
            existing = self._membership_of(group_id, user_id)
            if existing is not None:
                return {**existing, "just_created": False}
            category = self._categories.get(group["group_category_id"], {})
            if category.get("role") not in ("student_organized", "communities"):
                for other in self._memberships.values():
                    if other["user_id"] == user_id and other["group_id"] != group_id and \
                            self._groups[other["group_id"]]["group_category_id"] == \
                            group["group_category_id"]:
                        other["workflow_state"] = "deleted"
            membership_id = self._next_membership
            self._next_membership += 1
            self._memberships[membership_id] = {
                "id": membership_id, "group_id": group_id, "user_id": user_id,
                "workflow_state": "accepted", "moderator": False}
            return {**self._memberships[membership_id], "just_created": True}

    def remove_member(self, group_id: int, user_ref: str) -> dict[str, Any]:
        """DELETE /groups/:id/users/:user_id; NotFound when not a member."""
        with self._lock:
            self.group(group_id)
            membership = (self._membership_of(group_id, int(user_ref))
                          if user_ref.isdigit() else None)
            if membership is None:
                raise NotFound(user_ref)
            membership["workflow_state"] = "deleted"
            return {"ok": True}  # GroupMembershipsController#destroy

    def remove_membership(self, group_id: int, membership_id: int) -> dict[str, Any]:
        """DELETE /groups/:id/memberships/:membership_id."""
        with self._lock:
            self.group(group_id)
            membership = self._memberships.get(membership_id)
            if membership is None or membership["group_id"] != group_id \
                    or membership["workflow_state"] == "deleted":
                raise NotFound(str(membership_id))
            membership["workflow_state"] = "deleted"
            return {"ok": True}

    # -- for tests and seeding ---------------------------------------------------------

    def add(self, name: str, unique_id: str, *, sis_user_id: str | None = None,
            email: str | None = None, sortable_name: str | None = None) -> dict[str, Any]:
        """A user made by hand in Canvas (not by rostersync)."""
        params = {"user[name]": name, "pseudonym[unique_id]": unique_id}
        if sortable_name:
            params["user[sortable_name]"] = sortable_name
        if sis_user_id:
            params["pseudonym[sis_user_id]"] = sis_user_id
        if email:
            params["communication_channel[address]"] = email
        return self.create_user(params)

    def login_state(self, user_id: int) -> str | None:
        with self._lock:
            logins = self._live_logins(user_id)
            return logins[0]["workflow_state"] if logins else None

    def group_members(self, name: str, category: str | None = None) -> set[str]:
        """The SIS ids (else Canvas ids) of the accepted members of every live group named
        ``name`` (in ``category`` when given), for tests to read back."""
        with self._lock:
            wanted = {g["id"] for g in self._groups.values() if g["name"] == name
                      and g["workflow_state"] != "deleted"
                      and (category is None
                           or self._categories[g["group_category_id"]]["name"] == category)}
            out = set()
            for m in self._memberships.values():
                if m["group_id"] in wanted and m["workflow_state"] == "accepted":
                    sis = self.user_json(m["user_id"])["sis_user_id"]
                    out.add(sis or str(m["user_id"]))
            return out

    def delete_group(self, group_id: int) -> None:
        with self._lock:
            self._groups[group_id]["workflow_state"] = "deleted"
