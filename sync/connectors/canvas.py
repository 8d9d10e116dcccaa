"""Canvas LMS as a target (docs/canvas.md §7.1, §7.2, §7.4), over its REST API through
sync.connectors.canvas_client; audiences are account groups (sync.connectors.canvas_groups).

A rostersync account is a Canvas user plus the login (pseudonym) holding the user's SIS
id: the user carries the names and email, the login the login id (``user_name``), the
SIS id (the HRIS key), the integration id (``employee_number``) and whether the person
can log in (``workflow_state``). Canvas has no title, department or manager.

Nothing Canvas answers is taken on trust: a lookup that returns a user other than the
one asked for is an error, and every write is checked against its answer (or a read
back) before it counts as done. The bearer token stays inside the client; no message
built here contains it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import httpx

from rostersync.sync.connectors.base import ConnectorError, LmsTarget
from rostersync.sync.connectors.canvas_attributes import (
    ATTRIBUTES,
    LOGIN_ATTRIBUTES,
    NOT_CLEARABLE,
    USER_ATTRIBUTES,
    as_param,
    same_attribute,
)
from rostersync.sync.connectors.canvas_client import CanvasClient
from rostersync.sync.connectors.canvas_config import CanvasTargetConfig
from rostersync.sync.connectors.canvas_groups import CanvasGroups
from rostersync.sync.connectors.canvas_wire import (
    LOGIN_FIELDS,
    USER_FIELDS,
    account_from_canvas,
    canvas_id,
    creation_params,
    login_params,
    managed_login,
    name_params,
    same,
    split_changes,
    user_params,
)
from rostersync.sync.models import Account, ErrorClass

log = logging.getLogger(__name__)

# Listings carry a user's email only when asked for it (UsersController#api_index keeps
# ``include[]`` values among avatar_url, email, last_login, time_zone, uuid); the time
# zone likewise, asked for only when a mapping reads it.
_WITH_EMAIL = {"include[]": "email"}
_WITH_EMAIL_AND_ZONE = {"include[]": ["email", "time_zone"]}

# "List users in account": search_term "Must be at least 3 characters"
# (SearchTermHelper::MIN_SEARCH_TERM_LENGTH); a shorter one is a 400.
MIN_SEARCH_TERM = 3


def _q(value: str | None) -> str:
    return json.dumps(value, ensure_ascii=False)


class CanvasTarget(LmsTarget):
    name = "canvas"

    def __init__(self, config: CanvasTargetConfig, *, client: httpx.AsyncClient | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        self.config = config
        # The transport (session, token, paging, pacing, retries, error answers), shared
        # with the audience half.
        self._api = CanvasClient(config, client=client, sleep=sleep, jitter=jitter)
        self._account_path = self._api.account_path
        self._login_reads = asyncio.Semaphore(config.concurrency)
        self._groups = CanvasGroups(self._api, config.groups)
        # The Canvas attributes [mapping.attributes] names (sync.connectors.canvas_attributes).
        self._mapped = config.mapped_attributes
        self._include = _WITH_EMAIL_AND_ZONE if "time_zone" in self._mapped else _WITH_EMAIL

    async def aclose(self) -> None:
        await self._api.aclose()

    # -- reads ---------------------------------------------------------------------------

    async def _logins(self, user_id: str) -> list[dict[str, Any]]:
        what = f"read of the logins of user {user_id}"
        async with self._login_reads:
            return await self._api.listing(f"/users/{quote(user_id, safe='')}/logins", what)

    async def _account(self, user: dict[str, Any]) -> Account:
        user_id = canvas_id(user.get("id")) or ""
        logins = await self._logins(user_id)
        missing = [n for n in USER_ATTRIBUTES if n in self._mapped and n not in user]
        if missing:
            # Listings never carry the locale, "Show user details" never the zone; the
            # user's profile has both (ProfileController#settings, profile_json).
            profile = await self._profile(user_id)
            user = {**user, **{n: profile.get(n) for n in missing}}
        return self._to_account(user, managed_login(user, logins))

    async def _profile(self, user_id: str) -> dict[str, Any]:
        what = f"read of the profile of user {user_id}"
        async with self._login_reads:
            answer = await self._api.call("GET", f"/users/{quote(user_id, safe='')}/profile",
                                          what)
        if answer.data is None:
            raise self._api.error(answer.response, what)
        return answer.data if isinstance(answer.data, dict) else {}

    def _to_account(self, user: dict[str, Any], login: dict[str, Any] | None) -> Account:
        return account_from_canvas(user, login,
                                   employee_number_field=self.config.employee_number_field,
                                   active_state=self.config.active_state,
                                   attributes=self._mapped)

    async def _accounts(self, users: list[Any], what: str) -> list[Account]:
        usable = []
        for user in users:
            if isinstance(user, dict) and canvas_id(user.get("id")):
                usable.append(user)
            else:  # without an id it can be neither read back nor written
                log.warning("Canvas %s: skipped an entry that is not a user with an id", what)
        return list(await asyncio.gather(*(self._account(u) for u in usable)))

    async def list_accounts(self) -> AsyncIterator[Account]:
        async for page in self._api.pages(f"{self._account_path}/users", "list of users",
                                          self._include):
            for account in await self._accounts(page, "list of users"):
                yield account

    async def _user(self, path_id: str, what: str) -> dict[str, Any] | None:
        answer = await self._api.call("GET", f"/users/{path_id}", what)
        if answer.response.status_code == 404:
            return None
        if answer.data is None:
            raise self._api.error(answer.response, what)
        if not isinstance(answer.data, dict) or not canvas_id(answer.data.get("id")):
            raise ConnectorError(f"Canvas {what} failed: the answer is not a user object",
                                 ErrorClass.transient)
        return answer.data

    async def get(self, lms_id: str) -> Account | None:
        what = f"read of user {_q(lms_id)}"
        user = await self._user(quote(lms_id, safe=""), what)
        if user is None:
            return None
        if canvas_id(user["id"]) != lms_id:
            raise ConnectorError(f"Canvas {what} answered with user {canvas_id(user['id'])}",
                                 ErrorClass.conflict)
        return await self._account(user)

    async def find_by_external_key(self, key: str) -> list[Account]:
        what = f"lookup of sis_user_id {_q(key)}"
        user = await self._user("sis_user_id:" + quote(key, safe=""), what)
        if user is None:
            return []
        got = user.get("sis_user_id")
        if got != key:
            shown = "no sis_user_id (can the token's user read SIS ids?)" \
                if got in (None, "") else f"sis_user_id {_q(str(got))}"
            raise ConnectorError(f"Canvas {what} answered with user {canvas_id(user['id'])}, "
                                 f"which has {shown}", ErrorClass.conflict)
        account = await self._account(user)
        return [account]

    async def _search(self, term: str, field: str, what: str) -> list[Account]:
        """Account users matching ``search_term``, kept only where ``field`` (login_id or
        email) equals the term: a search matches parts of names and ids too."""
        if len(term) < MIN_SEARCH_TERM:
            raise ConnectorError(f"Canvas {what} cannot be made: Canvas searches need at least "
                                 f"{MIN_SEARCH_TERM} characters", ErrorClass.data)
        hits: list[Any] = []
        async for page in self._api.pages(f"{self._account_path}/users", what,
                                          {"search_term": term, **self._include}):
            hits += [u for u in page if isinstance(u, dict)
                     and same("email", term, u.get(field))]
        found = await self._accounts(hits, what)
        key = "user_name" if field == "login_id" else "email"
        return [a for a in found if same(key, term, getattr(a, key))]

    async def find_by_user_name(self, user_name: str) -> list[Account]:
        return await self._search(user_name, "login_id", f"search for login {_q(user_name)}")

    async def find_by_email(self, email: str) -> list[Account]:
        return await self._search(email, "email", f"search for email {_q(email)}")

    # -- writes --------------------------------------------------------------------------

    def _check(self, what: str, wanted: dict[str, Any], got: dict[str, Any]) -> None:
        """Every value written must read back the same (login ids and emails: any case;
        mapped attributes as text)."""
        for field, value in wanted.items():
            if not (same_attribute(value, got.get(field)) if field in ATTRIBUTES
                    else same(field, value, got.get(field))):
                raise ConnectorError(f"Canvas {what} did not take: {field} reads back as "
                                     f"{_q(got.get(field))}, not {_q(value)}",
                                     ErrorClass.conflict)

    async def create(self, account: Account, manager_lms_id: str | None) -> Account:
        # manager_lms_id is ignored: Canvas has no manager reference.
        what = f"create of login {_q(account.user_name)}"
        if account.external_key:
            what += f" (sis_user_id {_q(account.external_key)})"
        if not account.user_name.strip():
            raise ConnectorError(f"Canvas {what} failed: the account has no login id",
                                 ErrorClass.data)
        form = creation_params(
            account, employee_number_field=self.config.employee_number_field,
            authentication_provider_id=self.config.authentication_provider_id,
            enable_sis_reactivation=self.config.enable_sis_reactivation)
        user = await self._api.write("POST", f"{self._account_path}/users", what, form)
        if not canvas_id(user.get("id")):
            raise ConnectorError(f"Canvas {what}: the answer is not a user object; the user "
                                 "may or may not exist", ErrorClass.transient)
        # Read back: the answer has neither the email (UsersController#create_user renders
        # user_json with "locale" only) nor the login's state.
        created = await self.get(canvas_id(user["id"]) or "")
        if created is None:
            raise ConnectorError(f"Canvas {what}: user {canvas_id(user['id'])} was created but "
                                 "cannot be read back", ErrorClass.transient)
        wanted = {k: getattr(account, k) for k in ("external_key", "user_name", "given_name",
                                                   "family_name", "display_name", "email")}
        wanted["display_name"] = account.display_name or name_params(
            account.given_name, account.family_name, "")["short_name"]
        if self.config.employee_number_field == "integration_id":
            wanted["employee_number"] = account.employee_number
        got = {k: getattr(created, k) for k in wanted}
        for name, value in account.attributes.items():
            if name in self._mapped and as_param(value):  # an empty one is not sent
                wanted[name], got[name] = value, created.attributes.get(name)
        self._check(what, wanted, got)
        if not account.active:
            return await self._write_login(created, {"active": False}, what)
        return created

    async def update(self, lms_id: str, changes: dict[str, Any], *,
                     version: str | None = None,
                     manager_lms_id: str | None = None) -> Account | None:
        if not changes:
            return None
        what = f"update of user {_q(lms_id)}"
        writable, refused, unknown = split_changes(changes, self.config.employee_number_field,
                                                   self._mapped)
        if unknown:
            raise ConnectorError(f"Canvas {what} failed: unknown account field "
                                 f"{unknown[0]!r}", ErrorClass.mapping)
        account: Account | None = None
        if writable:
            account = await self.get(lms_id)
            if account is None:
                raise ConnectorError(f"Canvas {what} failed: 404 the user no longer exists",
                                     ErrorClass.not_found, status=404)
            user_changes = {k: v for k, v in writable.items() if k in USER_FIELDS}
            user_attributes = {k: v for k, v in writable.items() if k in USER_ATTRIBUTES}
            if user_changes or user_attributes:
                account = await self._write_user(account, user_changes, what,
                                                 user_attributes)
            login_changes = {k: v for k, v in writable.items() if k in LOGIN_FIELDS}
            login_attributes = {k: v for k, v in writable.items() if k in LOGIN_ATTRIBUTES}
            if login_changes or login_attributes:
                account = await self._write_login(account, login_changes, what,
                                                  login_attributes)
        if refused:
            # Said after the rest has landed, so that the op is not reported as done.
            uncleared = [k for k in refused if k in NOT_CLEARABLE]
            if uncleared:
                raise ConnectorError(
                    f"Canvas {what}: Canvas cannot clear {uncleared[0]} "
                    f"({NOT_CLEARABLE[uncleared[0]]}); give its expression in "
                    "mapping.attributes a default", ErrorClass.mapping)
            raise ConnectorError(
                f"Canvas {what}: Canvas has no place for {', '.join(refused)}; leave the "
                "matching HRIS columns unmapped for a Canvas target (docs/canvas.md)",
                ErrorClass.mapping)
        return account

    async def _write_user(self, current: Account, changes: dict[str, Any], what: str,
                          attributes: dict[str, Any] | None = None) -> Account:
        """Names and email (``changes``) and mapped user attributes in one PUT; its
        answer holds all of them (UsersController#update: locale, email, time_zone)."""
        names: dict[str, Any]  # Account fields, given to dataclasses.replace
        names, sent = user_params(current, changes) if changes else ({}, {})
        sent.update({k: as_param(v) for k, v in (attributes or {}).items()})
        form = {f"user[{k}]": v for k, v in sent.items()}
        user = await self._api.write("PUT", f"/users/{quote(current.lms_id or '', safe='')}",
                                     what, form)
        self._check(what, sent, user)
        return replace(current, **names, email=sent.get("email", current.email),
                       attributes={**current.attributes, **(attributes or {})})

    async def _write_login(self, current: Account, changes: dict[str, Any], what: str,
                           attributes: dict[str, Any] | None = None) -> Account:
        login_id = current.extra.get("login_id")
        if not login_id:
            raise ConnectorError(f"Canvas {what} failed: user {current.lms_id} has no login "
                                 "to change", ErrorClass.data)
        by_event = "active" in changes and self.config.deactivate_by == "user_event"
        sent, state = login_params(changes, by_event=by_event,
                                   active_state=self.config.active_state,
                                   suspended_state=self.config.suspended_state)
        sent.update({k: as_param(v) for k, v in (attributes or {}).items()})
        if sent:
            login = await self._put_login(login_id, sent, what)
            self._check(what, sent, login)
        if by_event:
            user_path = f"/users/{quote(current.lms_id or '', safe='')}"
            await self._api.write("PUT", user_path, what,
                                  {"user[event]": "unsuspend" if changes["active"] else "suspend"})
            # The event answers the user, not its logins: read the login back.
            logins = await self._logins(current.lms_id or "")
            login = next((lg for lg in logins if canvas_id(lg.get("id")) == login_id), {})
            self._check(what, {"workflow_state": state}, login)
        return replace(current, **changes,
                       attributes={**current.attributes, **(attributes or {})})

    async def _put_login(self, login_id: str, sent: dict[str, str],
                         what: str) -> dict[str, Any]:
        try:
            return await self._api.write(
                "PUT", f"{self._account_path}/logins/{quote(login_id, safe='')}", what,
                {f"login[{k}]": v for k, v in sent.items()})
        except ConnectorError as exc:
            provider = sent.get("authentication_provider_id")
            if provider is None or exc.error_class is not ErrorClass.not_found:
                raise
            # Canvas looks the provider up before the login (find_authentication_provider):
            # its 404 is most likely the mapped provider's, and not a reason to forget the
            # account.
            raise ConnectorError(
                f"Canvas {what} failed: 404 for authentication_provider_id {_q(provider)}: "
                "no active authentication provider of that id or type (or the login is "
                "gone); check the mapping.attributes expression", ErrorClass.mapping,
                status=404) from None

    async def delete(self, lms_id: str) -> None:
        what = f"delete of user {_q(lms_id)}"
        gone = await self._api.write(
            "DELETE", f"{self._account_path}/users/{quote(lms_id, safe='')}", what, {})
        if canvas_id(gone.get("id")) != lms_id:
            raise ConnectorError(f"Canvas {what}: the answer names user "
                                 f"{_q(canvas_id(gone.get('id')))}", ErrorClass.conflict)

    # -- audiences: account groups in one category (sync.connectors.canvas_groups) -------

    async def audience_members(self, audience: Any) -> set[str]:
        return await self._groups.members(audience)

    async def add_to_audience(self, audience: Any, lms_id: str) -> None:
        await self._groups.add(audience, lms_id)

    async def remove_from_audience(self, audience: Any, lms_id: str) -> None:
        await self._groups.remove(audience, lms_id)

    # -- doctor --------------------------------------------------------------------------

    async def check(self) -> str:
        what = f"read of account {self.config.account_id}"
        answer = await self._api.call("GET", self._account_path, what)
        if answer.data is None:
            raise self._api.error(answer.response, what)
        account = answer.data if isinstance(answer.data, dict) else {}
        # Reading the account needs less than managing its users: prove that too.
        async for _page in self._api.pages(f"{self._account_path}/users", "credential probe"):
            break
        return (f"Canvas at {self.config.base_url} (account {account.get('name', '?')} "
                f"#{canvas_id(account.get('id'))})")
