"""Is a source failing to be read right now, and since when? (the `sources` table)

An HRIS that cannot be reached, or that refuses our credentials, is an outage of the
source, not a verdict on its data: the feed gate's last word (an accepted or rejected
snapshot) stands meanwhile. The banner and the status document show it on a line of its
own, from here.
"""

from __future__ import annotations

from typing import Any

from rostersync.storage.db import Store

# The error classes of a source that could not be read at all (sync.connectors.base.
# SourceUnavailable): nothing was read, so nothing is said about the feed.
UNREACHABLE = "source_unreachable"
AUTH = "source_auth"
OUTAGE_CLASSES = (UNREACHABLE, AUTH)


def outage(store: Store, name: str = "hris") -> dict[str, Any] | None:
    """The source's current outage: ``error_class`` (``source_unreachable`` or
    ``source_auth``), ``since`` (the first failed attempt of the unbroken run of them),
    ``last_attempt_at`` and ``error`` (the last one's message); None when the last
    attempt succeeded, or failed in another way (a rejected feed is the gate's)."""
    rows = store.rows("SELECT error_class, failing_since, last_attempt_at, last_error "
                      "FROM sources WHERE name = ?", (name,))
    if not rows or rows[0]["error_class"] not in OUTAGE_CLASSES:
        return None
    row = rows[0]
    return {"error_class": row["error_class"], "since": row["failing_since"],
            "last_attempt_at": row["last_attempt_at"], "error": row["last_error"]}


def hris_outage(store: Store) -> dict[str, Any] | None:
    """``outage`` of the HRIS: what the banner and `rostersync status` show."""
    return outage(store, "hris")
