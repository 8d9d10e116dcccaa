"""A Canvas-speaking LMS on loopback, for tests and the demo (docs/canvas.md §7.1-§7.4).

It serves the calls the Canvas target makes:

    GET    /api/v1/accounts/:account_id                     the account (doctor)
    GET    /api/v1/accounts/:account_id/users?search_term=  users, paged by Link header
    POST   /api/v1/accounts/:account_id/users               create a user and its login
    DELETE /api/v1/accounts/:account_id/users/:user_id      delete a user
    PUT    /api/v1/accounts/:account_id/logins/:login_id    edit or suspend a login
    GET    /api/v1/users/:id | sis_user_id:...              one user
    PUT    /api/v1/users/:id                                names, email, suspend event
    GET    /api/v1/users/:id/logins                         a user's logins, paged
    GET    /api/v1/users/:id/profile                        the profile (time zone, locale)
    GET    /api/v1/accounts/:account_id/group_categories    group categories, paged
    POST   /api/v1/accounts/:account_id/group_categories    create one (name unique)
    GET    /api/v1/group_categories/:id/groups              its groups, paged
    POST   /api/v1/group_categories/:id/groups              create a group
    GET    /api/v1/groups/:id                               one group
    GET    /api/v1/groups/:id/memberships                   memberships, paged
    POST   /api/v1/groups/:id/memberships                   add user_id (idempotent)
    DELETE /api/v1/groups/:id/users/:user_id                remove a member
    DELETE /api/v1/groups/:id/memberships/:membership_id    remove a membership

with Canvas's habits: a bearer token (401 for a wrong one; a second, read-only token
gets Canvas's permission 401 on writes), 10 per page unless per_page asks for more (capped at
``max_per_page``), opaque page bookmarks in ``Link`` (current, next, prev, first, last),
a leaky bucket per token (high-water 700, 10 units/s) answering ``403 Forbidden (Rate
Limit Exceeded)`` when full, with ``X-Request-Cost`` and ``X-Rate-Limit-Remaining`` on
every answer, and nested validation errors (canvas_data).

    with CanvasSandbox(token="t") as lms:
        lms.base_url          # "http://127.0.0.1:PORT"
        lms.data.add("Ada Novak", "ada@acme.example")

Foreground, for the demo: ``python -m rostersync.sandbox.canvas --port 8082 --token t``.
Its rules follow the Canvas source docs/canvas.md cites.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

from rostersync.sandbox.canvas_data import CanvasData, Invalid, NotFound
from rostersync.sandbox.serving import HOST, AppSandbox, LoopbackServer, run_from_command_line

RATE_LIMITED_BODY = b"403 Forbidden (Rate Limit Exceeded)\n"
MIN_SEARCH_TERM = 3  # SearchTermHelper::MIN_SEARCH_TERM_LENGTH
HIGH_WATER = 700.0  # units (§7.1)
LEAK_PER_SECOND = 10.0
DEFAULT_PER_PAGE = 10

Reply = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class Truncated:
    """A fault answer: declare ``declared`` bytes of body, send ``body``, drop the line."""

    body: bytes
    declared: int


# A fault hook: (method, path) -> a Reply to send instead, Truncated, or None to pass.
Fault = Callable[[str, str], "Reply | Truncated | None"]


def json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, \
        json.dumps(body).encode()


def rate_limited() -> Reply:
    return 403, {"Content-Type": "text/plain", "X-Rate-Limit-Remaining": "0.0"}, \
        RATE_LIMITED_BODY


def throttle_burst(count: int, then: Fault | None = None) -> Fault:
    """A fault hook: the next ``count`` requests are throttled, then ``then`` decides."""
    left = [count]
    lock = threading.Lock()

    def hook(method: str, path: str) -> Reply | Truncated | None:
        with lock:
            if left[0] > 0:
                left[0] -= 1
                return rate_limited()
        return then(method, path) if then else None

    return hook


def once(answer: Reply | Truncated, method: str | None = None,
         path_contains: str = "") -> Fault:
    """A fault hook answering ``answer`` to the first matching request only."""
    used = [False]

    def hook(m: str, p: str) -> Reply | Truncated | None:
        if not used[0] and (method is None or m == method) and path_contains in p:
            used[0] = True
            return answer
        return None

    return hook


class _Bucket:
    """Canvas's leaky bucket for one token: cost flows in, leaks out at a fixed rate."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.level = 0.0
        self.at = clock()

    def charge(self, cost: float) -> float | None:
        """Remaining units after charging, or None when the bucket would overflow."""
        now = self.clock()
        self.level = max(0.0, self.level - (now - self.at) * LEAK_PER_SECOND)
        self.at = now
        if self.level + cost > HIGH_WATER:
            return None
        self.level += cost
        return HIGH_WATER - self.level


