"""Moodle web services (REST) as an LMS target (docs/moodle.md §6).

Calls go through ``MoodleClient`` (moodle_client.py: the transport, §6.1, which holds the
token and redacts it from every message). Moodle reports failures inside HTTP 200
answers, so no answer counts as success before its body has been read.

Users are keyed by ``idnumber`` (the HRIS key). Writes are checked by reading the user
back, because update_users answers nothing that says what it did. Wire details and the
Account mapping are pure functions in ``moodle_wire``. The target owns three
collaborators built on the same client: the batches (``moodle_batch``), the cohorts an
account field or an audience names (``moodle_cohorts``, §6.4) and doctor's profile field
check (``moodle_doctor``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from rostersync.sync.bulk import BatchItem, BatchLimits, Outcome
from rostersync.sync.connectors.base import ConnectorError, LmsTarget
from rostersync.sync.connectors.moodle_batch import MoodleBatches
from rostersync.sync.connectors.moodle_client import MoodleClient
from rostersync.sync.connectors.moodle_cohorts import MoodleCohorts
from rostersync.sync.connectors.moodle_config import MoodleTargetConfig
from rostersync.sync.connectors.moodle_doctor import MoodleDoctor
from rostersync.sync.connectors.moodle_params import (
    creation_params,
    fields_or_refusal,
    sent_fields,
)
from rostersync.sync.connectors.moodle_params import quoted as _q
from rostersync.sync.connectors.moodle_wire import (
    account_from_user,
    check_write_answer,
    clean_username,
    display_name_held,
    refusal,
    user_list,
    verify_applied,
    warnings_of,
)
from rostersync.sync.models import Account, ErrorClass

log = logging.getLogger(__name__)

USER_FUNCTIONS = ("core_user_get_users", "core_user_get_users_by_field",
                  "core_user_create_users", "core_user_update_users")
COHORT_FUNCTIONS = ("core_cohort_get_cohorts", "core_cohort_get_cohort_members",
                    "core_cohort_add_cohort_members", "core_cohort_delete_cohort_members")


class MoodleTarget(LmsTarget):
    name = "moodle"

    def __init__(self, config: MoodleTargetConfig, *, client: httpx.AsyncClient | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        self.config = config
        self._client = MoodleClient(config, client=client, sleep=sleep, jitter=jitter)
        self._cohorts = MoodleCohorts(self._client, config)
        self._batches = MoodleBatches(self._client, config, self._cohorts, self)
        self._doctor = MoodleDoctor(self._client, config)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, function: str, params: dict[str, Any], what: str, *,
                    wait: float | None = None) -> Any:
        return await self._client.call(function, params, what, wait=wait)

    def _redact(self, text: str) -> str:
        return self._client.redact(text)

    # -- batches, cohorts and audiences, doctor: the collaborators ----------------------

    async def batch_limits(self) -> BatchLimits | None:
        return await self._batches.batch_limits()

    async def apply_batch(self, items: list[BatchItem]) -> dict[str, Outcome]:
        return await self._batches.apply_batch(items)

    async def audience_members(self, audience: Any) -> set[str]:
        return await self._cohorts.audience_members(audience)

    async def add_to_audience(self, audience: Any, lms_id: str) -> None:
        await self._cohorts.add_to_audience(audience, lms_id)

    async def remove_from_audience(self, audience: Any, lms_id: str) -> None:
        await self._cohorts.remove_from_audience(audience, lms_id)

    async def check_mapped_attributes(self) -> tuple[bool, str] | None:
        return await self._doctor.check_mapped_attributes()

    # -- reads -------------------------------------------------------------------------

    async def _lookup(self, field: str, value: str) -> list[dict[str, Any]]:
        """core_user_get_users_by_field, every hit checked against what was asked."""
        what = f"lookup by {field} {_q(value)}"
        data = await self._call("core_user_get_users_by_field",
                                {"field": field, "values": [value]}, what)
        users = user_list(data, f"Moodle {what}")
        for user in users:
            held = "" if user.get(field) is None else str(user.get(field))
            same = held == value if field in ("id", "idnumber") else \
                held.casefold() == value.casefold()
            if not same:
                raise ConnectorError(f"Moodle {what} answered with user {user['id']}, whose "
                                     f"{field} is {_q(held)}: refusing to trust the lookup",
                                     ErrorClass.conflict)
        return users

    async def _user(self, user_id: int) -> dict[str, Any] | None:
        users = await self._lookup("id", str(user_id))
        if len(users) > 1:
            raise ConnectorError(f"Moodle lookup by id {user_id} answered {len(users)} users",
                                 ErrorClass.conflict)
        return users[0] if users else None

    async def list_accounts(self) -> AsyncIterator[Account]:
        """Every user, from one core_user_get_users call (Moodle offers no paging, §6.3)."""
        key, value = self.config.list_criteria_key, self.config.list_criteria_value
        what = f"list of users ({key} {_q(value)})"
        data = await self._call("core_user_get_users",
                                {"criteria": [{"key": key, "value": value}]}, what,
                                wait=self._client.listing_wait())
        if not isinstance(data, dict) or not isinstance(data.get("users"), list):
            raise ConnectorError(f"Moodle core_user_get_users ({what}): the answer has no "
                                 "users list", ErrorClass.transient)
        warnings = warnings_of(data)
        if warnings:
            raise refusal(warnings, f"Moodle core_user_get_users ({what})", self._redact)
        users = user_list(data["users"], f"Moodle {what}")
        if len({u["id"] for u in users}) != len(users):
            raise ConnectorError(f"Moodle {what}: the answer lists a user twice",
                                 ErrorClass.transient)
        if key in ("auth", "idnumber", "username"):  # exact criteria: check every hit
            strays = [u["id"] for u in users if key in u and str(u[key]) != value]
            if strays:
                raise ConnectorError(f"Moodle {what}: user {strays[0]} does not match the "
                                     "criteria", ErrorClass.conflict)
        cohorts = await self._cohorts.memberships_by_user() if self.config.cohorts else None
        for user in users:
            account = account_from_user(user, self.config)
            if cohorts is not None and account.external_key:
                self._cohorts.note_cohort_drift(account, cohorts.get(int(user["id"]), set()))
            yield account

    async def get(self, lms_id: str) -> Account | None:
        if not lms_id.isdigit():
            return None  # Moodle ids are numbers: no such user
        user = await self._user(int(lms_id))
        return None if user is None else account_from_user(user, self.config)

    async def find_by_external_key(self, key: str) -> list[Account]:
        return [account_from_user(u, self.config) for u in await self._lookup("idnumber", key)]

    async def find_by_user_name(self, user_name: str) -> list[Account]:
        cleaned = clean_username(user_name, self.config.extended_username_chars)
        return [account_from_user(u, self.config)
                for u in await self._lookup("username", cleaned)]

    async def find_by_email(self, email: str) -> list[Account]:
        return [account_from_user(u, self.config) for u in await self._with_email(email)]

    async def _with_email(self, email: str) -> list[dict[str, Any]]:
        """Users holding ``email`` in any letter case.

        core_user_get_users_by_field matches an email exactly, letter case included (a
        4.3 site holding "Ada.Novak@acme.example" answers [] for "ada.novak@..."), while
        create_users refuses an email taken in any case. core_user_get_users matches email
        with a case-insensitive LIKE (§6.3): ask it, and keep the hits equal to the value
        ignoring case (LIKE's ``_`` and ``%`` match more than themselves).
        """
        what = f"lookup by email {_q(email)}"
        data = await self._call("core_user_get_users",
                                {"criteria": [{"key": "email", "value": email}]}, what)
        if not isinstance(data, dict) or not isinstance(data.get("users"), list):
            raise ConnectorError(f"Moodle core_user_get_users ({what}): the answer has no "
                                 "users list", ErrorClass.transient)
        if warnings_of(data):
            raise refusal(warnings_of(data), f"Moodle core_user_get_users ({what})",
                          self._redact)
        wanted = email.casefold()
        return [u for u in user_list(data["users"], f"Moodle {what}")
                if str(u.get("email") or "").casefold() == wanted]

    # -- writes ------------------------------------------------------------------------

    async def create(self, account: Account, manager_lms_id: str | None) -> Account:
        # manager_lms_id is not used: Moodle has no manager reference (docs/moodle.md §8).
        label = f"Moodle core_user_create_users (username {_q(account.user_name)}, " \
                f"idnumber {_q(account.external_key)})"
        params = creation_params(account, self.config)  # the same as a batch sends for it
        try:
            data = await self._call("core_user_create_users", {"users": [params]},
                                    f"username {_q(params['username'])}")
        except ConnectorError as exc:
            if exc.error_class is ErrorClass.data:
                await self._explain_taken(params, exc)
            raise
        if isinstance(data, dict) and warnings_of(data):
            raise refusal(warnings_of(data), label, self._redact)
        if not (isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict)
                and str(data[0].get("id", "")).isdigit()):
            raise ConnectorError(f"{label}: the answer is not one created user with an id",
                                 ErrorClass.transient)
        user_id = int(data[0]["id"])
        if str(data[0].get("username", "")).lower() != params["username"]:
            raise ConnectorError(f"{label}: Moodle answered user {user_id} with username "
                                 f"{_q(data[0].get('username'))}", ErrorClass.conflict)
        # Read back before anything more is written for user_id: an answer naming another
        # user's id must not move that user into a cohort or suspend them.
        sent = sent_fields(params)
        user = await self._read_back(user_id, sent, label)
        if self.config.cohorts:
            value = getattr(account, self.config.cohorts.field)
            await self._cohorts.place_in_cohort(user_id, value, label)
        if not account.active:
            await self.update(str(user_id), {"active": False})
            user = await self._read_back(user_id, sent, label)
        return account_from_user(user, self.config)

    async def _explain_taken(self, params: dict[str, Any], exc: ConnectorError, *,
                             but: int | None = None) -> None:
        """Without debugging, a duplicate username or email is only "Invalid parameter
        value detected" (§6.1), and update_users words a taken username as the database
        write it failed ("dmlwriteexception"): look, and call it the conflict it is."""
        for field in ("username", "email"):
            value = params.get(field)
            if not value:
                continue
            taken = await (self._with_email(value) if field == "email"
                           else self._lookup(field, value))
            taken = [u for u in taken if int(u["id"]) != but]
            if taken:
                raise ConnectorError(f"{exc.message}; {field} {_q(value)} already belongs to "
                                     f"Moodle user {taken[0]['id']}", ErrorClass.conflict,
                                     status=exc.status, code=exc.code) from None

    async def _read_back(self, user_id: int, sent: dict[str, Any], label: str) -> dict[str, Any]:
        user = await self._user(user_id)
        if user is None:
            raise ConnectorError(f"{label}: user {user_id} is not there when read back",
                                 ErrorClass.not_found)
        wrong = verify_applied(sent, user)
        if wrong:
            raise ConnectorError(f"{label} did not take effect: read back, user {user_id} "
                                 + "; ".join(wrong), ErrorClass.conflict)
        return user

    async def update(self, lms_id: str, changes: dict[str, Any], *, version: str | None = None,
                     manager_lms_id: str | None = None) -> Account | None:
        if not changes:
            return None
        label = f"Moodle core_user_update_users (user {lms_id})"
        if not lms_id.isdigit():
            raise ConnectorError(f"{label}: {_q(lms_id)} is not a Moodle user id",
                                 ErrorClass.not_found)
        user_id = int(lms_id)
        params, homeless = fields_or_refusal(changes, self.config, label)
        if params:
            data = await self._call("core_user_update_users",
                                    {"users": [{"id": user_id, **params}]}, f"user {user_id}")
            try:
                check_write_answer(data, label, self._redact, params)
            except ConnectorError as exc:
                if exc.code == "dmlwriteexception" and params.get("username"):
                    await self._explain_taken({"username": params["username"]}, exc,
                                              but=user_id)
                raise
        cohorts = self.config.cohorts
        if cohorts and cohorts.field in changes:
            await self._cohorts.place_in_cohort(user_id, changes[cohorts.field], label)
        user = await self._read_back(user_id, params, label)
        if "display_name" in changes and not display_name_held(changes["display_name"], user):
            homeless.append("display_name")
        if homeless:
            raise ConnectorError(
                f"{label}: Moodle has no field for {', '.join(homeless)} (wanted "
                + ", ".join(f"{n} {_q(changes[n])}" for n in homeless)
                + "); give it a home in lms.fields or leave it unmanaged; the other changes "
                "were applied", ErrorClass.mapping)
        return account_from_user(user, self.config)

    async def delete(self, lms_id: str) -> None:
        label = f"Moodle core_user_delete_users (user {lms_id})"
        if not lms_id.isdigit():
            raise ConnectorError(f"{label}: not a Moodle user id", ErrorClass.not_found)
        data = await self._call("core_user_delete_users", {"userids": [int(lms_id)]},
                                f"user {lms_id}")
        check_write_answer(data, label, self._redact)
        if await self._user(int(lms_id)) is not None:
            raise ConnectorError(f"{label} did not take effect: the user is still there",
                                 ErrorClass.conflict)

    # -- doctor ------------------------------------------------------------------------

    async def check(self) -> str:
        data = await self._call("core_webservice_get_site_info", {}, "credential probe")
        if not isinstance(data, dict):
            raise ConnectorError("Moodle core_webservice_get_site_info: the answer is not "
                                 "an object", ErrorClass.transient)
        offered = {f.get("name") for f in data.get("functions") or [] if isinstance(f, dict)}
        cohorts = self.config.cohorts
        needed = [*USER_FUNCTIONS, *(COHORT_FUNCTIONS if cohorts else ()),
                  *(["core_cohort_create_cohorts"] if cohorts and cohorts.create_missing
                    else [])]
        missing = [f for f in needed if f not in offered]
        if missing:
            raise ConnectorError("the Moodle token's service does not offer "
                                 + ", ".join(missing) + " (add them to the external service)",
                                 ErrorClass.mapping)
        return (f"Moodle {data.get('release', '?')} at {self.config.base_url} "
                f"(site {_q(data.get('sitename'))}, as {_q(data.get('username'))})")
