"""Retry policy (pure): exponential backoff with full jitter, honouring Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass

from rostersync.sync.models import ErrorClass

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

    A server's Retry-After says when to come back: it is used as given (up to 10% later,
    so that a fleet of clients does not return in the same instant), never earlier.
    Without it, exponential backoff with jitter between half and all of the ceiling.
    """
    r = rng or random
    if retry_after is not None:
        return min(policy.max_seconds, max(0.0, retry_after) * r.uniform(1.0, 1.1))
    ceiling = min(policy.max_seconds, policy.base_seconds * (2 ** max(0, attempt - 1)))
    return r.uniform(ceiling / 2, ceiling)


def should_retry(error_class: ErrorClass, attempt: int, policy: RetryPolicy) -> bool:
    if attempt >= policy.max_attempts:
        return False
    return error_class in RETRYABLE