class _Refusal(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(str(body))
        self.status, self.body = status, body


def _message(text: str) -> dict[str, Any]:
    return {"errors": [{"message": text}]}


def _form(body: bytes, content_type: str) -> dict[str, str]:
    """Form or JSON parameters as flat ``user[name]``-style keys (§7.2: either works)."""
    if content_type.startswith("application/json"):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise _Refusal(400, _message("The request body is not valid JSON")) from None
        flat: dict[str, str] = {}
        for key, value in (data.items() if isinstance(data, dict) else ()):
            if isinstance(value, dict):
                flat.update({f"{key}[{k}]": str(v) for k, v in value.items()})
            else:
                flat[key] = str(value)
        return flat
    text = body.decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


class CanvasApp:
    """The ASGI application (plain ASGI: no web framework is installed)."""

    def __init__(self, data: CanvasData, token: str, *, read_only_token: str | None = None,
                 account_id: str = "1", max_per_page: int = 100, omit_last: bool = False,
                 request_cost: float = 0.01, clock: Callable[[], float] = time.monotonic,
                 fault: Fault | None = None) -> None:
        self.data = data
        self.tokens = {token: "admin"} | ({read_only_token: "read"} if read_only_token else {})
        self.account_id = account_id
        self.max_per_page = max_per_page
        self.omit_last = omit_last
        self.request_cost = request_cost
        self.fault = fault
        self._buckets = {t: _Bucket(clock) for t in self.tokens}
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str, str]] = []  # (method, path, raw query)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        self.requests.append((method, path, query))
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        injected = self.fault(method, path) if self.fault else None
        if isinstance(injected, Truncated):
            await _send_truncated(send, injected)
            return
        if injected is not None:
            await _send(send, *injected)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        await _send(send, *self._answer(method, path, query, headers, body))

    def _answer(self, method: str, path: str, query: str, headers: dict[str, str],
                body: bytes) -> Reply:
        token = headers.get("authorization", "").removeprefix("Bearer ").strip()
        role = next((r for t, r in self.tokens.items()
                     if hmac.compare_digest(t.encode(), token.encode())), None)
        if role is None:
            message = "Invalid access token." if token else "user authorization required"
            return json_reply(401, _message(message),
                              {"WWW-Authenticate": 'Bearer realm="canvas-lms"'})
        with self._lock:
            left = self._buckets[token].charge(self.request_cost)
        if left is None:
            return rate_limited()
        meter = {"X-Request-Cost": f"{self.request_cost:.4f}",
                 "X-Rate-Limit-Remaining": f"{left:.4f}"}
        if method != "GET" and role != "admin":
            # Canvas's refusal of a valid token's user is a 401 with a "status"
            # (render_json_unauthorized, lib/authentication_methods.rb), not a 403.
            return json_reply(401, {"status": "unauthorized", "errors": [
                {"message": "user not authorized to perform that action"}]}, meter)
        multi = parse_qs(query, keep_blank_values=True)
        params = {k: v[-1] for k, v in multi.items()}
        try:
            status, extra, payload = self._route(
                method, path, params, _form(body, headers.get("content-type", "")),
                headers.get("host", ""), tuple(multi.get("include[]", ())))
        except _Refusal as refusal:
            return json_reply(refusal.status, refusal.body, meter)
        except Invalid as invalid:
            return json_reply(invalid.status, invalid.body, meter)
        except NotFound:
            return json_reply(404, _message("The specified resource does not exist."), meter)
        return json_reply(status, payload, {**meter, **extra})

    def _route(self, method: str, path: str, params: dict[str, str], form: dict[str, str],
               host: str, include: tuple[str, ...] = ()) -> tuple[int, dict[str, str], Any]:
        match = re.fullmatch(r"/api/v1/accounts/([^/]+)(/.*)?", path)
        if match:
            if unquote(match.group(1)) not in (self.account_id, "self"):
                raise NotFound(match.group(1))
            rest = match.group(2) or ""
            if rest == "" and method == "GET":
                return 200, {}, dict(self.data.account)
            if rest == "/users" and method == "GET":
                term = params.get("search_term")
                if term is not None and len(term.strip()) < MIN_SEARCH_TERM:
                    raise _Refusal(400, {"errors": [{
                        "field": "search_term", "code": "invalid",
                        "message": f"{MIN_SEARCH_TERM} or more characters is required"}]})
                # Only what include[] asks for (api_index: avatar_url, email, last_login,
                # time_zone, uuid): no email or time zone otherwise.
                users = self.data.list_users(term, set(include) & {"email", "time_zone"})
                return self._page(users, path, params, host, include)
            if rest == "/users" and method == "POST":
                # Canvas answers a creation with user_json(..., ["locale"]): no email.
                made = self.data.create_user(form)
                return 200, {}, self.data.user_json(made["id"], ("locale",))
            user = re.fullmatch(r"/users/([^/]+)", rest)
            if user and method == "DELETE":
                return 200, {}, self.data.delete_user(self.data.find_user(unquote(user[1])))
            login = re.fullmatch(r"/logins/(\d+)", rest)
            if login and method == "PUT":
                return 200, {}, self.data.update_login(int(login[1]), form)
            if rest == "/group_categories" and method == "GET":
                return self._page(self.data.categories(), path, params, host)
            if rest == "/group_categories" and method == "POST":
                return 200, {}, self.data.create_category(form)
        if path.startswith(("/api/v1/group_categories/", "/api/v1/groups/")):
            return self._group_route(method, path, params, form, host)
        match = re.fullmatch(r"/api/v1/users/([^/]+)(/logins|/profile)?", path)
        if match:
            user_id = self.data.find_user(unquote(match.group(1)))
            if match.group(2) == "/profile" and method == "GET":
                return 200, {}, self.data.profile_json(user_id)
            if match.group(2) and method == "GET":
                return self._page(self.data.logins_of(user_id), path, params, host)
            if not match.group(2) and method == "GET":
                return 200, {}, self.data.user_json(user_id)
            if not match.group(2) and method == "PUT":
                return 200, {}, self.data.update_user(user_id, form)
        raise _Refusal(404, _message(f"No route matches {method} {path}"))

    def _group_route(self, method: str, path: str, params: dict[str, str],
                     form: dict[str, str], host: str) -> tuple[int, dict[str, str], Any]:
        """Group categories, groups and memberships (§7.4)."""
        match = re.fullmatch(r"/api/v1/group_categories/(\d+)/groups", path)
        if match and method == "GET":
            return self._page(self.data.groups_in(int(match[1])), path, params, host)
        if match and method == "POST":
            return 200, {}, self.data.create_group(int(match[1]), form)
        match = re.fullmatch(r"/api/v1/groups/(\d+)(?:/(memberships|users)(?:/([^/]+))?)?",
                             path)
        if match is None:
            raise _Refusal(404, _message(f"No route matches {method} {path}"))
        group_id, part, item = int(match[1]), match[2], match[3]
        if part is None and method == "GET":
            return 200, {}, self.data.group(group_id)
        if part == "memberships" and item is None and method == "GET":
            state = params.get("filter_states[]")
            return self._page(self.data.memberships_of(group_id, [state] if state else None),
                              path, params, host)
        if part == "memberships" and item is None and method == "POST":
            return 200, {}, self.data.add_membership(group_id, form)
        if part == "memberships" and item and item.isdigit() and method == "DELETE":
            return 200, {}, self.data.remove_membership(group_id, int(item))
        if part == "users" and item and method == "DELETE":
            return 200, {}, self.data.remove_member(group_id, unquote(item))
        raise _Refusal(404, _message(f"No route matches {method} {path}"))

    def _page(self, items: list[Any], path: str, params: dict[str, str], host: str,
              include: tuple[str, ...] = ()) -> tuple[int, dict[str, str], Any]:
        """One page and its Link header; pages are opaque ``bookmark:`` values (§7.1).
        The links repeat the query, every ``include[]`` value included."""
        try:
            per_page = int(params.get("per_page", DEFAULT_PER_PAGE))
        except ValueError:
            raise _Refusal(400, _message("per_page must be a number")) from None
        per_page = max(1, min(per_page, self.max_per_page))
        start = _offset(params.get("page"))
        others = [(k, v) for k, v in params.items()
                  if k not in ("page", "per_page") and not (include and k == "include[]")]
        others += [("include[]", value) for value in include]

        def link(offset: int, rel: str) -> str:
            query = urlencode([*others, ("page", _bookmark(offset)), ("per_page", per_page)])
            return f'<http://{host}{path}?{query}>; rel="{rel}"'

        links = [link(start, "current")]
        if start + per_page < len(items):
            links.append(link(start + per_page, "next"))
        if start > 0:
            links.append(link(max(0, start - per_page), "prev"))
        links.append(link(0, "first"))
        if not self.omit_last:
            links.append(link(max(0, (len(items) - 1) // per_page * per_page), "last"))
        return 200, {"Link": ",".join(links)}, items[start:start + per_page]


def _bookmark(offset: int) -> str:
    return "bookmark:" + base64.urlsafe_b64encode(json.dumps([offset]).encode()).decode()


def _offset(page: str | None) -> int:
    if not page:
        return 0
    if page.isdigit():  # Canvas also takes plain page numbers
        return 0 if int(page) < 1 else (int(page) - 1) * DEFAULT_PER_PAGE
    try:
        [offset] = json.loads(base64.urlsafe_b64decode(page.removeprefix("bookmark:")))
        return max(0, int(offset))
    except (ValueError, TypeError):
        raise _Refusal(400, _message(f"invalid page {page!r}")) from None


async def _send(send: Any, status: int, headers: dict[str, str], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
    await send({"type": "http.response.body", "body": body})


async def _send_truncated(send: Any, fault: Truncated) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(fault.declared).encode())]})
    await send({"type": "http.response.body", "body": fault.body, "more_body": True})
    # The body ends early: close the connection mid-message, as a dying node does.
    # uvicorn's ``send`` is a bound method of the request cycle, which holds the transport;
    # close() flushes what was written, then sends FIN.
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("this ASGI server does not expose the connection to close")
    transport.close()
    cycle.disconnected = True  # so uvicorn does not log an unfinished response


