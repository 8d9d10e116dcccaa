"""A BambooHR-speaking HRIS on loopback, for tests and the demo.

It serves the three calls the connector makes (docs/bamboohr.md §1.2 B and C, §1.3):

    POST /v1/reports/custom?format=JSON&onlyCurrent=false   whole company, all statuses
    GET  /v1/employees/changed?since=...                    ids changed since a moment
    GET  /v1/employees/{id}?fields=a,b&onlyCurrent=false    one employee

under both URL prefixes, ``/api/gateway.php/{company}/v1/`` and ``/api/v1/`` (§1.1),
with the documented quirks: Basic auth with the API key as the user name and any
password, ``Content-Type: application/json`` exactly or ``400 Malformed XML``, errors
explained in the ``X-BambooHR-Error-Message`` header (§1.7), unknown fields silently
left out, a ``+`` offset in ``since`` that must arrive URL-encoded.

    with BambooSandbox(api_key="k") as hris:
        hris.put({"id": "1", "firstName": "Ada", ...})
        hris.base_url  # "http://127.0.0.1:PORT/api/gateway.php/acme"

Foreground, for the demo: ``python -m sandbox.bamboohr --port 8081 --api-key k``.
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
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, unquote

# Reused, not copied: a uvicorn.Server that reports when its startup has finished.
from sandbox.serving import HOST, AppSandbox, LoopbackServer, run_from_command_line

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

# `since` formats of /employees/changed (§1.3): yyyy-mm-ddThh:mm:ss then Z, ±hh:mm or ±hhmm.
_SINCE = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(Z|[+-]\d{2}:?\d{2})")


def parse_since(text: str) -> datetime | None:
    """The moment a documented ``since`` value names; None if it is not one."""
    match = _SINCE.fullmatch(text)
    if match is None:
        return None
    moment, offset = match.groups()
    if offset == "Z":
        zone = UTC
    else:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        zone = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return datetime.fromisoformat(moment).replace(tzinfo=zone)
    except ValueError:
        return None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class EmployeeStore:
    """The tenant's employees and change log; safe to mutate from any thread."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._employees: dict[str, dict[str, Any]] = {}
        # id -> (action, when): the last change per employee, as /employees/changed
        # reports it (one entry per id, the object is keyed by id).
        self._changes: dict[str, tuple[str, datetime]] = {}
        # Called after each change with (action, before, after): the webhook senders
        # (sandbox.bamboohr_webhooks) listen here.
        self.listeners: list[Callable[[str, dict[str, Any] | None, dict[str, Any] | None],
                                      None]] = []

    def put(self, employee: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace one employee (BambooHR field ids as keys); stamps lastChanged."""
        emp_id = str(employee["id"])
        now = self.clock()
        with self._lock:
            before = self._employees.get(emp_id)
            action = "Updated" if before is not None else "Inserted"
            stored = {**employee, "id": emp_id, "lastChanged": _stamp(now)}
            self._employees[emp_id] = stored
            self._changes[emp_id] = (action, now)
        for listener in self.listeners:
            listener(action, before, stored)
        return dict(stored)

    def update(self, emp_id: str, **fields: Any) -> dict[str, Any]:
        """Change some fields of an existing employee (an *Updated* change)."""
        with self._lock:
            current = dict(self._employees[str(emp_id)])
        return self.put({**current, **fields})

    def delete(self, emp_id: str) -> None:
        """Remove the record itself (not a termination: that is an update, §1.5)."""
        with self._lock:
            before = self._employees.pop(str(emp_id))
            self._changes[str(emp_id)] = ("Deleted", self.clock())
        for listener in self.listeners:
            listener("Deleted", before, None)

    def get(self, emp_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._employees.get(str(emp_id))
            return dict(found) if found is not None else None

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._employees.values()]

    def changed_since(self, since: datetime) -> dict[str, tuple[str, datetime]]:
        with self._lock:
            # Inclusive: a change in the same second as the watermark is reported again
            # rather than lost; re-reading an unchanged employee is harmless (unconfirmed).
            return {k: v for k, v in self._changes.items() if v[1] >= since}


def generate(n: int) -> list[dict[str, Any]]:
    """A small organisation: employee 1 at the top, five reports per manager."""
    out = []
    for i in range(1, n + 1):
        boss = None if i == 1 else (i - 2) // 5 + 1
        out.append({
            "id": str(i), "employeeNumber": f"E-{10000 + i}", "firstName": f"First{i}",
            "lastName": f"Last{i}", "preferredName": None,
            "workEmail": f"person{i}@acme.example", "department": "Engineering",
            "jobTitle": "Specialist", "location": "Berlin",
            "supervisorEId": None if boss is None else str(boss),
            "supervisorId": None if boss is None else f"E-{10000 + boss}",
            "status": "Active", "employmentHistoryStatus": "Full-Time",
            "hireDate": "2020-03-01", "terminationDate": "0000-00-00",
            "timeZone": "Europe/Berlin",
        })
    return out


class _Refusal(Exception):
    """An HTTP error answer, explained in the error header."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
        except _Refusal as refusal:
            name = LEGACY_ERROR_HEADER if self.legacy_error_header else ERROR_HEADER
            await _send(send, refusal.status, {name: refusal.message}, b"")
            return
        await _send(send, 200, {"Content-Type": "application/json"},
                    json.dumps(payload).encode())

    def _handle(self, method: str, path: str, query: str, headers: dict[str, str],
                body: bytes) -> Any:
        rest = self._route(path)
        self._authenticate(headers.get("authorization", ""))
        # parse_qs turns a raw "+" into a space, exactly like the real API (§1.3).
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        only_current = params.get("onlyCurrent", "true").lower() != "false"
        if rest == "reports/custom":
            if method != "POST":
                raise _Refusal(405, "Use POST for custom reports")
            return self._report(params, headers, body, only_current)
        if method != "GET":
            raise _Refusal(405, f"Method {method} is not allowed here")
        if rest == "employees/changed":
            return self._changed(params)
        match = re.fullmatch(r"employees/([^/]+)", rest)
        if match:
            return self._employee(unquote(match.group(1)), params, headers, only_current)
        raise _Refusal(404, f"No such endpoint: {path}")

    def _route(self, path: str) -> str:
        """The part after ``/v1/`` for either documented prefix (§1.1)."""
        gateway = re.fullmatch(r"/api/gateway\.php/([^/]+)/v1/(.+)", path)
        if gateway:
            if gateway.group(1) != self.company:
                raise _Refusal(404, f"Unknown company domain {gateway.group(1)!r}")
            return gateway.group(2).rstrip("/")
        direct = re.fullmatch(r"/api/v1/(.+)", path)
        if direct:
            return direct.group(1).rstrip("/")
        raise _Refusal(404, f"No such endpoint: {path}")

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
            "latest": _stamp(latest),  # the next watermark (unconfirmed)
            "employees": {k: {"id": k, "action": action, "lastChanged": _stamp(when)}
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
        out = {"id": employee["id"]}  # always present in rows (§1.2 B shape, unconfirmed)
        for name in fields:
            out[name] = employee.get(name)
        ends = out.get("terminationDate")
        if only_current and ends and ends != "0000-00-00" \
                and ends > self.store.clock().date().isoformat():
            # onlyCurrent=true (the default) hides future-dated values of table-backed
            # fields (§1.2 B), so a scheduled termination is invisible without it.
            out["terminationDate"] = None
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

    def forget_field(self, field: str) -> None:
        """The tenant no longer knows ``field`` (renamed or deleted by HR): reports leave
        it out silently, as BambooHR does with any unknown field (§1.2 B)."""
        self.app.known_fields.discard(field)

    def add_webhook(self, url: str, private_key: str, **options: Any) -> Any:
        """Send signed webhooks for every change to ``url`` (docs/bamboohr.md §1.8)."""
        from sandbox.bamboohr_webhooks import WebhookSender

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
    run_from_command_line(hris, parser, lambda hris: hris.base_url)


if __name__ == "__main__":
    main()
