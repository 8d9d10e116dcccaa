"""The real-time service: the webhook listener, the dispatcher, and the periodic tick
that re-checks parked events. Started and stopped by the scheduler, on its loop.

Routes (POST bodies are JSON, answers are JSON):
    POST /webhooks/bamboohr   a BambooHR webhook (X-BambooHR-Signature, -Timestamp)
    POST /webhooks/event      the generic signed event (X-Rostersync-Signature, -Timestamp)
    GET  /healthz             200 while listening
Refusals: 401 unsigned, forged or stale; 409 replayed; 400 unreadable (not JSON, nested
deeper than intake.MAX_NESTING, an employee id that is not a string or an integer); 404 an
intake without a configured secret; 503 over ``realtime.max_connections``. Log lines are
rate-limited (sync.realtime.log_limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from rostersync.storage import events as event_store
from rostersync.storage import intake as intake_store
from rostersync.sync.config import Config, secret_from_env
from rostersync.sync.config_realtime import split_host_port
from rostersync.sync.engine import Engine
from rostersync.sync.realtime import intake, signatures
from rostersync.sync.realtime.dispatch import Dispatcher
from rostersync.sync.realtime.http import HttpListener, Request, Response
from rostersync.sync.realtime.log_limit import RateLimitedLog

TICK_SECONDS = 30.0
Route = Callable[[Request], Awaitable[Response]]


def _json(status: int, doc: dict[str, Any]) -> Response:
    return Response(status, json.dumps(doc, sort_keys=True).encode())


class RealtimeService:
    def __init__(self, engine: Engine, config: Config, *, lock: asyncio.Lock | None = None,
                 log: Callable[[dict[str, Any]], None] | None = None,
                 extra_routes: dict[str, Route] | None = None) -> None:
        self.engine = engine
        self.config = config
        # A flood of refusals or failed accepts is one line per message a minute, counted.
        self.log = RateLimitedLog(log or (lambda _record: None))
        self.dispatcher = Dispatcher(engine, config, lock=lock, log=self.log)
        rt = config.realtime
        # Secrets are read once, now: a missing variable is a config error at start.
        self._keys = {
            "bamboohr": (secret_from_env(rt.bamboohr_secret_env, "realtime.bamboohr_secret_env")
                         if rt.bamboohr_secret_env else None),
            "event": (secret_from_env(rt.generic_secret_env, "realtime.generic_secret_env")
                      if rt.generic_secret_env else None),
        }
        host, port = split_host_port(rt.listen)
        self.listener = HttpListener(host, port, self.handle, log=self.log, name="webhooks",
                                     max_connections=rt.max_connections)
        self.routes = dict(extra_routes or {})
        self.refused = 0  # requests refused since start (forged, stale, replayed, unreadable)
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> str:
        """Listen and start dispatching; returns the listener's URL."""
        await self.listener.start()
        self._tasks = [asyncio.create_task(self.dispatcher.run_forever(), name="realtime"),
                       asyncio.create_task(self._tick(), name="realtime-tick")]
        self.dispatcher.wake()  # events queued before a restart
        return self.listener.url

    def close(self) -> None:
        """Stop listening and dispatching (synchronous, for the console's unmount)."""
        self.listener.close()
        for task in self._tasks:
            task.cancel()

    async def settle(self) -> None:
        """Stop listening, then let a real-time run in progress finish (a shutdown
        interrupts it between operations) rather than cancel it mid-request."""
        self.listener.close()
        await self.dispatcher.idle.wait()

    async def stop(self) -> None:
        self.close()
        await self.listener.wait_closed()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self.log.flush()

    async def _tick(self) -> None:
        """Parked (gated) events and busy retries get another look; old events go."""
        keep = timedelta(days=self.config.realtime.keep_events_days)
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self.log.flush()
            self.dispatcher.wake()
            try:
                await asyncio.to_thread(event_store.prune, self.engine.store,
                                        self.engine.clock.now() - keep)
                await asyncio.to_thread(intake_store.prune_refusals, self.engine.store,
                                        self.engine.clock.now() - keep)
            except Exception as exc:  # the database is busy or gone: try next tick
                self.log({"event": "job_error", "job": "realtime-prune", "error": str(exc)})

    # -- HTTP ---------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        if request.path in self.routes:
            return await self.routes[request.path](request)
        if request.path == "/healthz":
            return _json(200, {"ok": True})
        source = {"/webhooks/bamboohr": "bamboohr", "/webhooks/event": "event"}.get(
            request.path)
        if source is None:
            return _json(404, {"error": f"no such endpoint: {request.path}"})
        if request.method != "POST":
            return _json(405, {"error": "use POST"})
        key = self._keys[source]
        if key is None:
            return _json(404, {"error": f"the {source} intake is not configured"})
        return await self._intake(source, key.encode(), request)

    async def _intake(self, source: str, key: bytes, request: Request) -> Response:
        now = self.engine.clock.now()
        skew = self.config.realtime.max_skew_seconds
        verify = signatures.verify_bamboohr if source == "bamboohr" else signatures.verify_generic
        parse = intake.parse_bamboohr if source == "bamboohr" else intake.parse_generic
        try:
            signature = verify(key, request.body, request.headers, now, skew)
            events = parse(request.body)
        except signatures.SignatureError as exc:
            return await self._refuse(401, source, str(exc))
        except intake.IntakeError as exc:
            return await self._refuse(400, source, str(exc))
        rows = [(e.employee_id, e.action, "queued" if e.actionable else "ignored", e.detail)
                for e in events]
        try:
            await asyncio.to_thread(event_store.record_delivery, self.engine.store, now,
                                    source, signatures.signature_hash(signature), rows)
        except event_store.Replayed as exc:
            return await self._refuse(409, source, str(exc))
        queued = sum(1 for r in rows if r[2] == "queued")
        if queued:
            self.dispatcher.wake()
        return _json(202, {"accepted": len(rows), "queued": queued})

    async def _refuse(self, status: int, source: str, why: str) -> Response:
        self.refused += 1
        self.log({"event": "webhook_refused", "source": source, "status": status, "why": why})
        try:  # stored, so that `rostersync status` in another process can tell
            await asyncio.to_thread(intake_store.record_refusal, self.engine.store,
                                    self.engine.clock.now(), source, status, why)
        except Exception as exc:  # a busy database must not turn a refusal into a 500
            self.log({"event": "job_error", "job": "webhook-refusal", "error": str(exc)})
        return _json(status, {"error": why})
