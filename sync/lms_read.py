"""Read the whole LMS into the account cache and tell which people it moved.

Accounts whose content changed since the last read (someone edited the LMS by hand),
appeared or disappeared mark their person dirty, so the next evaluation looks at them
even when their HR row is unchanged.
"""

from __future__ import annotations

from datetime import datetime

from rostersync.storage import accounts as account_store
from rostersync.storage import people as people_store
from rostersync.storage.db import Store
from rostersync.sync.connectors.base import LmsTarget
from rostersync.sync.models import Account

_BATCH = 1000


async def read_all(store: Store, target: LmsTarget, now: datetime) -> tuple[int, set[str]]:
    """Returns (accounts read, external keys whose account changed)."""
    known = account_store.all_digests(store)
    key_of_lms = {lms_id: key for lms_id, (_d, key) in known.items() if key}
    listed: set[str] = set()
    touched: set[str] = set()
    pending: list[Account] = []
    unresolved: list[Account] = []

    def flush() -> None:
        rows = []
        for account in pending:
            digest = account.content_hash()
            old = known.get(account.lms_id or "")
            # The digest covers the managed fields only: an external key set or cleared
            # by hand in the LMS (an account claimed by someone else) changes no digest.
            if old is None or old[0] != digest or (old[1] or None) != (account.external_key
                                                                      or None):
                rows.append((account.to_json(), digest))
                if account.external_key:
                    touched.add(account.external_key)
                if old is not None and old[1] and old[1] != account.external_key:
                    touched.add(old[1])
        if rows:
            with store.tx() as conn:
                account_store.upsert_accounts(conn, rows, now)
        pending.clear()

    count = 0
    async for account in target.list_accounts():
        count += 1
        listed.add(account.lms_id or "")
        if account.external_key:
            key_of_lms[account.lms_id or ""] = account.external_key
        manager_lms_id = account.extra.pop("manager_lms_id", None)
        if manager_lms_id:
            account.manager_key = key_of_lms.get(manager_lms_id)
            if account.manager_key is None:
                account.extra["manager_lms_id"] = manager_lms_id
                unresolved.append(account)
                continue
        pending.append(account)
        if len(pending) >= _BATCH:
            flush()
    # Managers listed after their reports resolve now that every account has been seen.
    for account in unresolved:
        manager_lms_id = account.extra.pop("manager_lms_id")
        account.manager_key = key_of_lms.get(manager_lms_id)
        pending.append(account)
    flush()
    gone = [lms_id for lms_id in known if lms_id not in listed]
    if gone:
        for lms_id in gone:
            if key := known[lms_id][1]:
                touched.add(key)
        with store.tx() as conn:
            account_store.delete_accounts(conn, gone)
    if touched:
        with store.tx() as conn:
            people_store.mark_dirty(conn, touched)
    return count, touched


async def read_one(store: Store, target: LmsTarget, now: datetime, employee_id: str,
                   email: str | None, user_name: str | None) -> None:
    """Targeted read for a one-off resync: the person's account and any email match."""
    found: dict[str, Account] = {}
    for account in await target.find_by_external_key(employee_id):
        found[account.lms_id or ""] = account
    if email:
        for account in await target.find_by_email(email):
            found[account.lms_id or ""] = account
    if user_name:
        for account in await target.find_by_user_name(user_name):
            found[account.lms_id or ""] = account
    cached = account_store.by_external_keys(store, [employee_id])
    rows = []
    for account in found.values():
        manager_lms_id = account.extra.pop("manager_lms_id", None)
        if manager_lms_id:
            account.manager_key = account_store.keys_for_lms_ids(
                store, [manager_lms_id]).get(manager_lms_id)
        rows.append((account.to_json(), account.content_hash()))
    with store.tx() as conn:
        if employee_id in cached and not any(a.external_key == employee_id
                                             for a in found.values()):
            account_store.delete_accounts(conn, [Account.from_json(cached[employee_id]).lms_id])
        account_store.upsert_accounts(conn, rows, now)
