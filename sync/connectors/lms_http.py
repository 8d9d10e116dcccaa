"""The HTTP client every LMS target sends through, sized to the engine's concurrency."""

from __future__ import annotations

from typing import Any, Protocol

import httpx


class PoolSettings(Protocol):
    """What the client is sized from: the target's config section."""

    timeout_seconds: float
    verify_tls: bool
    concurrency: int


def pooled_client(config: PoolSettings, **options: Any) -> httpx.AsyncClient:
    """One connection per request the engine may have in flight, kept alive between runs'
    requests. No pool timeout: waiting for one of our own connections is not a failure of
    the LMS; the engine bounds its requests to ``config.concurrency``."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(config.timeout_seconds, pool=None),
        verify=config.verify_tls,
        limits=httpx.Limits(max_connections=config.concurrency,
                            max_keepalive_connections=config.concurrency),
        **options)
