"""What an operation writes to: the LMS account of a person, as the executor knows it.

The LMS ids of the accounts made earlier in the run (before their group commit) and of
those recorded before it, the cached account an update starts from, the fields an
account operation sets, and the update request itself. Shared by the executor's single
path, its creates and its batches (``sync.executor``), so that all three resolve a
person or a manager the same way.
"""

from __future__ import annotations

import json
from typing import Any

from rostersync.storage import accounts as account_store
from rostersync.storage.db import Store
from rostersync.storage.op_row import OpRow
from rostersync.sync.config import Config
from rostersync.sync.connectors.base import ConnectorError, LmsTarget
from rostersync.sync.models import Account, ErrorClass, OpKind


def account_from_payload(data: dict[str, Any]) -> Account:
    fields = {k: v for k, v in data.items() if k in Account.__slots__}
    fields.setdefault("external_key", None)
    return Account(**fields)


def updated_account(lms_id: str, key: str, cached: Account | None, changes: dict[str, Any],
                    returned: Account | None) -> Account:
    """The account as it stands after an update: the cached one with the changes."""
    base = cached or Account(external_key=key, user_name="", lms_id=lms_id)
    merged = json.loads(base.to_json())
    merged.update({k: v for k, v in changes.items() if k in Account.__slots__})
    # Mapped target attributes (not fields) are kept under their own names.
    mapped = {k: v for k, v in changes.items() if k not in Account.__slots__}
    if mapped:
        merged["attributes"] = {**merged.get("attributes", {}), **mapped}
    merged["lms_id"] = lms_id
    if returned is not None:
        merged["version"] = returned.version
    return account_from_payload(merged)


def deletes_account(kind: OpKind, config: Config) -> bool:
    """Whether ``kind`` removes the account (a deactivation too, where the LMS is set to
    deactivate by deleting)."""
    return kind == OpKind.delete or (
        kind == OpKind.deactivate
        and getattr(config.lms, "deactivate_by", "active_false") == "delete")


class AccountSteps:
    """The accounts one run writes to (``sync.executor.Executor`` owns one per run)."""

    def __init__(self, store: Store, target: LmsTarget, config: Config) -> None:
        self.store = store
        self.target = target
        self.config = config
        # Fields the target does not manage: never compared, never sent.
        self.unmanaged: frozenset[str] = getattr(config.lms, "unmanaged_fields", frozenset())
        # Accounts made or linked by this run, before their group commit: a report sent
        # right after its manager resolves the manager from here.
        self.made: dict[str, str] = {}

    def remember(self, employee_id: str, lms_id: str) -> None:
        self.made[employee_id] = lms_id

    def cached(self, lms_id: str | None) -> Account | None:
        if not lms_id:
            return None
        text = account_store.get_account(self.store, lms_id)
        return Account.from_json(text) if text else None

    def lms_id_of(self, employee_id: str | None) -> str | None:
        if not employee_id:
            return None
        if employee_id in self.made:
            return self.made[employee_id]
        return account_store.lms_ids_for_keys(self.store, [employee_id]).get(employee_id)

    def translate(self, account: Account) -> Account:
        """An account read from the LMS with its manager's LMS id turned into the
        manager's HRIS key (as the cache and the plan hold it)."""
        manager_lms_id = account.extra.pop("manager_lms_id", None)
        if manager_lms_id:
            account.manager_key = account_store.keys_for_lms_ids(
                self.store, [manager_lms_id]).get(manager_lms_id)
        return account

    def target_of(self, op: OpRow) -> tuple[str, Account | None, dict[str, Any]]:
        """The LMS id an account operation writes to, its cached account and the fields it
        sets. Raises not_found when the person's account is no longer linked."""
        kind = OpKind(op["kind"])
        key = op["employee_id"]
        payload = op["payload"]
        lms_id = op.get("lms_id") or self.lms_id_of(key)
        if not lms_id:
            raise ConnectorError(f"no LMS account is linked to {key} any more",
                                 ErrorClass.not_found)
        changes: dict[str, Any] = {}
        if kind == OpKind.deactivate:
            changes["active"] = False
        elif kind != OpKind.delete:
            changes = dict(payload.get("changes", {}))
        if kind == OpKind.reactivate:
            changes["active"] = True
        elif kind == OpKind.link:
            changes["external_key"] = key
            changes["active"] = payload.get("active", True)
        return lms_id, self.cached(lms_id), changes

    def update_request(self, cached: Account | None, changes: dict[str, Any]
                       ) -> tuple[str | None, str | None]:
        """The manager's LMS id and the version an update of ``changes`` is sent with; a
        manager without an account yet is left out of ``changes`` (the next run sets it)."""
        manager_lms_id = None
        if changes.get("manager_key"):
            manager_lms_id = self.lms_id_of(changes["manager_key"])
            if manager_lms_id is None:
                changes.pop("manager_key")  # the manager has no account yet: next run
        version = (cached.version if cached and getattr(self.config.lms, "use_etags", False)
                   else None)
        return manager_lms_id, version

    async def update(self, lms_id: str, key: str, cached: Account | None,
                     changes: dict[str, Any]) -> Account:
        manager_lms_id, version = self.update_request(cached, changes)
        returned = await self.target.update(lms_id, changes, version=version,
                                            manager_lms_id=manager_lms_id)
        return updated_account(lms_id, key, cached, changes, returned)
