"""A SuccessFactors-speaking HRIS on loopback (OData v2 JSON), for tests and the demo.

It serves ``GET /odata/v2/PerPerson``, ``PerPersonal``, ``EmpEmployment`` and ``EmpJob``
(sandbox.successfactors_entities) and ``POST /oauth/token`` (sandbox.successfactors_oauth)
the way docs/successfactors.md §3 describes them:

- ``$format=json`` answers as ``{"d": {"results": [...], "__next": "..."}}``; navigations
  are inlined when named in ``$expand`` (collections as ``{"results": [...]}``), deferred
  otherwise; ``$select`` limits properties, including ``nav/property`` paths.
- ``$filter`` with eq/ne/gt/ge/lt/le, and/or/not, parentheses, ``datetimeoffset'…'`` and
  ``datetime'…'`` literals; a path through a navigation matches if any element does,
  across every segment of effective-dated ones (§3.5).
- ``fromDate``..``toDate`` choose the records of an effective-dated *top-level* entity
  (EmpJob, PerPersonal) that overlap the range; expanded navigations come back as of
  today, or ``asOfDate`` (KBA 2853045). ``asOfDate`` with ``fromDate``/``toDate`` is a
  400 (§3.5). Job records of one date are listed latest ``seqNumber`` first (KBA 3201077).
- ``__next`` carries the explicit port of the origin the client addressed (KBA 2489065).
- An unknown ``$select`` property is a 400 ``COE_PROPERTY_NOT_FOUND`` (KBA 2545055).
- Server-side paging: ``customPageSize`` (default and ceiling 1000) with ``$skiptoken``
  in ``__next``; ``paging=snapshot`` pins the result set at the first page; ``$top`` and
  ``$skip`` for client-side paging (§3.3).
- Auth: Basic ``username@companyId:password``, a fixed bearer token, or tokens issued
  for a signed SAML assertion that expire (§3.1); errors as
  ``{"error": {"code", "message": {"lang", "value"}}}`` (§3.7).
- A ``fault`` hook answers instead of the tenant (throttling, error bodies) or cuts the
  real answer short (``Truncated``).

    with SuccessFactorsSandbox(company_id="ACME", username="api", password="pw") as hris:
        hris.put(person("1001", "Lena", "Vogt"))
        hris.base_url  # "http://127.0.0.1:PORT"

Foreground, for the demo:
``python -m rostersync.sandbox.successfactors --port 8082 --company-id ACME --username api
--password pw --people 30``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from rostersync.sandbox.serving import HOST, AppSandbox, LoopbackServer, run_from_command_line
from rostersync.sandbox.successfactors_data import (
    OPEN_END,
    ODataRefusal,
    PeopleStore,
    organisation,
    parse_filter,
    render,
)
from rostersync.sandbox.successfactors_entities import (
    ENTITIES,
    PREFIX,
    dated,
    entity_uri,
    known_properties,
    request_origin,
    rows_of,
)
from rostersync.sandbox.successfactors_oauth import TokenIssuer, TokenRefusal

ENTITY_PATH = "/odata/v2/PerPerson"
SERVICE_PATH = "/odata/v2/"
MAX_PAGE = 1000  # SAP's default and ceiling for customPageSize (§3.3)
_QUERY_SAFE = "$/,'():"
AUTH_FAILED = ("Authentication failed. You have entered an incorrect username or password "
               "(status code = 4).")


@dataclass(frozen=True)
class Truncated:
    """A fault answer meaning: serve the real answer, but only its first half."""


Reply = tuple[int, dict[str, str], bytes]
# (method, path, raw query) -> an answer instead of the tenant's, Truncated, or None.
Fault = Callable[[str, str, str], "Reply | Truncated | None"]


def odata_error(status: int, code: str, message: str,
                headers: dict[str, str] | None = None) -> Reply:
    body = {"error": {"code": code, "message": {"lang": "en-US", "value": message}}}
    return status, {"Content-Type": "application/json", **(headers or {})}, \
        json.dumps(body).encode()


def burst(answers: list[Reply]) -> Fault:
    """The next len(answers) requests get these answers, in order; then the tenant."""
    pending = list(answers)
    return lambda method, path, query: pending.pop(0) if pending else None


class SuccessFactorsApp:
    """The ASGI application (plain ASGI: no web framework is installed)."""

    def __init__(self, store: PeopleStore, *, company_id: str, username: str | None,
                 password: str | None, token: str | None, fault: Fault | None = None) -> None:
        self.store = store
        self.company_id = company_id
        self.username, self.password, self.token = username, password, token
        self.fault = fault
        # OAuth SAML bearer clients and the tokens issued to them (§3.1).
        self.oauth = TokenIssuer(company_id, store.clock)
        self.requests: list[tuple[str, str, str]] = []  # (method, path, raw query)
        # Property paths ("employmentNav/jobInfoNav/jobTitle") left out of every answer:
        # a field renamed or removed upstream, or stripped by a proxy in the way.
        self.dropped: set[str] = set()
        self._snapshots: dict[str, list[str]] = {}
        self._snapshot_ids = itertools.count(1)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        self.requests.append((method, path, query))
        injected = self.fault(method, path, query) if self.fault else None
        if injected is not None and not isinstance(injected, Truncated):
            await _send(send, *injected)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        if path == "/oauth/token" and method == "POST":
            await self._token(receive, send, request_origin(scope, headers))
            return
        try:
            payload = self._handle(method, path, query, headers, request_origin(scope, headers))
        except ODataRefusal as refusal:
            await _send(send, *odata_error(refusal.status, refusal.code, refusal.message))
            return
        body = json.dumps(payload).encode()
        if isinstance(injected, Truncated):
            body = body[: len(body) // 2]
        reply_headers = {"Content-Type": "application/json;charset=utf-8"}
        if "jsessionid=" not in headers.get("cookie", "").lower():
            # The first answer opens a session the client sends back (§3.1).
            reply_headers["Set-Cookie"] = "JSESSIONID=sandbox-session; Path=/; HttpOnly"
        await _send(send, 200, reply_headers, body)

    def _handle(self, method: str, path: str, query: str, headers: dict[str, str],
                origin: str) -> Any:
        if not path.startswith("/odata/v2/"):
            raise ODataRefusal(404, "COE_GENERAL_NOT_FOUND", f"No such resource: {path}")
        self._authenticate(headers.get("authorization", ""))
        entity = path.rstrip("/").removeprefix(SERVICE_PATH)
        if entity not in ENTITIES:
            raise ODataRefusal(400, "COE_ENTITY_NOT_FOUND",
                               f"Invalid entity (or function) name: {path.rsplit('/', 1)[-1]}")
        if method != "GET":
            raise ODataRefusal(405, "COE_GENERAL_BAD_REQUEST", f"{method} is not allowed")
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        if params.get("$format", "").lower() != "json" \
                and "application/json" not in headers.get("accept", ""):
            raise ODataRefusal(400, "COE_GENERAL_BAD_REQUEST",
                               "The sandbox only answers JSON: pass $format=json")
        return self._list(entity, params, origin)

    async def _token(self, receive: Any, send: Any, origin: str) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            answer = self.oauth.answer(body, origin)
        except TokenRefusal as refusal:
            await _send(send, refusal.status, {"Content-Type": "application/json"},
                        json.dumps({"error": refusal.error,
                                    "error_description": refusal.description}).encode())
            return
        await _send(send, 200, {"Content-Type": "application/json"}, json.dumps(answer).encode())

    def _authenticate(self, header: str) -> None:
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "bearer" and self.oauth.clients:
            if self.oauth.valid(credential):
                return
            # An expired or unknown OAuth token is refused; the client must obtain a new
            # one (401 [inferred]; KBA 2524436 lists token errors under 403 as well).
            if self.token is None or not hmac.compare_digest(credential.encode(),
                                                             self.token.encode()):
                raise ODataRefusal(self.oauth.expired_status, "LGN0007",
                                   "Invalid OAuth token: it is unknown or "
                                   "has expired; obtain a new one")
        if scheme.lower() == "bearer" and self.token is not None:
            if hmac.compare_digest(credential.encode(), self.token.encode()):
                return
        elif scheme.lower() == "basic" and self.username is not None:
            try:
                decoded = base64.b64decode(credential, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            user, _, password = decoded.partition(":")
            expected = f"{self.username}@{self.company_id}"
            if hmac.compare_digest(user.encode(), expected.encode()) and \
                    hmac.compare_digest(password.encode(), (self.password or "").encode()):
                return
        raise ODataRefusal(401, "COE_AUTHENTICATION_FAILED", AUTH_FAILED)

    def _list(self, entity: str, params: dict[str, str], origin: str) -> dict[str, Any]:
        today = self.store.clock().date()
        window = _window(params, today)
        # fromDate/toDate choose the top level's records only; expanded navigations come
        # back as of today (KBA 2853045), or as of asOfDate when one is given.
        as_of = window if window[0] == window[1] else (today, today)
        size = _int(params, "customPageSize", MAX_PAGE, 1, MAX_PAGE)
        select = [s.strip() for s in params["$select"].split(",")] if "$select" in params \
            else None
        everyone = self.store.all()
        if select is not None:
            # An unknown property in $select is a 400 naming it (KBA 2545055:
            # "COE_PROPERTY_NOT_FOUND - Invalid property name").
            known = known_properties(everyone, entity)
            unknown = [s for s in select if s and s not in known]
            if unknown:
                raise ODataRefusal(400, "COE_PROPERTY_NOT_FOUND", "Invalid property names: "
                                   + ", ".join(f"{entity}/{u}" for u in unknown)
                                   + ". Please check the property name and try again.")
        expand = {e.strip() for e in params.get("$expand", "").split(",") if e.strip()}
        expand |= {"/".join(e.split("/")[:i]) for e in expand
                   for i in range(1, e.count("/") + 1)}
        token = _decode_token(params.get("$skiptoken"))
        snapshot_id = token.get("snapshot")
        if snapshot_id is not None:
            if snapshot_id not in self._snapshots:
                raise ODataRefusal(400, "COE_GENERAL_BAD_REQUEST", "The snapshot has expired")
            people = self._snapshots[snapshot_id]
        else:
            people = dated(rows_of(everyone, entity), entity, window)
            if "$filter" in params:
                predicate = parse_filter(params["$filter"])
                people = [p for p in people if predicate(p)]
            skip = _int(params, "$skip", 0, 0, None)
            top = _int(params, "$top", len(people), 0, None)
            people = people[skip:skip + top]
            if params.get("paging") == "snapshot" and len(people) > size:
                snapshot_id = str(next(self._snapshot_ids))
                self._snapshots[snapshot_id] = people
        start = int(token.get("startRow", 0))
        rows = people[start:start + size]
        dropped = {d.removeprefix(PREFIX[entity]) for d in self.dropped
                   if d.startswith(PREFIX[entity])}
        body: dict[str, Any] = {"results": [
            _drop(render(p, entity_uri(origin, entity, p), select, expand, as_of, entity=entity),
                  dropped) for p in rows]}
        if start + size < len(people):
            next_token = {"startRow": start + size, "endRow": start + 2 * size}
            if snapshot_id is not None:
                next_token["snapshot"] = snapshot_id
            kept = {k: v for k, v in params.items() if k != "$skiptoken"}
            kept["$skiptoken"] = base64.b64encode(json.dumps(next_token).encode()).decode()
            encoded = urlencode(kept, safe=_QUERY_SAFE, quote_via=quote)
            body["__next"] = f"{origin}{SERVICE_PATH}{entity}?{encoded}"
        return {"d": body}


def _drop(entity: Any, paths: set[str], prefix: str = "") -> Any:
    """``entity`` without the properties at ``paths`` (at any depth of expansion)."""
    if not paths or not isinstance(entity, dict):
        return entity
    out = {}
    for name, value in entity.items():
        path = f"{prefix}{name}"
        if path in paths:
            continue
        if isinstance(value, dict) and isinstance(value.get("results"), list):
            value = {**value, "results": [_drop(v, paths, path + "/") for v in value["results"]]}
        elif isinstance(value, dict) and name != "__metadata":
            value = _drop(value, paths, path + "/")
        out[name] = value
    return out


def _window(params: dict[str, str], today: date) -> tuple[date, date]:
    if "asOfDate" in params and ("fromDate" in params or "toDate" in params):
        # KBA 2853045: the two ways of choosing segments exclude each other (§3.5).
        raise ODataRefusal(400, "COE_GENERAL_BAD_REQUEST",
                           "asOfDate cannot be combined with fromDate/toDate")
    if "fromDate" in params or "toDate" in params:
        return _date(params, "fromDate", date.min), _date(params, "toDate", OPEN_END)
    as_of = _date(params, "asOfDate", today)
    return as_of, as_of


def _date(params: dict[str, str], name: str, default: date) -> date:
    if name not in params:
        return default
    try:
        return date.fromisoformat(params[name])
    except ValueError:
        raise ODataRefusal(400, "COE_GENERAL_BAD_REQUEST",
                           f"{name} is not a date (yyyy-MM-dd): {params[name]!r}") from None


def _int(params: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    if name not in params:
        return default
    try:
        value = int(params[name])
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ODataRefusal(400, "COE_GENERAL_BAD_REQUEST",
                           f"{name} must be a number {limit}: {params[name]!r}")
    return value


def _decode_token(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        token = json.loads(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        token = None
    if not isinstance(token, dict):
        raise ODataRefusal(400, "COE_GENERAL_BAD_REQUEST", "Invalid $skiptoken")
    return token


async def _send(send: Any, status: int, headers: dict[str, str], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
    await send({"type": "http.response.body", "body": body})


class SuccessFactorsSandbox(AppSandbox):
    """A SuccessFactors tenant on 127.0.0.1 in a background thread; a context manager.

    ``clock`` stamps lastModifiedDateTime and decides which segments are current.
    Give ``username``/``password`` for Basic auth, ``token`` for bearer, or both.
    """

    def __init__(self, company_id: str = "ACME", *, username: str | None = None,
                 password: str | None = None, token: str | None = None, port: int = 0,
                 host: str = HOST, fault: Fault | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.store = PeopleStore(clock or (lambda: datetime.now(UTC)))
        self.app = SuccessFactorsApp(self.store, company_id=company_id, username=username,
                                     password=password, token=token, fault=fault)
        self._server = LoopbackServer(self.app, "successfactors-sandbox", host, port,
                                      lifespan="off")
        self.base_url = ""

    def put(self, record: dict[str, Any]) -> None:
        self.store.put(record)

    def register_oauth_client(self, client_id: str, certificate: bytes, *,
                              token_lifetime: timedelta | None = None) -> None:
        """Register an OAuth client (API key) with the X.509 certificate of the key that
        signs its assertions, as an admin does in Manage OAuth2 Client Applications."""
        self.app.oauth.register(client_id, certificate)
        if token_lifetime is not None:
            self.app.oauth.lifetime = token_lifetime

    def drop_property(self, path: str) -> None:
        """Leave the property at ``path`` (e.g. "employmentNav/jobInfoNav/jobTitle") out of
        every answer, even when $select names it."""
        self.app.dropped.add(path)

    def start(self) -> SuccessFactorsSandbox:
        host, port = self._server.start()
        self.base_url = f"http://{host}:{port}"
        return self


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a SuccessFactors sandbox HRIS on loopback.")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    parser.add_argument("--company-id", default="ACME", help="the company id in user@company")
    parser.add_argument("--username", help="Basic auth user (sent as username@company-id)")
    parser.add_argument("--password", help="Basic auth password")
    parser.add_argument("--token", help="a bearer token clients may send instead")
    parser.add_argument("--people", type=int, default=0, help="seed this many people")
    parser.add_argument("--oauth-client-id", help="register an OAuth client (API key) ...")
    parser.add_argument("--oauth-certificate", help="... with this X.509 certificate (PEM file)")
    args = parser.parse_args(argv)
    oauth = bool(args.oauth_client_id and args.oauth_certificate)
    if not (args.username and args.password) and not args.token and not oauth:
        parser.error("give --username and --password, --token, or --oauth-client-id and "
                     "--oauth-certificate")
    hris = SuccessFactorsSandbox(args.company_id, username=args.username,
                                 password=args.password, token=args.token, port=args.port)
    if oauth:
        with open(args.oauth_certificate, "rb") as fh:
            hris.register_oauth_client(args.oauth_client_id, fh.read())
    for record in organisation(args.people):
        hris.put(record)
    run_from_command_line(hris, parser, lambda hris: f"{hris.base_url}/odata/v2")


if __name__ == "__main__":
    main()
