"""A Workday tenant serving one RaaS report on loopback, for tests and the demo.

It serves the call the connector makes (docs/workday.md §2.1):

    GET /ccx/service/customreport2/{tenant}/{owner}/{report}?format=json&<prompts>

answering ``{"Report_Entry": [...]}`` keyed by the report's aliases, with HTTP Basic for
an integration system user and/or a bearer token, prompts as query parameters (each
declared prompt filters one alias), booleans as "1"/"0" or true/false, empty cells left
out, and errors as a SOAP Fault body (or the JSON error shape) with the HTTP status.
Also served:

    GET  .../{report}?xsds              the report's XML Schema (every column alias)
    POST /ccx/oauth2/{tenant}/token     a refresh-token grant (sandbox.workday_oauth)

    with WorkdaySandbox(user="isu@acme", password="pw") as hris:
        hris.put(worker)   # see sandbox.workday_data.generate
        hris.faults.push(throttled(429, "2"), Truncated())
        hris.base_url, hris.report_path

Foreground, for the demo: ``python -m rostersync.sandbox.workday --port 8082 --password pw``.
Behaviour marked inferred in docs/workday.md is simulated as described there and must be
checked against a real tenant before go-live.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any, Literal
from urllib.parse import parse_qs

from rostersync.sandbox.serving import HOST, LoopbackSandbox, LoopbackServer, run_from_command_line
from rostersync.sandbox.workday_data import (
    REPORT_COLUMNS,
    Booleans,
    WorkerStore,
    generate,
    report_xsd,
    row_as_of,
)
from rostersync.sandbox.workday_oauth import TokenIssuer

REPORT_PREFIX = "/ccx/service/customreport2"
# Prompt name -> the alias it filters on (equality). Anything else is refused (inferred).
DEFAULT_PROMPTS = {"Worker_WID": "Worker_WID", "Employee_ID": "Employee_ID",
                   "Organization": "Supervisory_Organization", "Worker_Type": "Worker_Type"}

Reply = tuple[int, dict[str, str], bytes]
ErrorBody = Literal["soap", "json"]


@dataclass(frozen=True)
class Truncated:
    """A fault answer: the real report, cut after this share of its bytes (a proxy or a
    dropped stream), sent with a matching Content-Length so only the JSON is broken."""

    keep: float = 0.6


def soap_fault(status: int, code: str, message: str) -> Reply:
    """Workday's error body for web services: a SOAP Fault (§0, inferred for RaaS)."""
    body = ('<?xml version="1.0" encoding="UTF-8"?>'
            '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">'
            f"<SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:{escape(code)}</faultcode>"
            f"<faultstring>{escape(message)}</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body>"
            "</SOAP-ENV:Envelope>")
    return status, {"Content-Type": "text/xml; charset=utf-8"}, body.encode()


def json_error(status: int, message: str) -> Reply:
    """The JSON error shape of Workday's REST services (inferred for RaaS)."""
    body = {"error": message, "errors": [{"error": message}]}
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def throttled(status: int = 429, retry_after: str | None = None) -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    _, fault_headers, body = soap_fault(status, "Server", "Too many requests; try later")
    return status, {**fault_headers, **headers}, body


def malformed() -> Reply:
    """A 200 whose body is not JSON at all: a sign-in page from a proxy in the way."""
    return 200, {"Content-Type": "text/html"}, b"<html><body>Sign in</body></html>"


Fault = Reply | Truncated


