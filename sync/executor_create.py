"""The executor's creates: look before creating again, link what is already there.

A create whose earlier attempt may have reached the LMS reads it by external key first;
a create the LMS refuses as taken looks for the account (ours, or an unlinked one with
the same userName, which is linked). ``sync.executor.Executor`` owns one per run; its
batches use ``existing`` for a create a batch answer refused as taken.
"""

from __future__ import annotations

from rostersync.sync.connectors.base import ConnectorError, LmsTarget
from rostersync.sync.diff import changed_fields
from rostersync.sync.executor_accounts import AccountSteps
from rostersync.sync.models import Account, ErrorClass


class CreateSteps:
    def __init__(self, target: LmsTarget, accounts: AccountSteps) -> None:
        self.target = target
        self.accounts = accounts

    async def create(self, key: str, desired: Account, attempt: int, *,
                     link_unlinked: bool = True) -> Account:
        # An earlier attempt may have reached the LMS before the process died (its outcome
        # unrecorded): look the account up by external key first. A first attempt goes
        # straight to POST; a uniqueness conflict then tells us to look.
        if attempt > 1:
            found = await self.existing(key, desired, link_unlinked)
            if found is not None:
                return found
        manager_lms_id = self.accounts.lms_id_of(desired.manager_key)
        try:
            created = await self.target.create(desired, manager_lms_id)
        except ConnectorError as exc:
            if exc.error_class != ErrorClass.conflict:
                raise
            found = await self.existing(key, desired, link_unlinked)
            if found is None:
                raise
            return found
        created.external_key = key
        created.extra.pop("manager_lms_id", None)
        created.manager_key = desired.manager_key if manager_lms_id else None
        return created

    async def existing(self, key: str, desired: Account,
                       link_unlinked: bool = True) -> Account | None:
        """The account this create would make, if it already exists: ours (same external
        key) or an unlinked one with the same userName, which is linked. A userName held by
        another employee's account is a conflict for a person to resolve, and so is an
        unlinked one when an operator decided on a new account (``link_unlinked`` False):
        linking it would undo that decision."""
        mine = [a for a in await self.target.find_by_external_key(key) if a.external_key == key]
        if mine:
            found = self.accounts.translate(mine[0])
            changes = changed_fields(desired, found, self.accounts.unmanaged)
            if not changes:
                return found
            return await self.accounts.update(found.lms_id or "", key, found, changes)
        same_name = await self.target.find_by_user_name(desired.user_name)
        for account in same_name:
            if account.external_key and account.external_key != key:
                raise ConnectorError(
                    f"userName {desired.user_name!r} already belongs to LMS account "
                    f"{account.lms_id} (externalId {account.external_key})", ErrorClass.conflict)
        if not same_name:
            return None
        if not link_unlinked:
            held = same_name[0]
            raise ConnectorError(
                f"userName {desired.user_name!r} is already held by LMS account "
                f"{held.lms_id} (no externalId), and the LMS refuses a second account with "
                f"it: the operator decided on a new account for {key} rather than linking "
                f"that one; rename or remove LMS account {held.lms_id}, or decide to link "
                f"it (`rostersync links link {key} {held.lms_id}`)", ErrorClass.conflict)
        found = self.accounts.translate(same_name[0])
        changes = changed_fields(desired, found, self.accounts.unmanaged)
        changes["external_key"] = key
        changes["active"] = desired.active
        return await self.accounts.update(found.lms_id or "", key, found, changes)
