"""One operation of the outbox as the executor handles it: a row of the ``ops`` table
(storage/schema.py), its payload decoded, and the few notes the executor keeps on it
while applying it.

A TypedDict, not a class: the rows come from SQLite as dicts and the executor passes
thousands of them through its queues, so they stay dicts; the type only names their keys.
"""

# No ``from __future__ import annotations``: TypedDict reads NotRequired at run time to
# tell the optional keys (``OpRow.__optional_keys__``) from the columns.
from typing import Any, NotRequired, TypedDict


class OpRow(TypedDict):
    # The table's columns (storage/schema.py), as ``storage.ops.due_ops`` reads them.
    id: int
    employee_id: str
    lms_id: str | None
    kind: str  # an OpKind value
    payload: dict[str, Any]  # decoded from its JSON text
    idem_key: str
    status: str
    reason: str | None
    depth: int
    attempts: int
    max_attempts: int
    last_error: str | None
    error_class: str | None
    http_status: int | None
    next_attempt_at: str | None
    run_id: int | None
    hold_reason: str | None
    suppressed_reason: str | None
    suppressed_until: str | None
    suppressed_by: str | None
    approved_by: str | None
    created_at: str
    updated_at: str
    finished_at: str | None
    # The executor's notes while applying it (never written back as such).
    attempt: NotRequired[int]  # the attempt being made now
    member_lms_id: NotRequired[str]  # the account a membership change was sent for
    unfit: NotRequired[Exception]  # why it cannot go in its batch (its attempt's failure)
    # The cached account (a sync.models.Account, or None) a batched update starts from;
    # Any because storage does not import the engine's models.
    cached: NotRequired[Any]
    found: NotRequired[bool]  # a batched create found the account already there
