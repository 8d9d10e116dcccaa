"""A Moodle site's REST web services on loopback, for tests and the demo.

One endpoint, ``POST /webservice/rest/server.php?wsfunction=...&moodlewsrestformat=json``
(docs/moodle.md §6.1), with the documented quirks: the token as ``wstoken`` (query or
form body), parameters as PHP bracket form fields (a JSON body is "Missing required
key"), every failure an HTTP 200 answer holding ``{"exception", "errorcode",
"message", "debuginfo"}``, some refusals a ``warnings`` list, usernames held to
PARAM_USERNAME (§6.2), unique username and email (idnumber on request: a Moodle 4.3
site does not keep it unique), and cohorts (§6.4).
The rules live in sandbox/moodle_data.py.

    with MoodleSandbox(token="abc123", profile_fields=("jobtitle",)) as lms:
        lms.base_url  # "http://127.0.0.1:PORT"

Faults (``lms.faults``): a burst of throttled or failing answers, malformed or cut-short
bodies, an exception or warning for a chosen user, a replaced answer.
Foreground: ``python -m rostersync.sandbox.moodle --port 8082 --token abc123``.

For benchmarks it can cost what a real site costs (``Cost``): every web-service call
boots the whole site (tens of milliseconds) and each user it writes costs more. The wait
is asynchronous, so concurrent calls overlap as a site's PHP workers do. Tests leave it
at zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from rostersync.sandbox.moodle_data import MoodleSite, WsError, decode_form
from rostersync.sandbox.serving import HOST, LoopbackSandbox, LoopbackServer, run_from_command_line

ENDPOINT = "/webservice/rest/server.php"
HOLD_LIMIT = 10.0  # seconds a held answer waits for the call it awaits
Reply = tuple[int, dict[str, str], bytes]


class MoodleFaults:
    """Thread-safe switches the app consults before each call (the demo and tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Reply] = []  # answered in order, one per request
        self._refusals: dict[str, tuple[str, dict[str, str]]] = {}
        self._replacements: dict[str, list[Any]] = {}
        self._holds: list[tuple[str, str, float]] = []  # (held, awaited, seconds at most)
        self.held: list[bool] = []  # per hold: did the awaited call come?
        self.served = 0

    def burst(self, count: int, status: int = 503, retry_after: float | None = None) -> None:
        """The next ``count`` requests are answered ``status`` (a proxy's throttle)."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        with self._lock:
            self._queue += [(status, headers, b"Service Unavailable")] * count

    def rest_disabled(self, count: int = 1) -> None:
        """The next ``count`` requests get the bare 403 webservice/rest/server.php sends
        when web services or the REST protocol are not enabled."""
        with self._lock:
            self._queue += [(403, {}, b"")] * count

    def malformed(self, count: int = 1, body: bytes = b'{"users": [{"id": 3, "userna') -> None:
        """The next ``count`` requests get a 200 with this body (cut short by default)."""
        with self._lock:
            self._queue += [(200, {"Content-Type": "application/json"}, body)] * count

    def refuse(self, who: str, *, warning: bool = False, exception: str = "moodle_exception",
               errorcode: str = "generalexceptionmessage",
               message: str = "Error code: generalexceptionmessage") -> None:
        """Creates and updates of the user whose username, idnumber or id is ``who`` fail:
        a 200-body exception, or (``warning``) a warnings answer naming the user."""
        with self._lock:
            self._refusals[who] = ("warning" if warning else "exception",
                                   {"exception": exception, "errorcode": errorcode,
                                    "message": message})

    def hold(self, function: str, until: str, limit: float = HOLD_LIMIT) -> None:
        """The next call of ``function`` is answered only once a call of ``until``
        arrives (or after ``limit`` seconds): shows whether a client has the two out at
        once. ``held`` records, per hold, whether ``until`` came."""
        with self._lock:
            self._holds.append((function, until, limit))

    def take_hold(self, function: str) -> tuple[str, float] | None:
        with self._lock:
            for index, (held, until, limit) in enumerate(self._holds):
                if held == function:
                    del self._holds[index]
                    return until, limit
        return None

    def replace_next(self, function: str, answer: Any) -> None:
        """The next call of ``function`` gets ``answer`` (JSON) instead of the truth."""
        with self._lock:
            self._replacements.setdefault(function, []).append(answer)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._refusals.clear()
            self._replacements.clear()
            self._holds.clear()

    def __call__(self, function: str, params: dict[str, Any]) -> Reply | None:
        with self._lock:
            if self._queue:
                self.served += 1
                return self._queue.pop(0)
            if self._replacements.get(function):
                self.served += 1
                return _json(self._replacements[function].pop(0))
            for record in _user_records(function, params):
                keys = {str(record.get(k)) for k in ("username", "idnumber", "id")}
                for who, (kind, error) in self._refusals.items():
                    if who in keys:
                        self.served += 1
                        if kind == "exception":
                            return _json(error)
                        return _json({"warnings": [{
                            "item": "user", "itemid": int(record.get("id", 0)),
                            "warningcode": error["errorcode"], "message": error["message"]}]})
        return None


def _user_records(function: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    if function not in ("core_user_create_users", "core_user_update_users"):
        return []
    users = params.get("users")
    return [u for u in users if isinstance(u, dict)] if isinstance(users, list) else []


def _json(data: Any) -> Reply:
    return 200, {"Content-Type": "application/json"}, json.dumps(data).encode()


@dataclass(frozen=True)
class Cost:
    """Seconds a call takes on a real site: the bootstrap of every call, and each user
    it writes (create/update) or reads (a lookup by field)."""

    call: float = 0.0
    user_written: float = 0.0
    user_read: float = 0.0

    def of(self, function: str, params: dict[str, Any]) -> float:
        if function in ("core_user_create_users", "core_user_update_users"):
            return self.call + self.user_written * len(_user_records(function, params))
        values = params.get("values")
        if function == "core_user_get_users_by_field" and isinstance(values, list):
            return self.call + self.user_read * len(values)
        return self.call


class MoodleApp:
    """The ASGI application (plain ASGI: no web framework is installed)."""

    FUNCTIONS = {
        "core_user_get_users": "get_users",
        "core_user_get_users_by_field": "get_users_by_field",
        "core_user_create_users": "create_users",
        "core_user_update_users": "update_users",
        "core_user_delete_users": "delete_users",
        "core_cohort_create_cohorts": "create_cohorts",
        "core_cohort_get_cohorts": "get_cohorts",
        "core_cohort_get_cohort_members": "get_cohort_members",
        "core_cohort_add_cohort_members": "add_cohort_members",
        "core_cohort_delete_cohort_members": "delete_cohort_members",
    }

    def __init__(self, site: MoodleSite, token: str, *,
                 functions: set[str] | None = None, faults: MoodleFaults | None = None,
                 cost: Cost | None = None, workers: int = 0) -> None:
        self.site = site
        self.cost = cost or Cost()
        self._spent = 0.0  # the cost of the call being answered
        self.token = token
        # The external service's functions: calling any other is an access exception.
        self.functions = set(self.FUNCTIONS) | {"core_webservice_get_site_info"} \
            if functions is None else functions
        self.faults = faults or MoodleFaults()
        # Holds stay with these switches even where a test wraps ``faults`` in its own.
        self._holds = self.faults
        self.calls: list[tuple[str, str, str]] = []  # (function, raw query, raw body)
        # Calls being answered, and for each call as it came, the calls it found there:
        # whether a client had two at once (a site's PHP workers serve them side by side).
        self.in_flight: list[str] = []
        self.met: list[tuple[str, tuple[str, ...]]] = []
        self._arrivals: dict[str, list[asyncio.Event]] = {}  # awaited function -> holds
        # PHP workers (PHP_CLI_SERVER_WORKERS): calls beyond them queue for one.
        self.workers = workers
        self._workers: asyncio.Semaphore | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = scope.get("query_string", b"").decode("latin-1")
        if self.workers and self._workers is None:
            self._workers = asyncio.Semaphore(self.workers)  # on the server's own loop
        if self._workers is None:
            await self._serve(scope, query, body, send)
            return
        async with self._workers:
            await self._serve(scope, query, body, send)

    async def _serve(self, scope: dict[str, Any], query: str, body: bytes, send: Any) -> None:
        function = dict(parse_qsl(query)).get("wsfunction", "")
        self.met.append((function, tuple(self.in_flight)))
        for arrived in self._arrivals.pop(function, []):
            arrived.set()
        self.in_flight.append(function)
        try:
            status, headers, payload, spent = self._costed(scope, query, body)
            if spent:
                await asyncio.sleep(spent)
            hold = self._holds.take_hold(function)
            if hold is not None:
                until, limit = hold
                arrived = asyncio.Event()
                self._arrivals.setdefault(until, []).append(arrived)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), limit)
                self._holds.held.append(arrived.is_set())
        finally:
            self.in_flight.remove(function)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
        await send({"type": "http.response.body", "body": payload})

    def _costed(self, scope: dict[str, Any], query: str, body: bytes
                ) -> tuple[int, dict[str, str], bytes, float]:
        self._spent = 0.0  # answered synchronously: no other call runs in between
        status, headers, payload = self._answer(scope, query, body)
        return status, headers, payload, self._spent

    def _answer(self, scope: dict[str, Any], query: str, body: bytes) -> Reply:
        if scope["path"] != ENDPOINT:
            return 404, {"Content-Type": "text/html"}, b"<h1>Not Found</h1>"
        if scope["method"] != "POST":
            return 405, {"Content-Type": "text/html"}, b"<h1>Method Not Allowed</h1>"
        args = dict(parse_qsl(query, keep_blank_values=True))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        form = body.decode("utf-8", "replace")
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = ""  # PHP fills $_POST only from form bodies: a JSON body is no params
        function = args.get("wsfunction", "")
        self.calls.append((function, query, form))
        try:
            params = decode_form(form)
        except WsError as error:
            return self._error(error)
        token = str(params.pop("wstoken", "")) or args.get("wstoken", "")
        if args.get("moodlewsrestformat") != "json":
            return 200, {"Content-Type": "application/xml"}, (
                b'<?xml version="1.0" encoding="UTF-8" ?>\n<RESPONSE>\n</RESPONSE>\n')
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return self._error(WsError("moodle_exception", "invalidtoken",
                                       "Invalid token - token not found"))
        self._spent = self.cost.of(function, params)
        injected = self.faults(function, params)
        if injected is not None:
            return injected
        try:
            return _json(self._dispatch(function, params))
        except WsError as error:
            return self._error(error)

    def _dispatch(self, function: str, params: dict[str, Any]) -> Any:
        if function not in self.functions:
            if function in self.FUNCTIONS or function == "core_webservice_get_site_info":
                raise WsError("webservice_access_exception", "accessexception",
                              "Access control exception",
                              f"Access to the function {function}() is not allowed.")
            raise WsError("dml_missing_record_exception", "invalidrecord",
                          "Can't find data record in database table external_functions.")
        if function == "core_webservice_get_site_info":
            return {"sitename": "Sandbox Moodle", "username": "wsuser", "release": "4.3+",
                    "version": "2023100900", "userid": 2,
                    "functions": [{"name": f, "version": "2023100900"}
                                  for f in sorted(self.functions)]}
        try:
            return getattr(self.site, self.FUNCTIONS[function])(params)
        except (ValueError, TypeError, AttributeError) as exc:
            raise WsError("invalid_parameter_exception", "invalidparameter",
                          "Invalid parameter value detected", str(exc)) from None

    def _error(self, error: WsError) -> Reply:
        body = {"exception": error.exception, "errorcode": error.errorcode,
                "message": error.message}
        if error.debuginfo and self.site.debug:
            body["debuginfo"] = error.debuginfo
        return _json(body)  # HTTP 200: Moodle's way (§6.1)


class MoodleSandbox(LoopbackSandbox):
    """A Moodle site on 127.0.0.1 in a background thread; a context manager."""

    def __init__(self, token: str, port: int = 0, *, host: str = HOST,
                 profile_fields: tuple[str, ...] = (), debug: bool = True,
                 functions: set[str] | None = None, cost: Cost | None = None,
                 workers: int = 0, **site_options: Any) -> None:
        self.site = MoodleSite(profile_fields=profile_fields, debug=debug, **site_options)
        self.faults = MoodleFaults()
        self.app = MoodleApp(self.site, token, functions=functions, faults=self.faults,
                             cost=cost, workers=workers)
        self._server = LoopbackServer(self.app, "moodle-sandbox", host, port, lifespan="off")
        self.base_url = ""

    @property
    def calls(self) -> list[tuple[str, str, str]]:
        """Every call so far as (wsfunction, raw query, raw form body)."""
        return self.app.calls

    def function_calls(self) -> list[str]:
        return [function for function, _q, _b in self.app.calls]

    def add_cohort(self, idnumber: str, name: str | None = None) -> int:
        [cohort] = self.site.create_cohorts({"cohorts": [{
            "categorytype": {"type": "system", "value": ""}, "name": name or idnumber,
            "idnumber": idnumber}]})
        return cohort["id"]

    def cohort_members(self, idnumber: str) -> set[str]:
        """The idnumbers of a cohort's members (as people, not Moodle ids)."""
        cohort = next(c for c in self.site.cohorts.values() if c["idnumber"] == idnumber)
        return {self.site.users[u]["idnumber"] for u in self.site.members[cohort["id"]]}

    def user(self, idnumber: str) -> dict[str, Any] | None:
        """A user as web services show it, found by idnumber (for tests)."""
        found = self.site.user_by("idnumber", idnumber)
        return None if found is None else self.site.view(found)

    def start(self) -> MoodleSandbox:
        host, port = self._server.start()
        self.base_url = f"http://{host}:{port}"
        return self


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a Moodle web services sandbox.")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    parser.add_argument("--token", required=True, help="the wstoken clients must send")
    parser.add_argument("--profile-field", action="append", default=[],
                        help="a custom profile field shortname (repeatable)")
    parser.add_argument("--cohort", action="append", default=[],
                        help="a cohort idnumber to create (repeatable)")
    parser.add_argument("--call-ms", type=float, default=0.0,
                        help="milliseconds every call costs (a real site's bootstrap)")
    parser.add_argument("--user-ms", type=float, default=0.0,
                        help="milliseconds each user a create/update call writes costs")
    parser.add_argument("--read-ms", type=float, default=0.0,
                        help="milliseconds each user a lookup by field reads costs")
    parser.add_argument("--workers", type=int, default=0,
                        help="calls answered at once, as a site's PHP workers "
                             "(PHP_CLI_SERVER_WORKERS); 0: no bound")
    args = parser.parse_args(argv)
    cost = Cost(args.call_ms / 1000, args.user_ms / 1000, args.read_ms / 1000)
    lms = MoodleSandbox(token=args.token, port=args.port,
                        profile_fields=tuple(args.profile_field), cost=cost,
                        workers=args.workers)
    for idnumber in args.cohort:
        lms.add_cohort(idnumber)
    run_from_command_line(lms, parser, lambda lms: lms.base_url)


if __name__ == "__main__":
    main()
