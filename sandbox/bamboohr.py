"""A BambooHR-speaking HRIS on loopback, for tests and the demo.

It serves the calls the connector makes (docs/bamboohr.md §1.2 B to E, §1.3):

    POST /v1/reports/custom?format=JSON&onlyCurrent=...     whole company, all statuses
    GET  /v1/employees/changed?since=...                    ids changed since a moment
    GET  /v1/employees/{id}?fields=a,b&onlyCurrent=...      one employee
    GET  /v1/employees/{id}/tables/{table}                  dated rows (jobInfo, ...)
    POST /v2/datasets/{name}/data, GET /v1_2/datasets/{name}/fields   (bamboohr_dataset)

under both URL prefixes, ``/api/gateway.php/{company}/v1/`` and ``/api/v1/`` (§1.1),
with the documented quirks: Basic auth with the API key as the user name and any
password, ``Content-Type: application/json`` exactly or ``400 Malformed XML``, errors
explained in the ``X-BambooHR-Error-Message`` header (§1.7), unknown fields silently
left out, a ``+`` offset in ``since`` that must arrive URL-encoded, and effective-dated
history fields whose future values show with ``onlyCurrent=false``
(sandbox.bamboohr_history).

    with BambooSandbox(api_key="k") as hris:
        hris.put({"id": "1", "firstName": "Ada", ...})
        hris.base_url  # "http://127.0.0.1:PORT/api/gateway.php/acme"

Foreground, for the demo: ``python -m rostersync.sandbox.bamboohr --port 8081 --api-key k``.
Behaviour marked unconfirmed in docs/bamboohr.md is simulated as described there and must be
checked against a real tenant before go-live.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

from rostersync.sandbox.bamboohr_dataset import dataset_data, dataset_fields
from rostersync.sandbox.bamboohr_history import TABLES, table_rows, view_of

# Re-exported: tests and the demo import generate and parse_since from here.
from rostersync.sandbox.bamboohr_store import (
    EmployeeStore,
    generate,
    parse_since,
    seed_schedule,
    stamp,
)

# Reused, not copied: a uvicorn.Server that reports when its startup has finished.
from rostersync.sandbox.serving import HOST, AppSandbox, LoopbackServer, run_from_command_line

ERROR_HEADER = "X-BambooHR-Error-Message"
LEGACY_ERROR_HEADER = "X-BambooHR-Error-Messsage"  # the historical typo (§1.7)
MAX_FIELDS = 400  # per report or employee request (§1.2 B)

# The field ids this tenant knows (§1.4). Anything else is silently omitted (§1.2 B).
KNOWN_FIELDS = frozenset({
    "id", "employeeNumber", "firstName", "lastName", "preferredName", "middleName",
    "displayName", "workEmail", "homeEmail", "department", "division", "jobTitle",
    "location", "supervisorEId", "supervisorId", "supervisor", "status",
    "employmentHistoryStatus", "hireDate", "originalHireDate", "terminationDate",
    "lastChanged", "timeZone",
})


@dataclass(frozen=True)
class Slow:
    """A fault answer meaning: wait this long, then serve the request normally."""

    seconds: float


# A fault injector: (method, path) -> (status, headers, body) to answer instead, a Slow
# to delay the real answer, or None to let the request through. Runs on the server thread.
Reply = tuple[int, dict[str, str], bytes]
Fault = Callable[[str, str], "Reply | Slow | None"]

class _Refusal(Exception):
    """An HTTP error answer, explained in the error header."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Problem(Exception):
    """An RFC 7807 error answer (the datasets API)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("detail"))
        self.status = status
        self.body = body


class BambooApp:
    """The ASGI application (plain ASGI: no web framework is installed)."""

    def __init__(self, store: EmployeeStore, api_key: str, company: str, *,
                 fault: Fault | None = None, legacy_error_header: bool = False) -> None:
        self.store = store
        self.api_key = api_key
        self.company = company
        self.fault = fault
        self.legacy_error_header = legacy_error_header
        self.requests: list[tuple[str, str, str]] = []  # (method, path, raw query)
        # The tenant's fields; a test removes one to play a field HR deleted or renamed.
        self.known_fields: set[str] = set(KNOWN_FIELDS)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        self.requests.append((method, path, query))
        injected = self.fault(method, path) if self.fault else None
        if isinstance(injected, Slow):
            await asyncio.sleep(injected.seconds)
        elif injected is not None:
            await _send(send, *injected)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        try:
            payload = self._handle(method, path, query, headers, body)
        except _Problem as problem:
            # Datasets v1.2/v2 errors are RFC 7807 problem documents (§1.2 E).
            await _send(send, problem.status, {"Content-Type": "application/problem+json"},
                        json.dumps(problem.body).encode())
            return
        except _Refusal as refusal:
            name = LEGACY_ERROR_HEADER if self.legacy_error_header else ERROR_HEADER
            await _send(send, refusal.status, {name: refusal.message}, b"")
            return
        await _send(send, 200, {"Content-Type": "application/json"},
                    json.dumps(payload).encode())

    def _handle(self, method: str, path: str, query: str, headers: dict[str, str],
                body: bytes) -> Any:
        version, rest = self._route(path)
        self._authenticate(headers.get("authorization", ""))
        # parse_qs turns a raw "+" into a space, exactly like the real API (§1.3).
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        only_current = params.get("onlyCurrent", "true").lower() != "false"
        if version != "v1":
            return self._dataset(version, method, rest, body)
        if rest == "reports/custom":
            if method != "POST":
                raise _Refusal(405, "Use POST for custom reports")
            return self._report(params, headers, body, only_current)
        if method != "GET":
            raise _Refusal(405, f"Method {method} is not allowed here")
        if rest == "employees/changed":
            return self._changed(params)
        table = re.fullmatch(r"employees/([^/]+)/tables/([^/]+)", rest)
        if table:
            emp_id, name = unquote(table.group(1)), table.group(2)
            if self.store.get(emp_id) is None:
                raise _Refusal(404, f"Employee {emp_id} not found")
            if name not in TABLES:
                raise _Refusal(404, f"No such table: {name}")
            return table_rows(emp_id, name, self.store.rows(emp_id).get(name, []))
        match = re.fullmatch(r"employees/([^/]+)", rest)
        if match:
            return self._employee(unquote(match.group(1)), params, headers, only_current)
        raise _Refusal(404, f"No such endpoint: {path}")

    def _route(self, path: str) -> tuple[str, str]:
        """The API version and the part after it, for either documented prefix (§1.1).
        The datasets API lives under ``/v1_2/`` and ``/v2/`` (§1.2 E)."""
        gateway = re.fullmatch(r"/api/gateway\.php/([^/]+)/(v1|v1_2|v2)/(.+)", path)
        if gateway:
            if gateway.group(1) != self.company:
                raise _Refusal(404, f"Unknown company domain {gateway.group(1)!r}")
            return gateway.group(2), gateway.group(3).rstrip("/")
        direct = re.fullmatch(r"/api/(v1|v1_2|v2)/(.+)", path)
        if direct:
            return direct.group(1), direct.group(2).rstrip("/")
        raise _Refusal(404, f"No such endpoint: {path}")

    def _dataset(self, version: str, method: str, rest: str, body: bytes) -> Any:
        today = self.store.clock().date()
        people = [view_of(p, self.store.rows(p["id"]), today, True) for p in self.store.all()]
        data = re.fullmatch(r"datasets/([^/]+)/data", rest)
        if version == "v2" and data and method == "POST":
            answer = dataset_data(data.group(1), body, people, self.known_fields)
        else:
            fields = re.fullmatch(r"datasets/([^/]+)/fields", rest)
            if not (version == "v1_2" and fields and method == "GET"):
                raise _Refusal(404, f"No such endpoint: {version}/{rest}")
            answer = dataset_fields(fields.group(1), self.known_fields)
        status, payload = answer
        if status != 200:
            raise _Problem(status, payload)
        return payload

    def _authenticate(self, header: str) -> None:
        # Basic auth: the API key is the user name, the password is anything (§1.1).
        scheme, _, encoded = header.partition(" ")
        user = ""
        if scheme.lower() == "basic":
            try:
                user = base64.b64decode(encoded, validate=True).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                user = ""
        if not hmac.compare_digest(user.encode(), self.api_key.encode()):
            raise _Refusal(401, "Invalid API key" if user else "Missing API key")

    def _report(self, params: dict[str, str], headers: dict[str, str], body: bytes,
                only_current: bool) -> dict[str, Any]:
        fmt = params.get("format")
        if fmt is None:
            # Without format= the output follows Accept; only JSON is simulated (§1.2 B).
            if headers.get("accept", "").split(";")[0].strip() != "application/json":
                raise _Refusal(404, "No report format: pass format=JSON or Accept")
        elif fmt.lower() != "json":
            raise _Refusal(400, f"The sandbox only produces JSON reports, not {fmt}")
        # Any other Content-Type, even with "; charset=UTF-8", is parsed as XML (§1.2 B).
        if headers.get("content-type") != "application/json":
            raise _Refusal(400, "Malformed XML")
        try:
            request = json.loads(body)
        except ValueError:
            raise _Refusal(400, "Malformed JSON") from None
        if not isinstance(request, dict) or not isinstance(request.get("fields"), list):
            raise _Refusal(400, "The report needs a list of fields")
        fields = [str(f) for f in request["fields"]]
        if len(fields) > MAX_FIELDS:
            raise _Refusal(400, f"At most {MAX_FIELDS} fields per request")
        filters = request.get("filters") or {}
        people = self.store.all()
        wanted_ids = filters.get("employeeIds")
        if wanted_ids is not None:
            if isinstance(wanted_ids, str):
                wanted_ids = wanted_ids.split(",")
            wanted = {str(i).strip() for i in wanted_ids}
            people = [p for p in people if p["id"] in wanted]
        changed = filters.get("lastChanged")
        if changed is not None:
            after = parse_since(str(changed.get("value", "")))
            if after is None:
                raise _Refusal(400, "filters.lastChanged.value is not an ISO 8601 date-time")
            with_null = str(changed.get("includeNull", "no")).lower() == "yes"
            people = [p for p in people if (p.get("lastChanged") is None and with_null)
                      or (p.get("lastChanged") and
                          datetime.fromisoformat(p["lastChanged"]) >= after)]
        shown = [f for f in dict.fromkeys(fields) if f in self.known_fields]
        return {
            "title": request.get("title", "Report"),
            "fields": [{"id": f, "type": "text", "name": f} for f in shown],
            "employees": [self._view(p, shown, only_current)
                          for p in sorted(people, key=lambda p: (len(p["id"]), p["id"]))],
        }

    def _changed(self, params: dict[str, str]) -> dict[str, Any]:
        raw = params.get("since")
        since = parse_since(raw) if raw is not None else None
        if since is None:
            # A "+hh:mm" sent unencoded arrives as " hh:mm" and is refused here (§1.3).
            raise _Refusal(400, f"Invalid 'since' value {raw!r}: expected "
                                "yyyy-mm-ddThh:mm:ss with Z or an offset (encode + as %2B)")
        kind = params.get("type", "").lower()
        changes = self.store.changed_since(since)
        if kind:
            changes = {k: v for k, v in changes.items() if v[0].lower() == kind}
        latest = max((when for _, when in changes.values()), default=since)
        return {
            "latest": stamp(latest),  # the next watermark (unconfirmed)
            "employees": {k: {"id": k, "action": action, "lastChanged": stamp(when)}
                          for k, (action, when) in sorted(changes.items())},
        }

    def _employee(self, emp_id: str, params: dict[str, str], headers: dict[str, str],
                  only_current: bool) -> dict[str, Any]:
        if "application/json" not in headers.get("accept", ""):
            # The real API answers XML by default; this sandbox only speaks JSON.
            raise _Refusal(406, "Send Accept: application/json")
        employee = self.store.get(emp_id)
        if employee is None:
            raise _Refusal(404, f"Employee {emp_id} not found")
        fields = [f.strip() for f in params.get("fields", "").split(",") if f.strip()]
        if len(fields) > MAX_FIELDS:
            raise _Refusal(400, f"At most {MAX_FIELDS} fields per request")
        return self._view(employee, [f for f in fields if f in self.known_fields],
                          only_current)

    def _view(self, employee: dict[str, Any], fields: list[str],
              only_current: bool) -> dict[str, Any]:
        # History fields and terminationDate as this onlyCurrent shows them today
        # (sandbox.bamboohr_history cites the behaviour).
        shown = view_of(employee, self.store.rows(employee["id"]), self.store.clock().date(),
                        only_current)
        out = {"id": employee["id"]}  # always present in rows (§1.2 B shape, unconfirmed)
        for name in fields:
            out[name] = shown.get(name)
        return out


async def _send(send: Any, status: int, headers: dict[str, str], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
    await send({"type": "http.response.body", "body": body})


class BambooSandbox(AppSandbox):
    """A BambooHR tenant on 127.0.0.1 in a background thread; a context manager.

    ``clock`` stamps lastChanged and decides what "future-dated" means (default: now).
    """

    def __init__(self, api_key: str, company: str = "acme", port: int = 0, *,
                 host: str = HOST, fault: Fault | None = None,
                 clock: Callable[[], datetime] | None = None,
                 legacy_error_header: bool = False) -> None:
        self.store = EmployeeStore(clock or (lambda: datetime.now(UTC)))
        self.app = BambooApp(self.store, api_key, company, fault=fault,
                             legacy_error_header=legacy_error_header)
        self.company = company
        self._server = LoopbackServer(self.app, "bamboohr-sandbox", host, port,
                                      lifespan="off")
        self.origin = ""
        self.base_url = ""

    # The store, exposed for tests.
    def put(self, employee: dict[str, Any]) -> dict[str, Any]:
        return self.store.put(employee)

    def update(self, emp_id: str, **fields: Any) -> dict[str, Any]:
        return self.store.update(emp_id, **fields)

    def delete(self, emp_id: str) -> None:
        self.store.delete(emp_id)

    def schedule(self, emp_id: str, table: str, day: str, **columns: Any) -> dict[str, Any]:
        """Enter an effective-dated row (see EmployeeStore.schedule)."""
        return self.store.schedule(emp_id, table, day, **columns)

    def forget_field(self, field: str) -> None:
        """The tenant no longer knows ``field`` (renamed or deleted by HR): reports leave
        it out silently, as BambooHR does with any unknown field (§1.2 B)."""
        self.app.known_fields.discard(field)

    def add_webhook(self, url: str, private_key: str, **options: Any) -> Any:
        """Send signed webhooks for every change to ``url`` (docs/bamboohr.md §1.8)."""
        from rostersync.sandbox.bamboohr_webhooks import WebhookSender

        sender = WebhookSender(url, private_key, clock=self.store.clock, **options)
        self.store.listeners.append(sender.on_change)
        return sender.start()

    def start(self) -> BambooSandbox:
        host, port = self._server.start()
        self.origin = f"http://{host}:{port}"
        self.base_url = f"{self.origin}/api/gateway.php/{self.company}"
        return self


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a BambooHR sandbox HRIS on loopback.")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    parser.add_argument("--api-key", required=True, help="the API key clients must send")
    parser.add_argument("--company", default="acme", help="company domain in the URL")
    parser.add_argument("--people", type=int, default=0, help="seed this many employees")
    args = parser.parse_args(argv)
    hris = BambooSandbox(api_key=args.api_key, company=args.company, port=args.port)
    for employee in generate(args.people):
        hris.put(employee)
    seed_schedule(hris.store, args.people)
    run_from_command_line(hris, parser, lambda hris: hris.base_url)


if __name__ == "__main__":
    main()
