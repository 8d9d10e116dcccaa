"""Blocking work (SQLite, file parsing) off the event loop, without orphaned threads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import ParamSpec, TypeVar

_Params = ParamSpec("_Params")
_Result = TypeVar("_Result")


async def in_thread(fn: Callable[_Params, _Result], *args: _Params.args,
                    **kwargs: _Params.kwargs) -> _Result:
    """asyncio.to_thread that never orphans its thread: a cancel waits for the thread to
    finish before it propagates, so the run's lease and bookkeeping outlive its writes."""
    return await _unorphaned(asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs)))


async def _unorphaned(work: asyncio.Future[_Result]) -> _Result:
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        while not work.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([work])
        raise
