"""Moodle users in batches: many per core_user_create_users / core_user_update_users call.

Every Moodle web-service call pays the site's whole bootstrap, so a hundred users per
call is several times faster than one (docs/connectors.md, "Batches"). A call is all or
nothing: one user Moodle refuses (a taken username, an invalid email) fails the call, and
nothing of it is applied. A refused batch is split in halves until the users it was
refused for stand alone; each of those is then sent by the single-user path, which names
the exact failure (and looks a taken username up), so only they fail.

No answer is taken on trust: what a batch did is read back in one
core_user_get_users_by_field call (many ids per call) and every user is checked against
what was sent, as the single-user path does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rostersync.sync.bulk import BatchItem, BatchLimits, Outcome, split
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.moodle_wire import (
    account_from_user,
    refusal,
    user_list,
    verify_applied,
    warning_text,
    warnings_of,
)
from rostersync.sync.models import Account, ErrorClass

if TYPE_CHECKING:
    from rostersync.sync.connectors.moodle_config import MoodleTargetConfig

# Refusals of what was sent (not of the site or the token): worth splitting the batch.
SPLIT_CLASSES = frozenset({ErrorClass.data, ErrorClass.conflict, ErrorClass.not_found})


def _q(value: Any) -> str:
    return '"' + str(value) + '"'


class MoodleBatches:
    """The batched half of ``MoodleTarget`` (a mixin: it uses the target's calls and its
    single-user ``create`` and ``update``)."""

    # The target's state and calls this half uses, declared for the type checker.
    config: MoodleTargetConfig

    if TYPE_CHECKING:
        def _redact(self, text: str) -> str: ...
        async def _call(self, function: str, params: dict[str, Any], what: str) -> Any: ...
        def _fields(self, changes: dict[str, Any], label: str
                    ) -> tuple[dict[str, Any], list[str]]: ...
        def _new_password(self) -> dict[str, Any]: ...
        async def _place_in_cohort(self, user_id: int, value: str | None,
                                   label: str) -> None: ...
        async def create(self, account: Account, manager_lms_id: str | None) -> Account: ...
        async def update(self, lms_id: str, changes: dict[str, Any], *,
                         version: str | None = None,
                         manager_lms_id: str | None = None) -> Account | None: ...

    async def batch_limits(self) -> BatchLimits | None:
        if self.config.bulk == "off" or self.config.batch_size < 2:
            return None
        return BatchLimits(max_items=self.config.batch_size)

    async def apply_batch(self, items: list[BatchItem]) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        creates = [i for i in items if i.kind == "create"]
        updates = [i for i in items if i.kind == "update"]
        if creates:
            outcomes.update(await self._create_batch(creates))
        if updates:
            outcomes.update(await self._update_batch(updates))
        return outcomes

    # -- creates -------------------------------------------------------------------------

    def _creation_params(self, account: Account) -> dict[str, Any]:
        """What ``create`` sends for one account (raises ConnectorError before sending)."""
        label = (f"Moodle core_user_create_users (username {_q(account.user_name)}, "
                 f"idnumber {_q(account.external_key)})")
        if not account.external_key:
            raise ConnectorError(f"{label} refused before sending: the account has no HRIS "
                                 "key for idnumber", ErrorClass.data)
        wanted = {name: getattr(account, name) for name in (
            "user_name", "given_name", "family_name", "email", "department", "external_key",
            *self.config.fields)}
        wanted.update((name, value) for name, value in account.attributes.items()
                      if name in self.config.mapped_attributes)
        params, _homeless = self._fields(wanted, label)  # homeless values show as drift
        params = {k: v for k, v in params.items() if v not in ("", [])}
        params.update(auth=self.config.auth, **self._new_password())
        if self.config.institution:
            params["institution"] = self.config.institution
        return params

    async def _create_batch(self, items: list[BatchItem]) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        ready: list[tuple[BatchItem, dict[str, Any]]] = []
        for item in items:
            assert item.account is not None
            try:
                ready.append((item, self._creation_params(item.account)))
            except ConnectorError as exc:
                outcomes[item.ref] = exc
        if ready:
            outcomes.update(await self._create_split(ready))
        return outcomes

    async def _create_split(self, ready: list[tuple[BatchItem, dict[str, Any]]]
                            ) -> dict[str, Outcome]:
        if len(ready) == 1:  # alone: the single path names the failure exactly
            item = ready[0][0]
            assert item.account is not None  # a create item carries its account
            try:
                return {item.ref: await self.create(item.account, item.manager_lms_id)}
            except ConnectorError as exc:
                return {item.ref: exc}
        what = f"{len(ready)} users from username {_q(ready[0][1]['username'])}"
        try:
            data = await self._call("core_user_create_users",
                                    {"users": [params for _item, params in ready]}, what)
            if warnings_of(data):
                raise refusal(warnings_of(data), f"Moodle core_user_create_users ({what})",
                              self._redact)
        except ConnectorError as exc:
            if exc.error_class not in SPLIT_CLASSES:
                return {item.ref: exc for item, _params in ready}
            first, second = split(ready)  # all or nothing: nothing of it was created
            return await self._create_split(first) | await self._create_split(second)
        ids = self._created_ids(data, ready, what)
        if isinstance(ids, ConnectorError):
            return {item.ref: ids for item, _params in ready}
        return await self._after_create(ready, ids)

    @staticmethod
    def _created_ids(data: Any, ready: list[tuple[BatchItem, dict[str, Any]]],
                     what: str) -> list[int] | ConnectorError:
        """The new users' ids, in the order sent, if the answer is one user per user sent
        with the usernames sent; otherwise the outcome is unknown (read before resending)."""
        label = f"Moodle core_user_create_users ({what})"
        if not (isinstance(data, list) and len(data) == len(ready) and all(
                isinstance(u, dict) and str(u.get("id", "")).isdigit() for u in data)):
            return ConnectorError(f"{label}: the answer is not one created user with an id "
                                  "per user sent", ErrorClass.transient)
        by_name = {str(u.get("username", "")).lower(): int(u["id"]) for u in data}
        ids = []
        for _item, params in ready:
            if params["username"] not in by_name:
                return ConnectorError(f"{label}: the answer does not list username "
                                      f"{_q(params['username'])}", ErrorClass.transient)
            ids.append(by_name[params["username"]])
        return ids

    async def _after_create(self, ready: list[tuple[BatchItem, dict[str, Any]]],
                            ids: list[int]) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        for (item, _params), user_id in zip(ready, ids, strict=True):
            account = item.account
            assert account is not None
            try:
                if self.config.cohorts:
                    await self._place_in_cohort(user_id, getattr(
                        account, self.config.cohorts.field), f"Moodle user {user_id}")
                if not account.active:
                    await self.update(str(user_id), {"active": False})
            except ConnectorError as exc:
                outcomes[item.ref] = exc
        users = await self._read_many(ids)
        for (item, params), user_id in zip(ready, ids, strict=True):
            if item.ref in outcomes:
                continue
            label = (f"Moodle core_user_create_users (username {_q(params['username'])}, "
                     f"idnumber {_q(params.get('idnumber'))})")
            sent = {k: v for k, v in params.items() if k not in ("password", "createpassword")}
            outcomes[item.ref] = self._checked(users, user_id, sent, label)
        return outcomes

    # -- updates -------------------------------------------------------------------------

    async def _update_batch(self, items: list[BatchItem]) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        ready: list[tuple[BatchItem, dict[str, Any]]] = []
        for item in items:
            lms_id = item.lms_id or ""
            label = f"Moodle core_user_update_users (user {lms_id})"
            if not lms_id.isdigit():
                outcomes[item.ref] = ConnectorError(f"{label}: {_q(lms_id)} is not a Moodle "
                                                    "user id", ErrorClass.not_found)
                continue
            try:
                params, homeless = self._fields(item.changes, label)
            except ConnectorError as exc:
                outcomes[item.ref] = exc
                continue
            cohort_change = self.config.cohorts and self.config.cohorts.field in item.changes
            if not params or homeless or cohort_change or "display_name" in item.changes:
                # What needs more than one write, or a check by hand: the single path.
                outcomes[item.ref] = await self._update_one(item)
                continue
            ready.append((item, {"id": int(lms_id), **params}))
        if ready:
            outcomes.update(await self._update_split(ready))
        return outcomes

    async def _update_one(self, item: BatchItem) -> Outcome:
        try:
            return await self.update(item.lms_id or "", dict(item.changes),
                                     manager_lms_id=item.manager_lms_id)
        except ConnectorError as exc:
            return exc

    async def _update_split(self, ready: list[tuple[BatchItem, dict[str, Any]]]
                            ) -> dict[str, Outcome]:
        if len(ready) == 1:
            return {ready[0][0].ref: await self._update_one(ready[0][0])}
        what = f"{len(ready)} users from user {ready[0][1]['id']}"
        try:
            data = await self._call("core_user_update_users",
                                    {"users": [params for _item, params in ready]}, what)
        except ConnectorError as exc:
            if exc.error_class not in SPLIT_CLASSES:
                return {item.ref: exc for item, _params in ready}
            first, second = split(ready)  # an exception rolled the whole call back
            return await self._update_split(first) | await self._update_split(second)
        # Warnings name the users Moodle skipped (the others were applied); the read-back
        # below is what counts for everyone.
        refused: dict[int, dict[str, Any]] = {}
        for warning in warnings_of(data):
            if str(warning.get("itemid", "")).isdigit():
                refused[int(warning["itemid"])] = warning
        users = await self._read_many([params["id"] for _item, params in ready])
        outcomes: dict[str, Outcome] = {}
        for item, params in ready:
            user_id = params["id"]
            label = f"Moodle core_user_update_users (user {user_id})"
            if user_id in refused:
                if refused[user_id].get("warningcode") == "dmlwriteexception":
                    # Nothing of it was applied; alone, the single path looks up whether
                    # the username it sends is taken (a conflict, never a retry).
                    outcomes[item.ref] = await self._update_one(item)
                    continue
                outcomes[item.ref] = refusal([refused[user_id]], label, self._redact, params)
                continue
            sent = {k: v for k, v in params.items() if k != "id"}
            outcomes[item.ref] = self._checked(users, user_id, sent, label)
        unclaimed = [w for w in warnings_of(data) if not str(w.get("itemid", "")).isdigit()]
        if unclaimed:  # a warning naming nobody: the read-back decided; say what it was
            note = warning_text(unclaimed[0])
            for item, _params in ready:
                outcome = outcomes[item.ref]
                if isinstance(outcome, ConnectorError):
                    outcome.message += f" (Moodle warned: {note})"
        return outcomes

    # -- reading back --------------------------------------------------------------------

    async def _read_many(self, ids: list[int]) -> dict[int, dict[str, Any]] | ConnectorError:
        """Users by id, in one call per ``batch_size`` ids; every hit checked."""
        found: dict[int, dict[str, Any]] = {}
        size = max(1, self.config.batch_size)
        try:
            for start in range(0, len(ids), size):
                part = ids[start:start + size]
                what = f"read-back of {len(part)} users"
                data = await self._call("core_user_get_users_by_field",
                                        {"field": "id", "values": part}, what)
                for user in user_list(data, f"Moodle {what}"):
                    if int(user["id"]) not in part:
                        raise ConnectorError(f"Moodle {what} answered with user {user['id']}, "
                                             "which was not asked for: refusing to trust it",
                                             ErrorClass.conflict)
                    found[int(user["id"])] = user
        except ConnectorError as exc:
            return exc
        return found

    def _checked(self, users: dict[int, dict[str, Any]] | ConnectorError, user_id: int,
                 sent: dict[str, Any], label: str) -> Outcome:
        if isinstance(users, ConnectorError):
            return ConnectorError(f"{label}: sent, but not read back: {users.message}",
                                  users.error_class, status=users.status)
        user = users.get(user_id)
        if user is None:
            return ConnectorError(f"{label}: user {user_id} is not there when read back",
                                  ErrorClass.not_found)
        wrong = verify_applied(sent, user)
        if wrong:
            return ConnectorError(f"{label} did not take effect: read back, user {user_id} "
                                  + "; ".join(wrong), ErrorClass.conflict)
        return account_from_user(user, self.config)
