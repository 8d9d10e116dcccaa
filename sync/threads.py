"""Blocking work (SQLite, file parsing) off the event loop, without orphaned threads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """asyncio.to_thread that never orphans its thread: a cancel waits for the thread to
    finish before it propagates, so the run's lease and bookkeeping outlive its writes."""
    return await _unorphaned(asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs)))


async def _unorphaned(work: asyncio.Future) -> Any:
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        while not work.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([work])
        raise
