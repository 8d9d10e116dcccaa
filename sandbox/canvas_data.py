"""The Canvas sandbox's data: users, their logins, account groups (in group categories)
and their memberships, and Canvas's validation rules.

Users and logins (pseudonyms) are separate records, as in Canvas: a user has names and
an email, a login has the login id (``unique_id``), the SIS and integration ids and a
``workflow_state``. Login ids are unique per account and authentication provider
(ignoring case), SIS and integration ids per account; deleted users keep holding their
SIS id until revived with ``enable_sis_reactivation`` (docs/canvas.md §7.2).

A user's ``time_zone`` and ``locale`` are kept as Canvas keeps them (docs/canvas.md §7.5): the
zone shows only where Canvas includes it and reads as the account's default while unset;
the locale is null while unset. A login's authentication provider is given by id or type
and held by id, as Canvas's ``find_authentication_provider`` does.

Invalid input raises ``Invalid`` with the nested error body Canvas sends.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import available_timezones

from rostersync.sandbox.canvas_errors import MAX_NAME, Invalid, NotFound
from rostersync.sandbox.canvas_errors import field_error as _field_error
from rostersync.sandbox.canvas_groups_data import CanvasGroupsData

__all__ = ["MAX_NAME", "CanvasData", "Invalid", "NotFound"]

LOGIN_STATES = ("active", "suspended")
# The root account's default zone (Account#default_time_zone), what an unset user zone
# reads as; and its authentication providers (id -> auth_type) beside Canvas's own.
DEFAULT_TIME_ZONE = "America/Denver"
PROVIDERS = {7: "saml", 8: "ldap"}
# What "Show user details" always includes (UsersController#api_show_includes).
SHOW_INCLUDES = ("locale", "email")
# RFC 5646 in the shape Canvas's locales take ("de", "pt-BR", "zh-Hant"); a stand-in for
# Canvas's list of available locales [inferred].
_LOCALE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
# IANA names; Rails' friendly names ("Mountain Time (US & Canada)") are not modelled.
_ZONES = frozenset(available_timezones())


def _valid_email(address: str) -> bool:
    local, at, domain = address.partition("@")
    return bool(at and local and "." in domain and "@" not in domain and " " not in address)


class CanvasData(CanvasGroupsData):
    """One root account's users and logins, and its groups (CanvasGroupsData); safe to use
    from any thread."""

    def __init__(self, account_id: int = 1, account_name: str = "Acme Learning") -> None:
        self.account = {"id": account_id, "name": account_name, "parent_account_id": None,
                        "root_account_id": None, "workflow_state": "active",
                        "default_time_zone": DEFAULT_TIME_ZONE}
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

    def user_json(self, user_id: int, include: Iterable[str] = SHOW_INCLUDES
                  ) -> dict[str, Any]:
        """Canvas's user_json: ``email``, ``locale`` and ``time_zone`` only when included
        (lib/api/v1/user.rb), the zone as the account's default while the user has none."""
        with self._lock:
            user = self._users[user_id]
            logins = self._live_logins(user_id)
            primary = logins[0] if logins else {}
            sis = next((lg for lg in logins if lg["sis_user_id"]), primary)
            view = {
                "id": user["id"], "name": user["name"], "sortable_name": user["sortable_name"],
                "short_name": user["short_name"], "sis_user_id": sis.get("sis_user_id"),
                "integration_id": sis.get("integration_id"),
                "login_id": primary.get("unique_id"), "created_at": user["created_at"],
            }
            include = set(include)
            if "email" in include:
                view["email"] = user["email"]
            if "locale" in include:
                view["locale"] = user["locale"]
            if "time_zone" in include:
                zone = user["time_zone"]
                view["time_zone"] = zone if zone in _ZONES else DEFAULT_TIME_ZONE
            return view

    def profile_json(self, user_id: int) -> dict[str, Any]:
        """GET /users/:id/profile (ProfileController#settings, profile_json)."""
        with self._lock:
            view = self.user_json(user_id, ("email", "locale", "time_zone"))
            return {"id": view["id"], "name": view["name"], "short_name": view["short_name"],
                    "sortable_name": view["sortable_name"], "title": None, "bio": None,
                    "primary_email": view["email"], "login_id": view["login_id"],
                    "integration_id": view["integration_id"],
                    "time_zone": view["time_zone"], "locale": view["locale"]}

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

    def list_users(self, search_term: str | None = None,
                   include: Iterable[str] = ("email",)) -> list[dict[str, Any]]:
        """Live users sorted by sortable name, optionally matching a search term in
        their names, email, login ids or SIS id (ignoring case)."""
        include = set(include)
        with self._lock:
            out = []
            for user_id, user in self._users.items():
                if user["workflow_state"] == "deleted":
                    continue
                view = self.user_json(user_id, include | {"email"})
                if search_term:
                    term = search_term.casefold()
                    texts = [view["name"], view["sortable_name"], view["short_name"],
                             view["email"], view["sis_user_id"],
                             *(lg["unique_id"] for lg in self._live_logins(user_id))]
                    if not any(t and term in t.casefold() for t in texts):
                        continue
                if "email" not in include:
                    del view["email"]
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
                     **self._provider(params.get("pseudonym[authentication_provider_id]"))}
            self._check_login_ids(login, 400, "pseudonym")
            names = self._names(params, unique)
            email = params.get("communication_channel[address]") or None
            if email and not _valid_email(email):
                raise _field_error(400, "communication_channel", "address", "invalid",
                                   "is invalid")
            profile = self._profile(params, "user")
            user_id, self._next_user = self._next_user, self._next_user + 1
            login_id, self._next_login = self._next_login, self._next_login + 1
            self._users[user_id] = {"id": user_id, **names, "email": email,
                                    "time_zone": None, "locale": None, **profile,
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
            user.update(self._profile(params, None))
            # UsersController#update answers user_json with locale, email and time_zone.
            return self.user_json(user_id, ("locale", "email", "time_zone"))

    @staticmethod
    def _provider(ref: str | None) -> dict[str, Any]:
        """A login's provider by id or auth type (find_authentication_provider); an
        unknown one, or an empty one, is the 404 of its ``find``."""
        if ref is None:
            return {"authentication_provider_id": None, "authentication_provider_type": None}
        for provider_id, kind in PROVIDERS.items():
            if ref in (str(provider_id), kind):
                return {"authentication_provider_id": provider_id,
                        "authentication_provider_type": kind}
        raise NotFound(f"authentication provider {ref!r}")

    @staticmethod
    def _profile(params: dict[str, str], obj: str | None) -> dict[str, Any]:
        """user[time_zone] and user[locale] as given: an empty one clears it. A zone
        Canvas does not know is kept but reads as the account's default (User#time_zone
        answers nil for it); an unknown locale is refused [inferred: validates_locale]."""
        out: dict[str, Any] = {}
        if "user[time_zone]" in params:
            out["time_zone"] = params["user[time_zone]"].strip() or None
        if "user[locale]" in params:
            locale = params["user[locale]"].strip() or None
            if locale is not None and not _LOCALE.fullmatch(locale):
                raise _field_error(400, obj, "locale", "inclusion",
                                   "is not included in the list")
            out["locale"] = locale
        return out

    def update_login(self, login_id: int, params: dict[str, str]) -> dict[str, Any]:
        """PUT /accounts/:id/logins/:login_id with ``login[...]`` parameters (§7.2)."""
        with self._lock:
            login = self._logins.get(login_id)
            if login is None or login["workflow_state"] == "deleted":
                raise NotFound(str(login_id))
            changed = dict(login)
            if "login[authentication_provider_id]" in params:
                changed.update(self._provider(params["login[authentication_provider_id]"]))
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
