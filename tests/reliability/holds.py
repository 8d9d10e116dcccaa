"""A hook for the SCIM sandbox that counts the creates (POST /Users) it receives and holds
the n-th until the test releases it: the moment a kill or a signal lands mid-apply."""

from __future__ import annotations

import threading

from rostersync.sandbox.scim_server import ScimSandbox


class HoldCreate:
    def __init__(self, lms: ScimSandbox, nth: int) -> None:
        self.reached, self.release = threading.Event(), threading.Event()
        self.count, self._nth = 0, nth
        self._lock = threading.Lock()
        lms.on_request = self

    def __call__(self, method: str, path: str) -> None:
        if method != "POST" or not path.rstrip("/").endswith("/Users"):
            return
        with self._lock:
            self.count += 1
            hit = self.count == self._nth
        if hit:
            self.reached.set()
            self.release.wait(60)
