"""Whether the LMS already holds what an operation would set.

An attempt whose outcome was never recorded (the process died, or the database failed,
between the request and the commit) may have reached the LMS. Its next attempt reads the
account first and sends nothing when this says the change is already there, so a full
disk or a kill never makes the LMS see the same change twice.
"""

from __future__ import annotations

from typing import Any

from rostersync.sync.diff import changed_fields
from rostersync.sync.models import Account


def already_applied(found: Account, changes: dict[str, Any], unmanaged: frozenset[str]) -> bool:
    """True when every field ``changes`` sets already has that value on ``found`` (the
    account as the LMS returned it), compared the way the diff compares them."""
    if "active" in changes and bool(changes["active"]) != found.active:
        return False
    if "external_key" in changes and changes["external_key"] != found.external_key:
        return False
    wanted = Account.from_json(found.to_json())
    wanted.set_values({name: value for name, value in changes.items()
                       if name not in ("active", "external_key")})
    differ = changed_fields(wanted, found, unmanaged)
    return not (differ.keys() & changes.keys())
