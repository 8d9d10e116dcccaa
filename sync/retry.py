"""Retry policy (pure): exponential backoff with full jitter, honouring Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass

from sync.models import ErrorClass

# Classes worth retrying by themselves. A data or mapping error needs someone to change
# the HR record or the mapping (which plans a new operation anyway), so retrying the same
# payload only adds noise: such an op goes straight to dead, and `ops retry` revives it.
# Auth errors are retried too, but only after the job is resumed (it quarantines).
RETRYABLE = {ErrorClass.transient, ErrorClass.not_found, ErrorClass.conflict, ErrorClass.auth}


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_seconds: float = 30.0
    max_seconds: float = 3600.0


def backoff_seconds(attempt: int, policy: RetryPolicy, retry_after: float | None = None,
                    rng: random.Random | None = None) -> float:
    """Delay before attempt ``attempt + 1`` (attempt counts from 1).

    Full jitter spreads a fleet of retries; a server's Retry-After is a floor, never cut
    short by jitter.
    """
    ceiling = min(policy.max_seconds, policy.base_seconds * (2 ** max(0, attempt - 1)))
    jittered = (rng or random).uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        return max(retry_after, min(jittered, policy.max_seconds))
    return jittered


def should_retry(error_class: ErrorClass, attempt: int, policy: RetryPolicy) -> bool:
    if attempt >= policy.max_attempts:
        return False
    return error_class in RETRYABLE
