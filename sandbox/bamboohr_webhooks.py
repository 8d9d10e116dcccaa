"""The BambooHR sandbox's webhooks: signed JSON posts for each employee change.

As docs/bamboohr.md §1.8 describes a permissioned webhook: a JSON body
``{"employees": [{"id", "action", "timestamp", "changedFields", "fields"}]}`` (the
wrapper is inferred), headers ``X-BambooHR-Signature`` = hex HMAC-SHA256(privateKey,
raw body + timestamp) and ``X-BambooHR-Timestamp`` (Unix seconds). Created and Deleted
events carry empty ``changedFields`` and ``fields``. Changes queued while a post is in
flight go out together in the next one, as a sender with a rate limit batches them.

Posts leave from a worker thread, so a test or the HR-life generator never waits on
the receiver. ``delivered``, ``events_delivered`` and ``failures`` count what happened.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

# Field id -> the display name BambooHR puts in changedFields (§1.8 shows "Employee #").
DISPLAY_NAMES = {
    "employeeNumber": "Employee #", "firstName": "First Name", "lastName": "Last Name",
    "preferredName": "Preferred Name", "workEmail": "Work Email", "department": "Department",
    "jobTitle": "Job Title", "location": "Location", "status": "Status",
    "employmentHistoryStatus": "Employment Status", "terminationDate": "Termination Date",
    "hireDate": "Hire Date", "supervisorEId": "Reporting to",
}
STOP = object()


class WebhookSender:
    def __init__(self, url: str, private_key: str, *, clock: Callable[[], datetime],
                 monitor_fields: list[str] | None = None,
                 post_fields: list[str] | None = None, timeout: float = 10.0) -> None:
        self.url = url
        self._key = private_key.encode()
        self.clock = clock
        # terminationDate cannot be monitored on the real API (§1.8): status changes can.
        self.monitor_fields = monitor_fields
        self.post_fields = post_fields or ["firstName", "lastName", "status",
                                           "employmentHistoryStatus"]
        self.timeout = timeout
        self.delivered = 0
        self.events_delivered = 0  # entries in the posts the receiver accepted
        self.failures: list[str] = []
        self.sent_at: dict[str, float] = {}  # employee id -> Unix time of its last post
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> WebhookSender:
        self._thread = threading.Thread(target=self._run, name="bamboohr-webhooks",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(STOP)
            self._thread.join(10)
            self._thread = None

    def flush(self) -> None:
        """Block until every change queued so far has been posted (or failed)."""
        self._queue.join()

    def on_change(self, action: str, before: dict[str, Any] | None,
                  after: dict[str, Any] | None) -> None:
        entry = self.entry(action, before, after)
        if entry is not None:
            self._queue.put(entry)

    def entry(self, action: str, before: dict[str, Any] | None,
              after: dict[str, Any] | None) -> dict[str, Any] | None:
        current = after or before or {}
        stamp = self.clock().isoformat()
        if action != "Updated":  # Inserted/Deleted: empty changedFields and fields (§1.8)
            return {"id": current.get("id"), "action": "Created" if action == "Inserted"
                    else action, "timestamp": stamp, "changedFields": [], "fields": {}}
        changed = [f for f in sorted(set(before or {}) | set(after or {}))
                   if f != "lastChanged" and (before or {}).get(f) != (after or {}).get(f)]
        if self.monitor_fields is not None:
            changed = [f for f in changed if f in self.monitor_fields]
        if not changed:
            return None
        return {"id": current.get("id"), "action": "Updated", "timestamp": stamp,
                "changedFields": [DISPLAY_NAMES.get(f, f) for f in changed],
                "fields": {f: {"value": current.get(f)} for f in self.post_fields}}

    def signed(self, entries: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({"employees": entries}).encode()
        stamp = str(int(self.clock().timestamp()))
        signature = hmac.new(self._key, body + stamp.encode(), hashlib.sha256).hexdigest()
        return body, {"Content-Type": "application/json", "X-BambooHR-Signature": signature,
                      "X-BambooHR-Timestamp": stamp}

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while True:
                first = self._queue.get()
                if first is STOP:
                    self._queue.task_done()
                    return
                batch, stop = [first], False
                while not self._queue.empty():
                    item = self._queue.get_nowait()
                    if item is STOP:
                        stop = True
                        break
                    batch.append(item)
                try:
                    self._post(client, batch)
                finally:
                    for _ in range(len(batch) + stop):
                        self._queue.task_done()
                if stop:
                    return

    def _post(self, client: httpx.Client, batch: list[dict[str, Any]]) -> None:
        body, headers = self.signed(batch)
        try:
            answer = client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}")
            return
        if answer.status_code >= 300:
            self.failures.append(f"HTTP {answer.status_code}: {answer.text[:200]}")
            return
        self.delivered += 1
        self.events_delivered += len(batch)
        now = self.clock().timestamp()
        for entry in batch:
            self.sent_at[str(entry["id"])] = now
