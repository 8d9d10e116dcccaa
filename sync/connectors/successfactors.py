"""SAP SuccessFactors as an HRIS source, over OData v2 with sync httpx
(docs/successfactors.md §3; the engine calls sources from a worker thread).

- Full pull: the effective-dated entity sets at the top level with
  ``fromDate=today-lookback&toDate=9999-12-31`` (PerPersonal, EmpJob), EmpEmployment with
  its User, then PerPerson (email, termination info), joined by personIdExternal and
  userId (sync.connectors.successfactors_entities). Date parameters choose records of
  the top level only (KBA 2853045), which is why the dated entities are not read as
  PerPerson navigations. Server-side paging by ``customPageSize`` and ``__next`` (§3.3).
- Delta: each entity set is asked which of its records changed (``lastModifiedDateTime``
  windows, and ``startDate`` windows for records that became effective since the
  watermark, §3.5); the people they belong to are then read whole, a batch at a time.
  The window opens ``delta_overlap_minutes`` before the watermark.
- One person: the same reads filtered by personIdExternal.

Who counts as a worker: a person with an EmpEmployment. EmpEmployment outlives a
termination (§3.6), whereas the PersonEmpTerminationInfo object that Entra's filter relies
on can go null during one and drop the person from a delta.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from rostersync.sync.connectors.base import FeedError, RawRecord, RecordError, SourceUnavailable
from rostersync.sync.connectors.http_retry import (
    HttpSource,
    RetryPolicy,
    answer_error,
    read_with_retries,
)
from rostersync.sync.connectors.oauth_tokens import TokenRefused
from rostersync.sync.connectors.odata import (
    OPEN_END,
    PagingError,
    datetime_literal,
    datetimeoffset_literal,
    error_detail,
    follow_pages,
    query_string,
    refused_properties,
    string_literal,
)
from rostersync.sync.connectors.successfactors_auth import credential_keys, open_client
from rostersync.sync.connectors.successfactors_auth import notes as auth_notes
from rostersync.sync.connectors.successfactors_config import DATE_FIELDS, SuccessFactorsSourceConfig
from rostersync.sync.connectors.successfactors_entities import (
    DATED,
    EMPLOYMENT,
    ENTITIES,
    JOB,
    PERSON,
    PERSONAL,
    Joined,
    Seen,
    carried,
    configured_paths,
    locate,
    nav_entity,
    queries,
    text,
    without_refused,
)
from rostersync.sync.connectors.successfactors_view import (
    PersonView,
    ViewError,
    read_path,
    signature,
)
from rostersync.sync.models import digest_of
from rostersync.sync.schema_check import describe, missing_columns

SERVICE = "/odata/v2/"
LOOKUP_BATCH = 20  # keys per filtered read (keeps the $filter short)
KEY_OF = {PERSON: "personIdExternal", PERSONAL: "personIdExternal",
          EMPLOYMENT: "personIdExternal", JOB: "userId"}


class _Refused(Exception):
    def __init__(self, entity: str, names: list[str], detail: str) -> None:
        super().__init__(detail)
        self.entity, self.names, self.detail = entity, names, detail


class SuccessFactorsSource(HttpSource):
    name = "successfactors"

    def __init__(self, config: SuccessFactorsSourceConfig, *,
                 client: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 jitter: Callable[[], float] = random.random,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._client = client
        self._sleep = sleep
        self._now = now
        self._jitter = jitter
        self._monotonic = monotonic
        self._retry = RetryPolicy(frozenset({429, 503}), config.retry_max_attempts,
                                  config.retry_max_wait_seconds, config.retry_backoff_seconds)
        self._queries = queries(config)
        self._configured = configured_paths(config)
        self._person_by_user: dict[str, str] = {}  # userId -> personIdExternal
        self._people: set[str] = set()
        self._looked_up: set[str] = set()  # userIds asked for already (found or not)
        self._carried: dict[str, set[str]] | None = None
        self._watermark: str | None = None
        self.auth: httpx.Auth | None = None  # set when the client opens (doctor reads it)

    # -- HrisSource ------------------------------------------------------------------

    def scan_full(self) -> Iterator[RawRecord]:
        started = self._now()
        self._person_by_user.clear()
        self._people.clear()
        self._looked_up.clear()
        found: dict[str, set[str]] = {e: set() for e in ENTITIES}
        joined = Joined()
        for entity in (PERSONAL, EMPLOYMENT, JOB):
            for row, _ in self._read(entity, None):
                carried(row, out=found[entity])
                joined.add(entity, row)
        self._learn_users(joined)
        seen = Seen()
        for row, where in self._read(PERSON, self.config.person_filter or None):
            carried(row, out=found[PERSON])
            record = self._joined(joined, row, where)
            if record is not None:
                seen.add(record.raw)
                yield record
        self._check_properties(seen)
        self._carried = found
        # The moment before the first page was asked for: a change saved during the
        # pull is read again by the next delta rather than lost.
        self._watermark = started.isoformat()

    def scan_delta(self, since: datetime | None) -> Iterator[RawRecord]:
        if since is None:
            raise FeedError("SuccessFactors delta: there is no watermark yet; run a full "
                            "sync first")
        started = self._now()
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        window = since - timedelta(minutes=self.config.delta_overlap_minutes)
        records = list(self._people_by_key(self._changed(window, started)))
        self._resolve_managers(records)
        yield from records
        self._watermark = started.isoformat()

    def supports_delta(self) -> bool:
        return True

    def fetch_one(self, employee_id: str) -> RawRecord | None:
        found = list(self._people_by_key([employee_id]))
        # Never trust the filter blindly: the answer must be that person or nobody.
        strays = sorted({r.key for r in found if r.key != employee_id})
        if strays or len(found) > 1:
            raise FeedError(f"SuccessFactors GET {SERVICE}{PERSON}: asked for "
                            f"personIdExternal {employee_id!r}, got {len(found)} record(s)"
                            + (f" including {strays[0]!r}" if strays else ""))
        self._resolve_managers(found)
        return found[0] if found else None

    def fields(self, record: RawRecord) -> dict[str, str | None]:
        raw, where = record.raw, record.locator
        if not isinstance(raw, dict):
            raise RecordError(where, None, None, "is not a PerPerson object")
        key = text(raw.get("personIdExternal"))
        if key is None:
            raise RecordError(where, "personIdExternal", None,
                              "is missing; every PerPerson needs its key")
        try:
            view = PersonView.build(raw, self._today(), self.config)
            out: dict[str, str | None] = {"employee_id": key}
            for name, path in self.config.paths.items():
                out[name] = read_path(view, path, as_date=name in DATE_FIELDS)
            for name, path in self.config.attributes.items():
                out[f"attributes.{name}"] = read_path(view, path, as_date=False)
        except ViewError as exc:
            raise RecordError(where, exc.field, exc.value, exc.message) from None
        if "manager_id" in out:
            out["manager_id"] = self._manager(out["manager_id"])
        out["status"] = view.status
        out["termination_date"] = view.termination_date
        return out

    def source_columns(self) -> list[str] | None:
        """The properties the last full pull's $select asked for that its answers carried,
        as ``Entity/property`` (a property no record carried is left out)."""
        if self._carried is None:
            return None
        return [f"{e}/{p}" for e in ENTITIES for p in self._queries[e].select
                if p in self._carried[e]]

    def watermark(self) -> str | None:
        return self._watermark

    def notes(self) -> list[tuple[str, str]]:
        return auth_notes(self.config, self.auth)

    def describe(self) -> str:
        return f"SuccessFactors {self.config.base_url} ({self.config.company_id})"

    def _check_properties(self, seen: Seen) -> None:
        """OData v2 returns every selected property, null when empty: a configured one
        that no object carries was removed upstream or by a proxy and would read as empty
        for everyone. Only objects that were returned can tell; a navigation nobody has
        says nothing."""
        absent = missing_columns([(k, p) for k, p in self._configured if seen.knows(p)],
                                 seen.present, self.config.optional_columns)
        if absent:
            entity = locate(absent[0].column)[0]
            raise FeedError(f"SuccessFactors GET {SERVICE}{entity}: " + describe(
                absent, "the properties returned for the $select", "property"))

    # -- reading and joining ---------------------------------------------------------

    def _joined(self, joined: Joined, row: Any, where: str) -> RawRecord | None:
        if not isinstance(row, dict):
            raise FeedError(f"SuccessFactors GET {SERVICE}{PERSON}: {where} is not an object")
        key = text(row.get("personIdExternal")) or ""
        if key and not joined.has_employment(key):
            return None  # not a worker (PerPerson also holds non-workers, §3.3)
        row = joined.join(row)
        # A record without its key still becomes a record: fields() reports it as
        # `invalid` drift instead of the whole feed failing.
        locator = f"successfactors:PerPerson {key}" if key else f"successfactors:{where}"
        if key:
            self._people.add(key)
        # Which records are current is part of the content: the same payload means
        # something else once a future-dated record takes effect.
        return RawRecord(key, digest_of([row, signature(row, self._today())]), locator, row)

    def _learn_users(self, joined: Joined) -> None:
        for key, employments in joined.employments.items():
            for employment in employments:
                user = text(employment.get("userId"))
                if user:
                    self._person_by_user[user] = key

    def _changed(self, window: datetime, started: datetime) -> list[str]:
        """The people with a record changed, or become effective, since ``window``."""
        stamp = datetimeoffset_literal(window)
        first, last = datetime_literal(window.date()), datetime_literal(started.date())
        clauses: dict[str, list[str]] = {PERSON: [f"lastModifiedDateTime ge {stamp}"]}
        for nav in self.config.delta_navigations:
            entity, inner = nav_entity(nav)
            clauses.setdefault(entity, []).append(
                f"{inner + '/' if inner else ''}lastModifiedDateTime ge {stamp}")
        for nav in self.config.delta_effective_navigations:
            entity, inner = nav_entity(nav)
            at = f"{inner + '/' if inner else ''}startDate"
            clauses.setdefault(entity, []).append(f"({at} ge {first} and {at} le {last})")
        keys: set[str] = set()
        users: set[str] = set()
        for entity, parts in clauses.items():
            key = KEY_OF[entity]
            for row, _ in self._read(entity, " or ".join(dict.fromkeys(parts)), select=[key]):
                value = text(row.get(key)) if isinstance(row, dict) else None
                if value:
                    (users if entity == JOB else keys).add(value)
        self._lookup_users(users - set(self._person_by_user))
        keys.update(self._person_by_user[u] for u in users if u in self._person_by_user)
        return sorted(keys)

    def _people_by_key(self, keys: list[str]) -> Iterator[RawRecord]:
        """The people with these keys, read whole, a batch at a time."""
        for start in range(0, len(keys), LOOKUP_BATCH):
            batch = keys[start:start + LOOKUP_BATCH]
            wanted = _any_of("personIdExternal", batch)
            joined = Joined()
            for entity in (PERSONAL, EMPLOYMENT):
                for row, _ in self._read(entity, wanted):
                    joined.add(entity, row)
            users = joined.users_of(batch)
            for part in range(0, len(users), LOOKUP_BATCH):
                for row, _ in self._read(JOB, _any_of("userId", users[part:part + LOOKUP_BATCH])):
                    joined.add(JOB, row)
            self._learn_users(joined)
            limit = self.config.person_filter
            for row, where in self._read(PERSON, f"({limit}) and ({wanted})" if limit
                                         else wanted):
                record = self._joined(joined, row, where)
                if record is not None:
                    yield record

    # -- managers --------------------------------------------------------------------

    def _manager(self, user_id: str | None) -> str | None:
        """managerId is the manager's userId (§3.2); the engine wants personIdExternal.
        An id that resolves to nobody is passed on unchanged (the engine leaves an
        unknown manager alone)."""
        if user_id is None or user_id in self.config.no_manager_values:
            return None
        return self._person_by_user.get(user_id, user_id)

    def _resolve_managers(self, records: list[RawRecord]) -> None:
        """After a delta or fetch_one the managers may be unknown: look them up by
        userId, a few per call, instead of a full pull."""
        wanted: set[str] = set()
        for record in records:
            try:
                user = self.fields(record).get("manager_id")
            except RecordError:
                continue
            if user and user not in self._people:
                wanted.add(user)
        self._lookup_users(wanted)

    def _lookup_users(self, users: Iterable[str]) -> None:
        """Learn the personIdExternal of these userIds from EmpEmployment."""
        pending = sorted(set(users) - self._looked_up)
        for start in range(0, len(pending), LOOKUP_BATCH):
            batch = pending[start:start + LOOKUP_BATCH]
            self._looked_up.update(batch)
            for row, where in self._read(EMPLOYMENT, _any_of("userId", batch),
                                         select=["personIdExternal", "userId"]):
                key = text(row.get("personIdExternal")) if isinstance(row, dict) else None
                user = text(row.get("userId")) if isinstance(row, dict) else None
                if user not in batch or not key:
                    raise FeedError(f"SuccessFactors GET {SERVICE}{EMPLOYMENT}: a lookup of "
                                    f"userId(s) {', '.join(batch)} returned {where} "
                                    f"({user or 'no userId'}), none of them")
                self._person_by_user[user] = key

    def _today(self) -> date:
        return self._now().date()

    # -- HTTP ------------------------------------------------------------------------

    def _read(self, entity: str, filter_text: str | None, *,
              select: list[str] | None = None) -> Iterator[tuple[Any, str]]:
        """Every record of one entity set (with the configured $select, or ``select``
        alone), dated ones from ``today - segment_lookback_days`` to 9999-12-31."""
        query = self._queries[entity]
        for _ in range(len(query.select) + 1):
            params = {"$format": "json", "$select": ",".join(select or query.select)}
            if filter_text:
                params["$filter"] = filter_text
            if not select and query.expand:
                params["$expand"] = ",".join(query.expand)
            params["customPageSize"] = str(self.config.page_size)
            if entity in DATED:
                start = self._today() - timedelta(days=self.config.segment_lookback_days)
                params.update(fromDate=start.isoformat(), toDate=OPEN_END.isoformat())
            if self.config.snapshot_paging:
                params["paging"] = "snapshot"
            yielded = False
            try:
                for item in self._pages(entity, params):
                    yielded = True
                    yield item
                return
            except _Refused as refused:
                if yielded:  # a later page cannot be read again without repeating rows
                    raise FeedError(f"SuccessFactors GET {SERVICE}{entity}: HTTP 400 "
                                    f"({refused.detail})") from None
                query = without_refused(query, refused.names, refused.detail,
                                        self.config.optional_columns)
                self._queries[entity] = query

    def _pages(self, entity: str, params: dict[str, str]) -> Iterator[tuple[Any, str]]:
        """Every row of every page, with where it came from (§3.3)."""
        url = self.config.base_url + SERVICE + entity
        first = f"{url}?{query_string(params)}"
        try:
            for row, _, page, number in follow_pages(first, lambda u: self._get(entity, u),
                                                     url, self.config.max_pages):
                yield row, f"{entity} page {page} row {number}"
        except PagingError as exc:
            raise FeedError(f"SuccessFactors GET {exc.url}: {exc.message}") from None

    def _open_client(self) -> httpx.Client:
        client, self.auth = open_client(self.config, self._monotonic, self._now)
        return client

    def _get(self, entity: str, url: str) -> bytes:
        """One GET, retried while throttled (429, 503) or cut off; FeedError when it
        cannot succeed."""
        what = f"SuccessFactors GET {SERVICE}{entity}"
        try:
            answer = read_with_retries(lambda: self._send("GET", url, what), self._retry, what=what,
                                       sleep=self._sleep, now=self._now, jitter=self._jitter,
                                       tls_setting="hris.verify_tls")
        except TokenRefused as exc:
            # The stored credentials were refused: nothing was read (exit 1, owned by IT).
            raise SourceUnavailable(str(exc), SourceUnavailable.AUTH) from None
        response = answer.response
        status = response.status_code
        if status == 200:
            return response.content
        code, message = error_detail(response.content)
        detail = " ".join(p for p in (code, message and f"- {message}") if p)
        if status == 400:
            names = refused_properties(code, message, entity)
            if names is not None:
                raise _Refused(entity, names, detail)
        if status in self._retry.statuses:
            why = answer.gave_up_because(self._retry, "still refused")
            raise answer_error(f"{what}: HTTP {status} ({detail or 'throttled'}); {why}",
                               status)
        if status in (401, 403):
            raise answer_error(f"{what}: HTTP {status} ({detail or 'no reason given'}); "
                               f"check the credentials named by "
                               f"{credential_keys(self.config)}", status)
        raise answer_error(f"{what}: HTTP {status}" + (f" ({detail})" if detail else ""),
                           status)


def _any_of(name: str, values: list[str]) -> str:
    return " or ".join(f"{name} eq {string_literal(v)}" for v in values)
