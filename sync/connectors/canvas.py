"""Canvas LMS as a target (docs/canvas.md §7.1, §7.2, §7.4), over its REST API with async
httpx; audiences are account groups (sync.connectors.canvas_groups).

A rostersync account is a Canvas user plus the login (pseudonym) holding the user's SIS
id: the user carries the names and email, the login the login id (``user_name``), the
SIS id (the HRIS key), the integration id (``employee_number``) and whether the person
can log in (``workflow_state``). Canvas has no title, department or manager.

Nothing Canvas answers is taken on trust: a lookup that returns a user other than the
one asked for is an error, and every write is checked against its answer (or a read
back) before it counts as done. The bearer token lives only in the request headers; no
message built here contains it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import httpx

from sync.config import secret_from_env
from sync.connectors.base import ConnectorError, LmsTarget
from sync.connectors.canvas_config import CanvasTargetConfig
from sync.connectors.canvas_groups import CanvasGroups
from sync.connectors.canvas_wire import (
    LOGIN_FIELDS,
    USER_FIELDS,
    account_from_canvas,
    bearer_token,
    canvas_id,
    creation_params,
    failure,
    failure_hint,
    is_permission_refusal,
    is_throttled,
    login_params,
    managed_login,
    name_params,
    next_page,
    remaining_units,
    same,
    split_changes,
    user_params,
)
from sync.connectors.http_retry import retry_after_seconds
from sync.models import Account, ErrorClass

log = logging.getLogger(__name__)

# Answers to a read worth asking again: the server stumbled (a write is not repeated on
# these: it may have landed, and the executor owns its retries).
_RETRY_READ = frozenset({429, 500, 502, 503, 504})

# Listings carry a user's email only when asked for it (UsersController#api_index keeps
# ``include[]`` values among avatar_url, email, last_login, time_zone, uuid).
_WITH_EMAIL = {"include[]": "email"}

# "List users in account": search_term "Must be at least 3 characters"
# (SearchTermHelper::MIN_SEARCH_TERM_LENGTH); a shorter one is a 400.
MIN_SEARCH_TERM = 3


def _q(value: str | None) -> str:
    return json.dumps(value, ensure_ascii=False)


class _Answer(NamedTuple):
    """A response and its parsed JSON (None when the status was not 2xx)."""

    response: httpx.Response
    data: Any


class CanvasTarget(LmsTarget):
    name = "canvas"

    def __init__(self, config: CanvasTargetConfig, *, client: httpx.AsyncClient | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        self.config = config
        self._sleep = sleep
        self._jitter = jitter
        self._api = f"{config.base_url}/api/v1"
        self._account_path = f"/accounts/{quote(config.account_id, safe=':')}"
        self._headers = {"Accept": "application/json"}
        self._token = bearer_token(secret_from_env(config.token_env, "lms.token_env"),
                                   config.token_env)
        if self._token:
            self._headers["Authorization"] = f"Bearer {self._token}"
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            # No pool timeout: waiting for one of our own connections is not a failure
            # of the LMS; the engine bounds its concurrency to config.concurrency.
            timeout=httpx.Timeout(config.timeout_seconds, pool=None),
            verify=config.verify_tls,
            limits=httpx.Limits(max_connections=config.concurrency,
                                max_keepalive_connections=config.concurrency))
        self._pause = 0.0  # seconds the next request waits for the bucket to drain
        self._login_reads = asyncio.Semaphore(config.concurrency)
        self._groups = CanvasGroups(self)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -- transport -----------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _backoff(self, attempt: int) -> float:
        # Exponential with jitter between half and all of the step (§0: no Retry-After).
        step = self.config.backoff_base_seconds * 2 ** (attempt - 1)
        return min(self.config.max_wait_seconds, step * (0.5 + self._jitter() / 2))

    def _note_remaining(self, response: httpx.Response) -> float | None:
        left = remaining_units(response.headers.get("X-Rate-Limit-Remaining"))
        low = self.config.low_water_remaining
        if left is not None and left < low:
            self._pause = max(self._pause, (low - left) / self.config.leak_units_per_second)
        return left

    async def _call(self, method: str, url: str, what: str, *,
                    form: dict[str, str] | None = None,
                    params: dict[str, Any] | None = None) -> _Answer:
        """One call with bounded retries; returns 2xx answers and error statuses alike.

        A throttled 403 is retried whatever the method: Canvas refused it before doing
        anything (§7.1). Network errors, 5xx and unreadable 2xx bodies are retried for
        reads only.
        """
        read = method == "GET"
        attempts = self.config.max_attempts
        for attempt in range(1, attempts + 1):
            if self._pause > 0:
                pause, self._pause = min(self._pause, self.config.max_wait_seconds), 0.0
                await self._sleep(pause)
            try:
                response = await self._client.request(method, url, headers=self._headers,
                                                      data=form, params=params)
            except httpx.HTTPError as exc:
                if read and attempt < attempts:
                    await self._sleep(self._backoff(attempt))
                    continue
                raise self._network_error(exc, what) from None
            left = self._note_remaining(response)
            status = response.status_code
            throttled = status == 403 and is_throttled(status, response.text,
                                                       self.config.rate_limit_text)
            if throttled or (read and status in _RETRY_READ):
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if wait is None:
                    wait = self._backoff(attempt)
                    if throttled and left is not None:
                        # Back off until the bucket has drained to the low-water mark.
                        wait = min(self.config.max_wait_seconds, max(wait, self._pause))
                self._pause = 0.0  # this wait covers the drain
                if attempt == attempts or wait > self.config.max_wait_seconds:
                    raise self._error(response, what, attempts=attempt, wait=wait)
                await self._sleep(wait)
                continue
            if not 200 <= status < 300:
                return _Answer(response, None)
            try:
                return _Answer(response, response.json())
            except ValueError:
                if read and attempt < attempts:
                    await self._sleep(self._backoff(attempt))
                    continue
                raise ConnectorError(
                    f"Canvas {what} failed: the {status} answer is not JSON (malformed or "
                    f"cut short: {' '.join(response.text[:80].split())!r})"
                    + ("" if read else "; the change may or may not have been made"),
                    ErrorClass.transient, status=status) from None
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _network_error(self, exc: httpx.HTTPError, what: str) -> ConnectorError:
        if isinstance(exc, httpx.TimeoutException):
            why = f"no answer within {self.config.timeout_seconds:g}s"
        else:
            why = f"network error: {self._redact(str(exc)) or 'connection failed'}"
        return ConnectorError(f"Canvas {what} failed: {why} ({type(exc).__name__}, "
                              f"{self.config.base_url})", ErrorClass.transient)

    def _error(self, response: httpx.Response, what: str, *, attempts: int = 1,
               wait: float | None = None) -> ConnectorError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        error_class, text, code = failure(status, response.text, body,
                                          self.config.rate_limit_text)
        # One line; redact before cutting, or a cut could leave a prefix of the token.
        detail = " ".join(self._redact(text or response.reason_phrase).split())[:300]
        hint = failure_hint(status, error_class, attempts=attempts, wait=wait,
                            max_wait=self.config.max_wait_seconds, token_env=self.config.token_env,
                            refused=is_permission_refusal(status, body))
        return ConnectorError(f"Canvas {what} failed: {status} {detail}{hint}", error_class,
                              status=status, code=code,
                              retry_after=retry_after_seconds(response.headers.get("Retry-After")))

    # -- reads ---------------------------------------------------------------------------

    async def _pages(self, path: str, what: str,
                     params: dict[str, Any] | None = None) -> AsyncIterator[list[Any]]:
        """The pages of a list endpoint, following Link rel="next" as opaque URLs (§7.1)."""
        url: str | None = self._api + path
        query: dict[str, Any] | None = {**(params or {}), "per_page": self.config.per_page}
        seen: set[str] = set()
        page = 1
        while url is not None:
            page_what = f"{what} (GET {urlsplit(url).path}, page {page})"
            answer = await self._call("GET", url, page_what, params=query)
            if answer.data is None:
                raise self._error(answer.response, page_what)
            if not isinstance(answer.data, list):
                raise ConnectorError(f"Canvas {page_what} failed: the answer is not a JSON "
                                     "list", ErrorClass.transient)
            yield answer.data
            url = next_page(answer.response.headers.get("Link"), str(answer.response.url),
                            self._api, seen, page_what)
            query, page = None, page + 1

    async def _logins(self, user_id: str) -> list[dict[str, Any]]:
        what = f"read of the logins of user {user_id}"
        async with self._login_reads:
            out: list[dict[str, Any]] = []
            async for page in self._pages(f"/users/{quote(user_id, safe='')}/logins", what):
                out += [login for login in page if isinstance(login, dict)]
            return out

    async def _account(self, user: dict[str, Any]) -> Account:
        logins = await self._logins(canvas_id(user.get("id")) or "")
        return self._to_account(user, managed_login(user, logins))

    def _to_account(self, user: dict[str, Any], login: dict[str, Any] | None) -> Account:
        return account_from_canvas(user, login,
                                   employee_number_field=self.config.employee_number_field,
                                   active_state=self.config.active_state)

    async def _accounts(self, users: list[Any], what: str) -> list[Account]:
        usable = []
        for user in users:
            if isinstance(user, dict) and canvas_id(user.get("id")):
                usable.append(user)
            else:  # without an id it can be neither read back nor written
                log.warning("Canvas %s: skipped an entry that is not a user with an id", what)
        return list(await asyncio.gather(*(self._account(u) for u in usable)))

    async def list_accounts(self) -> AsyncIterator[Account]:
        async for page in self._pages(f"{self._account_path}/users", "list of users",
                                      _WITH_EMAIL):
            for account in await self._accounts(page, "list of users"):
                yield account

    async def _user(self, path_id: str, what: str) -> dict[str, Any] | None:
        answer = await self._call("GET", f"{self._api}/users/{path_id}", what)
        if answer.response.status_code == 404:
            return None
        if answer.data is None:
            raise self._error(answer.response, what)
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
        async for page in self._pages(f"{self._account_path}/users", what,
                                      {"search_term": term, **_WITH_EMAIL}):
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
        """Every value written must read back the same (login ids and emails: any case)."""
        for field, value in wanted.items():
            if not same(field, value, got.get(field)):
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
        user = await self._write("POST", f"{self._account_path}/users", what, form)
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
        self._check(what, wanted, {k: getattr(created, k) for k in wanted})
        if not account.active:
            return await self._write_login(created, {"active": False}, what)
        return created

    async def update(self, lms_id: str, changes: dict[str, Any], *,
                     version: str | None = None,
                     manager_lms_id: str | None = None) -> Account | None:
        if not changes:
            return None
        what = f"update of user {_q(lms_id)}"
        writable, refused, unknown = split_changes(changes, self.config.employee_number_field)
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
            if user_changes:
                account = await self._write_user(account, user_changes, what)
            login_changes = {k: v for k, v in writable.items() if k in LOGIN_FIELDS}
            if login_changes:
                account = await self._write_login(account, login_changes, what)
        if refused:
            # Said after the rest has landed, so that the op is not reported as done.
            raise ConnectorError(
                f"Canvas {what}: Canvas has no place for {', '.join(refused)}; leave the "
                "matching HRIS columns unmapped for a Canvas target (docs/canvas.md)",
                ErrorClass.mapping)
        return account

    async def _write(self, method: str, path: str, what: str,
                     form: dict[str, str]) -> dict[str, Any]:
        answer = await self._call(method, self._api + path, what, form=form)
        if answer.data is None:
            raise self._error(answer.response, what)
        if not isinstance(answer.data, dict):
            raise ConnectorError(f"Canvas {what}: the {answer.response.status_code} answer is "
                                 "not a JSON object; the change may or may not have been made",
                                 ErrorClass.transient)
        return answer.data

    async def _write_user(self, current: Account, changes: dict[str, Any],
                          what: str) -> Account:
        names, sent = user_params(current, changes)
        form = {f"user[{k}]": v for k, v in sent.items()}
        user = await self._write("PUT", f"/users/{quote(current.lms_id or '', safe='')}",
                                 what, form)
        self._check(what, sent, user)
        return replace(current, **names, email=sent.get("email", current.email))

    async def _write_login(self, current: Account, changes: dict[str, Any],
                           what: str) -> Account:
        login_id = current.extra.get("login_id")
        if not login_id:
            raise ConnectorError(f"Canvas {what} failed: user {current.lms_id} has no login "
                                 "to change", ErrorClass.data)
        by_event = "active" in changes and self.config.deactivate_by == "user_event"
        sent, state = login_params(changes, by_event=by_event,
                                   active_state=self.config.active_state,
                                   suspended_state=self.config.suspended_state)
        if sent:
            login = await self._write(
                "PUT", f"{self._account_path}/logins/{quote(login_id, safe='')}", what,
                {f"login[{k}]": v for k, v in sent.items()})
            self._check(what, sent, login)
        if by_event:
            user_path = f"/users/{quote(current.lms_id or '', safe='')}"
            await self._write("PUT", user_path, what,
                              {"user[event]": "unsuspend" if changes["active"] else "suspend"})
            # The event answers the user, not its logins: read the login back.
            logins = await self._logins(current.lms_id or "")
            login = next((lg for lg in logins if canvas_id(lg.get("id")) == login_id), {})
            self._check(what, {"workflow_state": state}, login)
        return replace(current, **changes)

    async def delete(self, lms_id: str) -> None:
        what = f"delete of user {_q(lms_id)}"
        gone = await self._write(
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
        answer = await self._call("GET", f"{self._api}{self._account_path}", what)
        if answer.data is None:
            raise self._error(answer.response, what)
        account = answer.data if isinstance(answer.data, dict) else {}
        # Reading the account needs less than managing its users: prove that too.
        async for _page in self._pages(f"{self._account_path}/users", "credential probe"):
            break
        return (f"Canvas at {self.config.base_url} (account {account.get('name', '?')} "
                f"#{canvas_id(account.get('id'))})")