class FaultQueue:
    """Answers to give instead of the report, one per request, in order; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []
        self.served = 0

    def push(self, *faults: Fault) -> None:
        with self._lock:
            self._queue.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def next(self) -> Fault | None:
        with self._lock:
            if not self._queue:
                return None
            self.served += 1
            return self._queue.pop(0)


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class WorkdayApp:
    """The ASGI application (plain ASGI: no web framework is installed)."""

    def __init__(self, store: WorkerStore, report_path: str, *, user: str | None,
                 password: str | None, token: str | None, prompts: dict[str, str],
                 booleans: Booleans, error_body: ErrorBody, omit_empty: bool,
                 oauth: TokenIssuer | None = None, token_path: str = "") -> None:
        self.store = store
        self.report_path = report_path
        self.report_name = report_path.rstrip("/").rpartition("/")[2]
        self.oauth, self.token_path = oauth, token_path
        self.token_requests = 0
        # Column aliases renamed in the report definition (old -> new): rows and the
        # schema both use the new alias, as a real report would after an edit.
        self.renamed: dict[str, str] = {}
        # An answer to give for the schema instead of the schema (a tenant without it).
        self.schema_fault: Reply | None = None
        self.user, self.password, self.token = user, password, token
        self.prompts = prompts
        self.booleans = booleans
        self.error_body = error_body
        self.omit_empty = omit_empty
        self.faults = FaultQueue()
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # method, scheme, params

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        query = scope.get("query_string", b"").decode("latin-1")
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        scheme = headers.get("authorization", "").partition(" ")[0].lower()
        if self.oauth is not None and scope["path"] == self.token_path:
            # Token calls are counted apart and take no queued fault: the faults model
            # the report's behaviour.
            self.token_requests += 1
            if scope["method"] != "POST":
                await _send(send, *json_error(405, "use POST"))
                return
            body = await _body(receive)
            await _send(send, *self.oauth.grant(body, headers.get("authorization", "")))
            return
        self.requests.append((scope["method"], scheme, params))
        if "xsds" in params and self.schema_fault is not None:
            await _send(send, *self.schema_fault)
            return
        fault = self.faults.next()
        if isinstance(fault, tuple):
            await _send(send, *fault)
            return
        try:
            kind, body = self._handle(scope["method"], scope["path"], dict(params), headers)
        except _Refusal as refusal:
            if self.error_body == "soap":
                reply = soap_fault(refusal.status, refusal.code, refusal.message)
            else:
                reply = json_error(refusal.status, refusal.message)
            await _send(send, *reply)
            return
        if isinstance(fault, Truncated):
            body = body[:max(1, int(len(body) * fault.keep))]
        await _send(send, 200, {"Content-Type": f"{kind}; charset=utf-8"}, body)

    def _handle(self, method: str, path: str, params: dict[str, str],
                headers: dict[str, str]) -> tuple[str, bytes]:
        if path.rstrip("/") != self.report_path:
            raise _Refusal(404, "Client", f"No web service report at {path}")
        self._authenticate(headers.get("authorization", ""))
        if method != "GET":
            raise _Refusal(405, "Client", f"Method {method} is not allowed; RaaS is read-only")
        if "xsds" in params:
            return "application/xml", report_xsd(self.report_name, self.columns())
        fmt = params.pop("format", "")
        if fmt.lower() != "json":
            # Real RaaS defaults to XML; the sandbox only renders JSON.
            raise _Refusal(400, "Client", f"The sandbox only renders format=json, not {fmt!r}")
        unknown = sorted(set(params) - set(self.prompts))
        if unknown:
            raise _Refusal(400, "Client.validationError", f"Invalid prompt: {unknown[0]}")
        today = self.store.clock().date()
        rows = [self._renamed(row_as_of(w, today, self.booleans, self.omit_empty))
                for w in self.store.all()]
        for prompt, wanted in params.items():
            alias = self.renamed.get(self.prompts[prompt], self.prompts[prompt])
            rows = [r for r in rows if _plain(r.get(alias)) == wanted]
        return "application/json", json.dumps({"Report_Entry": rows}).encode()

    def columns(self) -> list[tuple[str, str]]:
        """The report's columns: the standard ones, then any other field a stored worker
        carries (tests add some), renamed as the report definition says."""
        known = dict(REPORT_COLUMNS)
        for worker in self.store.all():
            for alias in worker:
                known.setdefault(alias, "string")
        return [(self.renamed.get(alias, alias), kind) for alias, kind in known.items()]

    def _renamed(self, row: dict[str, Any]) -> dict[str, Any]:
        if not self.renamed:
            return row
        return {self.renamed.get(k, k): v for k, v in row.items()}

    def _authenticate(self, header: str) -> None:
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "basic" and self.user and self.password:
            try:
                user, _, password = base64.b64decode(credential, validate=True).decode() \
                    .partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = password = ""
            if hmac.compare_digest(f"{user}\0{password}".encode(),
                                   f"{self.user}\0{self.password}".encode()):
                return
            raise _Refusal(401, "Client.authenticationError", "invalid username or password")
        if scheme.lower() == "bearer" and (self.token or self.oauth):
            if self.token and hmac.compare_digest(credential.encode(), self.token.encode()):
                return
            if self.oauth is not None and self.oauth.valid(credential):
                return
            raise _Refusal(401, "Client.authenticationError", "invalid or expired token")
        raise _Refusal(401, "Client.authenticationError", "authentication required")


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send: Any, status: int, headers: dict[str, str], body: bytes) -> None:
    headers = {**headers, "Content-Length": str(len(body))}
    await send({"type": "http.response.start", "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
    await send({"type": "http.response.body", "body": body})


class WorkdaySandbox(LoopbackSandbox):
    """A Workday tenant on 127.0.0.1 in a background thread; a context manager.

    ``clock`` stamps Last_Updated and is the "now" the report is evaluated at.
    """

    def __init__(self, *, user: str | None = "isu_lms@acme", password: str | None = None,
                 token: str | None = None, tenant: str = "acme", owner: str = "ISU_LMS",
                 report: str = "LMS_Workers", port: int = 0, host: str = HOST,
                 clock: Callable[[], datetime] | None = None,
                 prompts: dict[str, str] | None = None, booleans: Booleans = "text",
                 error_body: ErrorBody = "soap", omit_empty: bool = True,
                 oauth: tuple[str, str, str] | None = None,
                 token_lifetime_seconds: float = 3600.0) -> None:
        """``oauth`` = (client id, client secret, refresh token) enables the token
        endpoint; its access tokens last ``token_lifetime_seconds`` on ``clock``."""
        self.store = WorkerStore(clock or (lambda: datetime.now(UTC)))
        self.report_path = f"{REPORT_PREFIX}/{tenant}/{owner}/{report}".lstrip("/")
        self.token_path = f"ccx/oauth2/{tenant}/token"
        issuer = None
        if oauth is not None:
            issuer = TokenIssuer(*oauth, lifetime_seconds=token_lifetime_seconds,
                                 clock=self.store.clock)
        self.app = WorkdayApp(self.store, "/" + self.report_path, user=user,
                              password=password, token=token,
                              prompts=dict(DEFAULT_PROMPTS if prompts is None else prompts),
                              booleans=booleans, error_body=error_body,
                              omit_empty=omit_empty, oauth=issuer,
                              token_path="/" + self.token_path)
        self._server = LoopbackServer(self.app, "workday-sandbox", host, port,
                                      lifespan="off")
        self.base_url = ""

    @property
    def report_url(self) -> str:
        return f"{self.base_url}/{self.report_path}"

    @property
    def faults(self) -> FaultQueue:
        return self.app.faults

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        """Every request seen so far as (method, auth scheme, query parameters)."""
        return self.app.requests

    @property
    def oauth(self) -> TokenIssuer | None:
        return self.app.oauth

    def rename_column(self, old: str, new: str) -> None:
        """HR renames a column's alias in the report definition."""
        self.app.renamed[old] = new

    def put(self, worker: dict[str, Any]) -> dict[str, Any]:
        return self.store.put(worker)

    def update(self, wid: str, **fields: Any) -> dict[str, Any]:
        return self.store.update(wid, **fields)

    def remove(self, wid: str) -> None:
        self.store.remove(wid)

    def start(self) -> WorkdaySandbox:
        host, port = self._server.start()
        self.base_url = f"http://{host}:{port}"
        return self


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a Workday RaaS sandbox on loopback.")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    parser.add_argument("--user", default="isu_lms@acme", help="integration system user")
    parser.add_argument("--password", help="the ISU password (enables Basic auth)")
    parser.add_argument("--token", help="a bearer token (enables bearer auth)")
    parser.add_argument("--people", type=int, default=0, help="seed this many workers")
    parser.add_argument("--booleans", choices=["text", "json"], default="text",
                        help='flags as "1"/"0" (text) or true/false (json)')
    parser.add_argument("--oauth", metavar="CLIENT_ID:SECRET:REFRESH_TOKEN",
                        help="enable the token endpoint for this API client")
    parser.add_argument("--token-lifetime", type=float, default=3600.0,
                        help="seconds an OAuth access token lasts")
    args = parser.parse_args(argv)
    oauth = tuple(args.oauth.split(":", 2)) if args.oauth else None
    if oauth is not None and len(oauth) != 3:
        parser.error("--oauth needs CLIENT_ID:SECRET:REFRESH_TOKEN")
    if not (args.password or args.token or oauth):
        parser.error("give --password, --token, --oauth or several")
    hris = WorkdaySandbox(user=args.user, password=args.password, token=args.token,
                          port=args.port, booleans=args.booleans, oauth=oauth,
                          token_lifetime_seconds=args.token_lifetime)
    for worker in generate(args.people):
        hris.put(worker)
    run_from_command_line(hris, parser, lambda hris: f"{hris.report_url}?format=json")


if __name__ == "__main__":
    main()
