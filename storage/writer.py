"""A plan's batch writes on a thread of their own, overlapped with evaluating the next.

SQLite does its B-tree work with the GIL released, so on two cores the writes of one
batch cost little while the caller evaluates the next one in Python. That holds only
for statements that are few and large: executemany lets go of the GIL and waits to take
it back on every row, which beside a busy thread is thousands of switch intervals. So a
write handed over here must use multi-row statements (``storage.db.execute_values``)
for anything that grows with the batch.

Writes stay strictly ordered and at most one is in flight: ``submit`` waits for the
previous one, so a batch is committed before the next starts, and memory holds at most
two batches. The batches must touch disjoint people, since the caller's reads of the
next batch do not wait for the write.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

from rostersync.storage.db import Store


class BatchWriter:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rostersync-writer")
        self._pending: Future[None] | None = None

    def submit(self, write: Callable[[Any], None]) -> None:
        """Run ``write(conn)`` in a transaction of its own on the writer thread, once the
        previous write has committed. A failed write raises here or in ``wait``."""
        self.wait()
        self._pending = self._pool.submit(self._write, write)

    def wait(self) -> None:
        """Until every submitted write has committed; raises the first one that failed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _write(self, write: Callable[[Any], None]) -> None:
        with self._store.bulk_writes(), self._store.tx() as conn:
            write(conn)

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # A write in flight finishes before the caller goes on (a run must not end with
        # a thread still writing); the caller's own error wins over the writer's.
        try:
            if exc_type is None:
                self.wait()
            elif self._pending is not None:
                self._pending.exception()
        finally:
            self._pool.submit(self._store.close).result()  # the writer thread's connection
            self._pool.shutdown(wait=True)
