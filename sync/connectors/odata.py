"""OData v2 wire details, as pure functions (docs/successfactors.md §3.3, §3.4, §3.7).

No IO here: the SuccessFactors source hands in what it received and gets back values,
the next page's address, or one sentence saying what is wrong with the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from rostersync.sync.connectors.http_limits import MAX_PAGES, too_many_pages

# `/Date(ms)/` is Edm.DateTime, `/Date(ms+0000)/` Edm.DateTimeOffset (§3.4). Some
# serialisers escape the slashes as `\/`, which json.loads turns back into `/`.
_DATE = re.compile(r"/Date\((-?\d{1,15})([+-]\d{4})?\)/")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# 9999-12-31 marks an open end date (§3.4); datetime cannot hold its end of day safely.
OPEN_END = date(9999, 12, 31)


class ODataFormatError(ValueError):
    """An answer or value that does not have the OData v2 shape; the text says how."""


@dataclass(frozen=True, slots=True)
class ODataMoment:
    """A decoded `/Date(...)/` value: the instant, and whether an offset was written."""

    instant: datetime  # aware, UTC
    has_offset: bool

    @property
    def day(self) -> date:
        return self.instant.date()

    def iso(self) -> str:
        """Edm.DateTime at midnight reads as a calendar date; the rest as ISO 8601 UTC."""
        if not self.has_offset and self.instant.timetz() == _EPOCH.timetz():
            return self.instant.date().isoformat()
        return self.instant.isoformat().replace("+00:00", "Z")


def is_odata_date(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("/Date(")


def parse_odata_date(text: str) -> ODataMoment:
    """Decode `/Date(1751241600000)/` or `/Date(1751241600000+0000)/`.

    The milliseconds are the instant; the offset only says in which zone the value was
    written (SuccessFactors stores DateTimeOffset in UTC, so it is +0000 in practice).
    """
    match = _DATE.fullmatch(text.strip())
    if match is None:
        raise ODataFormatError(f"not an OData date like /Date(1751241600000)/: {text!r}")
    millis, offset = match.groups()
    try:
        instant = _EPOCH + timedelta(milliseconds=int(millis))
    except OverflowError:
        raise ODataFormatError(f"an OData date out of range: {text!r}") from None
    return ODataMoment(instant, offset is not None)


def odata_date(day: date) -> str:
    """The Edm.DateTime wire form of a calendar date (the sandbox writes these)."""
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return f"/Date({int((moment - _EPOCH) / timedelta(milliseconds=1))})/"


def odata_datetimeoffset(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"/Date({int((moment - _EPOCH) / timedelta(milliseconds=1))}+0000)/"


def value_text(value: Any, *, as_date: bool) -> str | None:
    """A property value as text: `/Date(...)/` as YYYY-MM-DD (as_date) or ISO 8601,
    booleans as true/false, None for null, blank and nested objects."""
    if is_odata_date(value):
        moment = parse_odata_date(value)
        return moment.day.isoformat() if as_date else moment.iso()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, dict | list):
        return None
    return str(value).strip() or None


# -- $filter literals (§3.4) ------------------------------------------------------------


def datetimeoffset_literal(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    stamp = moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return f"datetimeoffset'{stamp}'"


def datetime_literal(day: date) -> str:
    return f"datetime'{day.isoformat()}T00:00:00'"


def string_literal(value: str) -> str:
    """A quoted OData string; a quote inside is doubled, as OData v2 escapes it."""
    return "'" + value.replace("'", "''") + "'"


_QUERY_SAFE = "/,'():$*"


def query_string(params: dict[str, str]) -> str:
    """Parameters encoded the way OData servers expect: `$` kept, spaces as %20."""
    return "&".join(f"{key}={quote(value, safe=_QUERY_SAFE)}" for key, value in params.items())


# -- answers (§3.3, §3.7) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    results: list[Any]
    next_url: str | None


def parse_page(body: bytes) -> Page:
    """`{"d": {"results": [...], "__next": "..."}}` -> the rows and the next page's URL."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ODataFormatError(f"the answer is not JSON, it may be cut short ({exc})") from None
    envelope = document.get("d") if isinstance(document, dict) else None
    if not isinstance(envelope, dict):
        raise ODataFormatError('the answer has no "d" object (expected OData v2 JSON)')
    results = envelope.get("results")
    if not isinstance(results, list):
        raise ODataFormatError('the answer has no "d.results" list')
    next_url = envelope.get("__next")
    if next_url is not None and (not isinstance(next_url, str) or not next_url.strip()):
        raise ODataFormatError(f'"d.__next" is not a URL: {next_url!r}')
    return Page(results, next_url)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port made explicit, so that
    ``https://host`` and ``https://host:443`` are one origin (RFC 6454 §4). SAP's own
    ``__next`` links carry the default port (KBA 2489065: ``https://host:443/odata/v2/…``).
    The host is compared case-insensitively (RFC 3986 §3.2.2)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise ODataFormatError(f"the port in {url!r} is not a number from 0 to 65535") from None
    return scheme, (parts.hostname or ""), port if port is not None else _DEFAULT_PORTS.get(
        scheme)


def check_next_url(next_url: str, expected_prefix: str) -> str:
    """The next page must be the same entity on the same origin: credentials go along
    with it, so a link to another scheme, host or port is refused rather than followed.
    A userinfo part (``user@host``) is refused too: it could only smuggle a host."""
    link, want = urlsplit(next_url), urlsplit(expected_prefix)
    if origin_of(next_url) != origin_of(expected_prefix) or link.path != want.path \
            or link.username is not None:
        raise ODataFormatError(f'"d.__next" points outside {expected_prefix}: {next_url!r}')
    return next_url


def follow_pages(first_url: str, fetch: Callable[[str], bytes], expected_prefix: str,
                 max_pages: int = MAX_PAGES) -> Iterator[tuple[Any, str, int, int]]:
    """(row, url, page number, row number) for every row of every page, following
    ``__next`` until it is absent (§3.3). The fetching is handed in; a malformed page,
    a next link back to a page already read or one past ``max_pages`` raises PagingError
    naming its URL."""
    url: str | None = first_url
    seen: set[str] = set()
    number = 0
    while url is not None:
        seen.add(url)
        number += 1
        try:
            page = parse_page(fetch(url))
            next_url = page.next_url and check_next_url(page.next_url, expected_prefix)
        except ODataFormatError as exc:
            raise PagingError(url, str(exc)) from None
        if next_url in seen:
            raise PagingError(url, '"d.__next" repeats an earlier page; paging would never end')
        endless = next_url and too_many_pages(number + 1, max_pages, "hris")
        if endless:
            raise PagingError(url, endless)
        for row_number, row in enumerate(page.results, 1):
            yield row, url, number, row_number
        url = next_url


class PagingError(ODataFormatError):
    def __init__(self, url: str, message: str) -> None:
        super().__init__(message)
        self.url, self.message = url, message


def error_detail(body: bytes) -> tuple[str | None, str | None]:
    """(code, message) from `{"error": {"code", "message": {"value"}}}`, if present."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        text = body.decode("utf-8", "replace").strip()
        return None, (text[:200] or None)
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return None, None
    code = error.get("code")
    message = error.get("message")
    if isinstance(message, dict):
        message = message.get("value")
    return (str(code) if code else None), (str(message).strip() if message else None)


_REFUSED = re.compile(r"invalid property names?\s*[:=]?\s*(?P<names>.+)", re.IGNORECASE)


def refused_properties(code: str | None, message: str | None, entity: str) -> list[str] | None:
    """The properties a 400 refused as unknown, relative to ``entity``, or None when the
    answer is not such a refusal. SAP answers ``COE_PROPERTY_NOT_FOUND - Invalid property
    name`` (KBA 2545055); the names follow as ``Entity/property``, comma-separated, often
    after a ``[COE…]`` tag and before a sentence of advice."""
    match = _REFUSED.search(message or "")
    if match is None:
        return [] if code == "COE_PROPERTY_NOT_FOUND" else None
    listed = re.split(r"\.\s|\.$", match.group("names").strip(), maxsplit=1)[0]
    names = []
    for name in (n.strip().strip("'\"") for n in listed.split(",")):
        if name:
            names.append(name.removeprefix(f"{entity}/"))
    return names


def results_of(value: Any) -> list[Any] | None:
    """A navigation collection (`{"results": [...]}`, or a bare list) as a list; None
    when it is absent or deferred (`{"__deferred": ...}`: it was not expanded)."""
    if isinstance(value, dict):
        value = value.get("results")
    return value if isinstance(value, list) else None


# -- effective-dated segments (§3.5) ----------------------------------------------------


def segment_span(segment: dict[str, Any]) -> tuple[date, date]:
    """(startDate, endDate) of a time segment; an open or absent end is 9999-12-31."""
    start, end = segment.get("startDate"), segment.get("endDate")
    first = parse_odata_date(start).day if start else date.min
    last = parse_odata_date(end).day if end else OPEN_END
    return first, last


def sequence_number(segment: dict[str, Any]) -> int:
    """``seqNumber``: which of several EmpJob records on one date came last (KBA 3201077);
    0 when absent (entities with one record per date have none)."""
    value = segment.get("seqNumber")
    try:
        return int(value) if value is not None and not isinstance(value, bool) else 0
    except (TypeError, ValueError):
        raise ODataFormatError(f"seqNumber is not a whole number: {value!r}") from None


def dated_segments(value: Any) -> list[dict[str, Any]]:
    """A navigation's segments in time order: by startDate, then seqNumber, never by the
    order the API happened to list them in (ODataFormatError for a bad date)."""
    segments = [s for s in results_of(value) or [] if isinstance(s, dict)]
    return sorted(segments, key=lambda s: (segment_span(s)[0], sequence_number(s)))


def current_index(segments: list[dict[str, Any]], today: date) -> int | None:
    """The position of the segment in force on ``today``: when several are (the earlier
    one's endDate equals the next startDate, KBA 3201077), the latest-starting one, and
    among those the highest seqNumber (``segments`` as dated_segments orders them)."""
    found = None
    for index, segment in enumerate(segments):
        first, last = segment_span(segment)
        if first <= today <= last:
            found = index
    return found
