"""Write the plan's batches on a second thread while the next batch is evaluated.

SQLite releases the GIL while it writes pages and commits, so on two cores the commit of
batch N overlaps the evaluation of batch N+1. Batches touch different people, so the
order of their transactions does not matter; the final transaction (deactivations after
the mass check, the new snapshot) is queued last and runs after all of them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from storage.db import Store

Job = Callable[[Any], None]  # receives the writer thread's connection, inside a transaction


class BatchWriter:
    def __init__(self, store: Store, depth: int = 2) -> None:
        self.store = store
        # A short queue bounds memory: evaluation waits when writing falls behind.
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="plan-writer", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._raise_if_failed()
        self._jobs.put(job)

    def close(self) -> None:
        """Wait for every queued job; re-raise the first failure."""
        self._jobs.put(None)
        self._thread.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                if self._error is None:
                    with self.store.tx() as conn:
                        job(conn)
        except BaseException as exc:
            self._error = exc
            # Keep draining so that a blocked submit() wakes up and sees the error.
            while self._jobs.get() is not None:
                pass
        finally:
            self.store.close()
