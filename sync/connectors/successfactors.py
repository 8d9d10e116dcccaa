"""SAP SuccessFactors as an HRIS source, over OData v2 with sync httpx
(docs/successfactors.md §3; the engine calls sources from a worker thread).

- Full pull: ``GET /odata/v2/PerPerson`` with the navigations that carry names, email,
  employment, user, job, department, manager and status ($expand/$select derived from
  the configured paths), ``fromDate=today&toDate=9999-12-31`` so that future-dated
  segments such as a scheduled termination are visible (§3.5, §3.6), server-side paging
  by ``customPageSize`` and ``__next`` (§3.3).
- Delta: the same query ORing ``lastModifiedDateTime`` windows of PerPerson and its
  navigations, plus ``startDate`` windows for segments that became effective since the
  watermark (§3.5). The window opens ``delta_overlap_minutes`` before the watermark.
- One person: the same query filtered by ``personIdExternal``.

Raw records are the PerPerson objects as sent; ``fields()`` picks the current
employment and segments (sync.connectors.successfactors_view) and maps them to
canonical fields.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from sync.config import secret_from_env
from sync.connectors.base import FeedError, RawRecord, RecordError
from sync.connectors.http_retry import (
    HttpSource,
    RetryPolicy,
    answer_error,
    read_with_retries,
)
from sync.connectors.odata import (
    OPEN_END,
    PagingError,
    datetime_literal,
    datetimeoffset_literal,
    error_detail,
    follow_pages,
    query_string,
    results_of,
    string_literal,
)
from sync.connectors.successfactors_config import (
    DATE_FIELDS,
    NAVIGATIONS,
    SuccessFactorsSourceConfig,
)
from sync.connectors.successfactors_view import (
    PersonView,
    ViewError,
    read_path,
    signature,
    text_of,
)
from sync.models import digest_of
from sync.schema_check import describe, missing_columns

ENTITY = "/odata/v2/PerPerson"
LOOKUP_BATCH = 20  # manager userIds per lookup call (keeps the $filter short)


class SuccessFactorsSource(HttpSource):
    name = "successfactors"

    def __init__(self, config: SuccessFactorsSourceConfig, *,
                 client: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 jitter: Callable[[], float] = random.random) -> None:
        self.config = config
        self._client = client
        self._sleep = sleep
        self._now = now
        self._jitter = jitter
        self._retry = RetryPolicy(frozenset({429, 503}), config.retry_max_attempts,
                                  config.retry_max_wait_seconds, config.retry_backoff_seconds)
        self._entity_url = config.base_url + ENTITY
        self._select, self._expand = config.select_and_expand()
        self._configured = _configured_paths(config)
        self._person_by_user: dict[str, str] = {}  # userId -> personIdExternal
        self._people: set[str] = set()
        self._looked_up: set[str] = set()  # userIds asked for already (found or not)
        self._watermark: str | None = None

    # -- HrisSource ------------------------------------------------------------------

    def scan_full(self) -> Iterator[RawRecord]:
        started = self._now()
        self._person_by_user.clear()
        self._people.clear()
        self._looked_up.clear()
        seen = _Seen()
        for row, where in self._rows(self.config.person_filter):
            seen.add(row)
            yield self._record(row, where)
        self._check_properties(seen)
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
        stamp = datetimeoffset_literal(window)
        changed = [f"lastModifiedDateTime ge {stamp}"] + [
            f"{nav}/lastModifiedDateTime ge {stamp}" for nav in self.config.delta_navigations]
        # Future-dated changes are caught when they become effective, not only when
        # they were entered (§3.5, Entra's template).
        first, last = datetime_literal(window.date()), datetime_literal(started.date())
        changed += [f"({nav}/startDate ge {first} and {nav}/startDate le {last})"
                    for nav in self.config.delta_effective_navigations]
        records = [self._record(row, where) for row, where in
                   self._rows(f"({self.config.person_filter}) and ({' or '.join(changed)})")]
        self._resolve_managers(records)
        yield from records
        self._watermark = started.isoformat()

    def supports_delta(self) -> bool:
        return True

    def fetch_one(self, employee_id: str) -> RawRecord | None:
        wanted = f"personIdExternal eq {string_literal(employee_id)}"
        found = [self._record(row, where) for row, where in
                 self._rows(f"({self.config.person_filter}) and {wanted}")]
        # Never trust the filter blindly: the answer must be that person or nobody.
        strays = sorted({r.key for r in found if r.key != employee_id})
        if strays or len(found) > 1:
            raise FeedError(f"SuccessFactors GET {ENTITY}: asked for personIdExternal "
                            f"{employee_id!r}, got {len(found)} record(s)"
                            + (f" including {strays[0]!r}" if strays else ""))
        self._resolve_managers(found)
        return found[0] if found else None

    def fields(self, record: RawRecord) -> dict[str, str | None]:
        raw, where = record.raw, record.locator
        if not isinstance(raw, dict):
            raise RecordError(where, None, None, "is not a PerPerson object")
        key = text_of(raw.get("personIdExternal"))
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

    def watermark(self) -> str | None:
        return self._watermark

    def describe(self) -> str:
        return f"SuccessFactors {self.config.base_url} ({self.config.company_id})"

    def _check_properties(self, seen: _Seen) -> None:
        """OData v2 returns every selected property, null when empty: a configured one
        that no object carries was renamed or removed upstream (or by a proxy) and would
        read as empty for everyone. Only objects that were returned can tell; a
        navigation nobody has says nothing."""
        absent = missing_columns([(k, p) for k, p in self._configured if seen.knows(p)],
                                 seen.present, self.config.optional_columns)
        if absent:
            raise FeedError(f"SuccessFactors GET {ENTITY}: " + describe(
                absent, "the properties returned for the $select", "property"))

    # -- records and managers ------------------------------------------------------------

    def _record(self, row: Any, where: str) -> RawRecord:
        if not isinstance(row, dict):
            raise FeedError(f"SuccessFactors GET {ENTITY}: {where} is not an object")
        key = text_of(row.get("personIdExternal")) or ""
        # A record without its key still becomes a record: fields() reports it as
        # `invalid` drift instead of the whole feed failing.
        locator = f"successfactors:PerPerson {key}" if key else f"successfactors:{where}"
        self._learn(row, key)
        # Which segments are current is part of the content: the same payload means
        # something else once a future-dated segment takes effect.
        as_of = signature(row, self._today())
        return RawRecord(key, digest_of([row, as_of]), locator, row)

    def _learn(self, row: dict[str, Any], key: str) -> None:
        if not key:
            return
        self._people.add(key)
        for employment in results_of(row.get("employmentNav")) or []:
            user = text_of(employment.get("userId")) if isinstance(employment, dict) else None
            if user:
                self._person_by_user[user] = key

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
            if user and user not in self._people and user not in self._looked_up:
                wanted.add(user)
        pending = sorted(wanted)
        for start in range(0, len(pending), LOOKUP_BATCH):
            batch = pending[start:start + LOOKUP_BATCH]
            self._looked_up.update(batch)
            clauses = " or ".join(f"employmentNav/userId eq {string_literal(u)}" for u in batch)
            params = {"$format": "json", "$filter": clauses, "$expand": "employmentNav",
                      "$select": "personIdExternal,employmentNav/userId"}
            for row, where in self._pages(params):
                key = text_of(row.get("personIdExternal")) if isinstance(row, dict) else None
                users = {text_of(e.get("userId")) for e in results_of(
                    row.get("employmentNav")) or [] if isinstance(e, dict)} if key else set()
                if not users & set(batch):
                    raise FeedError(f"SuccessFactors GET {ENTITY}: a lookup of userId(s) "
                                    f"{', '.join(batch)} returned {where} "
                                    f"({key or 'no key'}), who has none of them")
                self._learn(row, key)

    def _today(self) -> date:
        return self._now().date()

    # -- HTTP ------------------------------------------------------------------------

    def _rows(self, person_filter: str) -> Iterator[tuple[Any, str]]:
        today = self._today()
        params = {"$format": "json", "$filter": person_filter, "$expand": self._expand,
                  "$select": self._select, "customPageSize": str(self.config.page_size),
                  "fromDate": (today - timedelta(days=self.config.segment_lookback_days))
                  .isoformat(), "toDate": OPEN_END.isoformat()}
        if self.config.snapshot_paging:
            params["paging"] = "snapshot"
        yield from self._pages(params)

    def _pages(self, params: dict[str, str]) -> Iterator[tuple[Any, str]]:
        """Every row of every page, with where it came from (§3.3)."""
        first = f"{self._entity_url}?{query_string(params)}"
        try:
            for row, _, page, number in follow_pages(first, self._get, self._entity_url):
                yield row, f"PerPerson page {page} row {number}"
        except PagingError as exc:
            raise FeedError(f"SuccessFactors GET {exc.url}: {exc.message}") from None

    def _open_client(self) -> httpx.Client:
        # Read at connect time; secrets never appear in messages. The client keeps
        # the session cookie SuccessFactors sets on the first answer (§3.1).
        config = self.config
        headers = {"Accept": "application/json"}
        auth = None
        if config.auth == "basic":
            password = secret_from_env(config.password_env, "hris.password_env")
            auth = httpx.BasicAuth(f"{config.username}@{config.company_id}", password or "")
        else:
            token = secret_from_env(config.token_env, "hris.token_env")
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(auth=auth, headers=headers, timeout=config.timeout_seconds,
                            verify=config.verify_tls)

    def _get(self, url: str) -> bytes:
        """One GET, retried while throttled (429, 503) or cut off; FeedError when it
        cannot succeed."""
        what = f"SuccessFactors GET {ENTITY}"
        answer = read_with_retries(lambda: self._http().get(url), self._retry, what=what,
                                   sleep=self._sleep, now=self._now, jitter=self._jitter,
                                   tls_setting="hris.verify_tls")
        response = answer.response
        status = response.status_code
        if status == 200:
            return response.content
        code, message = error_detail(response.content)
        detail = " ".join(p for p in (code, message and f"- {message}") if p)
        if status in self._retry.statuses:
            why = answer.gave_up_because(self._retry, "still refused")
            raise answer_error(f"{what}: HTTP {status} ({detail or 'throttled'}); {why}",
                               status)
        if status in (401, 403):
            names = (f"hris.username and hris.password_env ({self.config.password_env})"
                     if self.config.auth == "basic"
                     else f"hris.token_env ({self.config.token_env})")
            raise answer_error(f"{what}: HTTP {status} ({detail or 'no reason given'}); "
                               f"check the credentials named by {names}", status)
        raise answer_error(f"{what}: HTTP {status}" + (f" ({detail})" if detail else ""),
                           status)


def _configured_paths(config: SuccessFactorsSourceConfig) -> list[tuple[str, str]]:
    """(config key, path) for every alternative of every configured path."""
    named = [(f"hris.fields.{name}", path) for name, path in config.paths.items()]
    named += [(f"hris.attributes.{name}", path) for name, path in config.attributes.items()]
    return [(key, alt) for key, path in named for alt in path.split("|")]


class _Seen:
    """Which configured paths the returned objects carried, as config paths
    ("job.departmentNav.name_localized"), and which navigations held any object."""

    def __init__(self) -> None:
        self.present: set[str] = set()
        self._reached: set[str] = {""}  # "" is PerPerson itself

    def add(self, row: Any) -> None:
        if isinstance(row, dict):
            self._walk(row, "", [""])

    def _walk(self, obj: dict[str, Any], nav: str, prefixes: list[str]) -> None:
        for name, value in obj.items():
            if name == "__metadata" or (isinstance(value, dict) and "__deferred" in value):
                continue
            child = f"{nav}/{name}" if nav else name
            items = results_of(value) if isinstance(value, dict) and "results" in value \
                else ([value] if isinstance(value, dict) else None)
            if items is None:
                self.present.update(f"{p}{name}" for p in prefixes)
                continue
            inner = [f"{p}{name}." for p in prefixes] + [
                f"{head}." for head, full in NAVIGATIONS.items() if full == child]
            for item in items or []:
                if isinstance(item, dict):
                    self._reached.update(i.rstrip(".") for i in inner)
                    self._walk(item, child, inner)

    def knows(self, path: str) -> bool:
        """Whether an object that would carry ``path`` was returned at all."""
        return path.rpartition(".")[0] in self._reached
