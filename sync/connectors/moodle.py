"""Moodle web services (REST) as an LMS target (docs/moodle.md §6).

Every call is ``POST {wwwroot}/webservice/rest/server.php`` with ``wsfunction``,
``moodlewsrestformat=json`` and ``wstoken``, its parameters PHP-bracket encoded (§6.1).
Moodle reports failures inside HTTP 200 answers, as an exception object or a
``warnings`` list, so no answer counts as success before its body has been read.

Users are keyed by ``idnumber`` (the HRIS key). Writes are checked by reading the user
back, because update_users answers nothing that says what it did. Wire details and the
Account mapping are pure functions in ``moodle_wire``; cohort membership (§6.4), which
follows one Account field, is kept in step at the end of this module.

The token is held by this object only; every message built from a server or network
text is redacted before it is quoted, so the token never reaches a log or a report.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import httpx

from rostersync.sync.config import secret_from_env
from rostersync.sync.connectors.base import ConnectorError, LmsTarget
from rostersync.sync.connectors.coalesce import GroupChanges, about_the_request
from rostersync.sync.connectors.http_limits import (
    AnswerLimits,
    AnswerRefused,
    DeadlinePassed,
    send_within_async,
)
from rostersync.sync.connectors.lms_http import pooled_client
from rostersync.sync.connectors.moodle_batch import MoodleBatches
from rostersync.sync.connectors.moodle_cohorts import MoodleCohorts, _q
from rostersync.sync.connectors.moodle_config import MoodleTargetConfig
from rostersync.sync.connectors.moodle_doctor import MoodleDoctor
from rostersync.sync.connectors.moodle_wire import (
    Refused,
    account_from_user,
    check_write_answer,
    clean_username,
    display_name_held,
    encode_params,
    fault_error,
    fault_of,
    http_error,
    one_line,
    refusal,
    user_fields,
    user_list,
    verify_applied,
    warnings_of,
)
from rostersync.sync.models import Account, ErrorClass

log = logging.getLogger(__name__)

ENDPOINT = "/webservice/rest/server.php"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
USER_FUNCTIONS = ("core_user_get_users", "core_user_get_users_by_field",
                  "core_user_create_users", "core_user_update_users")
COHORT_FUNCTIONS = ("core_cohort_get_cohorts", "core_cohort_get_cohort_members",
                    "core_cohort_add_cohort_members", "core_cohort_delete_cohort_members")
_TOKEN = re.compile(r"[A-Za-z0-9]+")  # Moodle reads wstoken as PARAM_ALPHANUM


def _about_the_call(error: ConnectorError) -> bool:
    return error.status != 200 and about_the_request(error)  # 200: warnings (per member)


class MoodleTarget(MoodleBatches, MoodleCohorts, MoodleDoctor, LmsTarget):
    name = "moodle"

    def __init__(self, config: MoodleTargetConfig, *, client: httpx.AsyncClient | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        self.config = config
        self._sleep = sleep
        self._jitter = jitter
        where = f"${config.token_env}" if config.token_env else "lms.token_env"
        token = (secret_from_env(config.token_env, "lms.token_env") or "").strip()
        if not token:
            raise ConnectorError("Moodle needs a web service token: name the environment "
                                 "variable that holds it in lms.token_env", ErrorClass.auth)
        if not _TOKEN.fullmatch(token):
            # Moodle would silently strip the other characters and answer invalidtoken.
            raise ConnectorError(f"the Moodle token in {where} has characters a Moodle "
                                 "token never has (letters and digits only)", ErrorClass.auth)
        self._token = token
        self._url = config.base_url + ENDPOINT
        self._owns_client = client is None
        self._client = client or pooled_client(config)
        self._cohort_ids: dict[str, int] | None = None  # managed idnumber -> cohort id
        self._limits = AnswerLimits(config.max_answer_bytes, config.request_deadline_seconds,
                                    "lms")
        self._cohort_lock = asyncio.Lock()
        self._audience_cohort_ids: dict[str, int] = {}  # audience idnumber -> cohort id
        # A call answered with warnings names the members it refused: split it, whatever
        # the warning's class, so that no refused member holds the others back.
        self._audience_adds = GroupChanges(self._add_members, shared=_about_the_call)
        self._audience_removals = GroupChanges(self._remove_members, shared=_about_the_call)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -- transport ---------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***")

    async def _call(self, function: str, params: dict[str, Any], what: str, *,
                    wait: float | None = None) -> Any:
        """One web service call, retried (bounded) while Moodle throttles or stumbles.

        Writes are retried too: a repeated create meets "username already exists",
        which the executor resolves by looking the account up (a conflict), and every
        other write sets values, so repeating it is harmless.
        """
        pairs = encode_params(params)
        query = {"wsfunction": function, "moodlewsrestformat": "json"}
        if self.config.token_in == "query":
            query["wstoken"] = self._token
        else:
            pairs.insert(0, ("wstoken", self._token))
        body = urlencode(pairs).encode()
        label = f"Moodle {function} ({what})"
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                return await self._exchange(query, body, label, wait)
            except ConnectorError as failure:
                if failure.error_class is not ErrorClass.transient \
                        or attempt == self.config.max_attempts:
                    raise
                wait = failure.retry_after
                if wait is None:
                    wait = self.config.backoff_base_seconds * 2 ** (attempt - 1) \
                        * (0.5 + self._jitter() / 2)
                if wait > self.config.max_retry_wait_seconds:
                    raise ConnectorError(f"{failure.message}; asked to wait {wait:g}s, more "
                                         f"than lms.max_retry_wait_seconds", failure.error_class,
                                         status=failure.status, retry_after=wait,
                                         code=failure.code) from None
                log.info("%s: attempt %d failed (%s); retrying in %.1fs", label, attempt,
                         failure.message, wait)
                await self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _exchange(self, query: dict[str, str], body: bytes, label: str,
                        wait: float | None = None) -> Any:
        try:
            # Within lms.max_answer_bytes and lms.request_deadline_seconds; a redirect is
            # refused, never followed (sync/connectors/http_limits.py).
            request = self._client.build_request(
                "POST", self._url, params=query, content=body, headers=FORM,
                timeout=httpx.Timeout(wait, pool=None) if wait else httpx.USE_CLIENT_DEFAULT)
            response = await send_within_async(self._client, request, self._limits,
                                               f"{label} failed")
        except AnswerRefused as exc:  # a setting must change (base_url, max_answer_bytes)
            raise ConnectorError(self._redact(str(exc)), ErrorClass.mapping) from None
        except DeadlinePassed as exc:
            raise ConnectorError(f"{label} failed: {exc}", ErrorClass.transient) from None
        except httpx.TimeoutException as exc:
            key = "lms.request_deadline_seconds" if wait else "lms.timeout_seconds"
            raise ConnectorError(f"{label} failed: no answer within "
                                 f"{wait or self.config.timeout_seconds:g}s "
                                 f"({type(exc).__name__}; {key})",
                                 ErrorClass.transient) from None
        except httpx.TransportError as exc:
            detail = self._redact(str(exc)) or "connection failed"
            raise ConnectorError(f"{label} failed: network error talking to "
                                 f"{self.config.base_url}: {type(exc).__name__}: {detail}",
                                 ErrorClass.transient) from None
        status = response.status_code
        if status != 200:
            raise http_error(label, status, response.text, response.headers.get("Retry-After"),
                             self._redact, self._url, self.config.token_env)
        try:
            data = json.loads(response.content)
        except ValueError:
            raise ConnectorError(f"{label} failed: the answer is not JSON (malformed or cut "
                                 f"short): {one_line(response.text, self._redact)!r}",
                                 ErrorClass.transient, status=status) from None
        fault = fault_of(data)
        if fault is not None:
            raise fault_error(fault, label, self._redact, self.config.token_env)
        return data

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

    def _listing_wait(self) -> float:
        """A listing is answered only once every user's details are built (5-10 ms a user
        on a 4.3 site on loopback: 5,300 users took over 30 s), so it may take up to the
        whole-request deadline rather than the per-read timeout."""
        return max(self.config.timeout_seconds, self.config.request_deadline_seconds)

    async def list_accounts(self) -> AsyncIterator[Account]:
        """Every user, from one core_user_get_users call (Moodle offers no paging, §6.3)."""
        key, value = self.config.list_criteria_key, self.config.list_criteria_value
        what = f"list of users ({key} {_q(value)})"
        data = await self._call("core_user_get_users",
                                {"criteria": [{"key": key, "value": value}]}, what,
                                wait=self._listing_wait())
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
        cohorts = await self._memberships_by_user() if self.config.cohorts else None
        for user in users:
            account = account_from_user(user, self.config)
            if cohorts is not None and account.external_key:
                self._note_cohort_drift(account, cohorts.get(int(user["id"]), set()))
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

    def _fields(self, changes: dict[str, Any], label: str) -> tuple[dict[str, Any], list[str]]:
        try:
            return user_fields(changes, self.config)
        except Refused as exc:
            raise ConnectorError(f"{label} refused before sending: {exc}", ErrorClass.data,
                                 code="refused") from None

    def _new_password(self) -> dict[str, Any]:
        mode = self.config.new_password
        if mode == "createpassword":
            return {"createpassword": 1}
        if mode == "random":
            # Never stored nor shown: SSO sites never use it, but create_users wants one.
            # Upper, lower, digit and symbol satisfy Moodle's default password policy.
            return {"password": "Rs1!" + secrets.token_urlsafe(24)}
        return {}

    async def create(self, account: Account, manager_lms_id: str | None) -> Account:
        # manager_lms_id is not used: Moodle has no manager reference (docs/moodle.md §8).
        label = f"Moodle core_user_create_users (username {_q(account.user_name)}, " \
                f"idnumber {_q(account.external_key)})"
        params = self._creation_params(account)  # the same as a batch sends for it
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
        sent = {k: v for k, v in params.items() if k not in ("password", "createpassword")}
        user = await self._read_back(user_id, sent, label)
        if self.config.cohorts:
            value = getattr(account, self.config.cohorts.field)
            await self._place_in_cohort(user_id, value, label)
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
        params, homeless = self._fields(changes, label)
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
            await self._place_in_cohort(user_id, changes[cohorts.field], label)
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