class CanvasSandbox(AppSandbox):
    """A Canvas instance on 127.0.0.1 in a background thread; a context manager.

    ``clock`` (seconds) drives the rate-limit bucket; ``request_cost`` is what each
    request costs (raise it to make throttling happen without thousands of requests).
    """

    def __init__(self, token: str, port: int = 0, *, host: str = HOST,
                 read_only_token: str | None = None, max_per_page: int = 100,
                 omit_last: bool = False, request_cost: float = 0.01,
                 clock: Callable[[], float] = time.monotonic,
                 fault: Fault | None = None) -> None:
        self.data = CanvasData()
        self.app = CanvasApp(self.data, token, read_only_token=read_only_token,
                             account_id=str(self.data.account["id"]),
                             max_per_page=max_per_page, omit_last=omit_last,
                             request_cost=request_cost, clock=clock, fault=fault)
        self._server = LoopbackServer(self.app, "canvas-sandbox", host, port, lifespan="off")
        self.base_url = ""

    @property
    def account_id(self) -> str:
        return str(self.data.account["id"])

    def start(self) -> CanvasSandbox:
        host, port = self._server.start()
        self.base_url = f"http://{host}:{port}"
        return self


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a Canvas LMS sandbox on loopback.")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    parser.add_argument("--token", required=True, help="the access token clients must send")
    parser.add_argument("--read-only-token", help="a token that may read but not write")
    args = parser.parse_args(argv)
    lms = CanvasSandbox(token=args.token, port=args.port, read_only_token=args.read_only_token)
    run_from_command_line(lms, parser, lambda lms: f"{lms.base_url} (account_id = {lms.account_id})")


if __name__ == "__main__":
    main()
