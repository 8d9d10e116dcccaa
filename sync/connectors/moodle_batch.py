"""Moodle users in batches: many per core_user_create_users / core_user_update_users call.

Every Moodle web-service call pays the site's whole bootstrap, so a hundred users per
call is several times faster than one (docs/connectors.md, "Batches"). A call is all or
nothing: one user Moodle refuses (a taken username, an invalid email) fails the call, and
nothing of it is applied. A refused batch is split in halves until the users it was
refused for stand alone; each of those is then sent by the single-user path, which names
the exact failure (and looks a taken username up), so only they fail.

The read-back of a batch overlaps the next batch's write (``lms.pipeline_depth``): the
executor has ``lms.concurrency`` batches in flight, and their write calls pass one gate
of ``concurrency // pipeline_depth`` places, so a write waits for the writes before it,
never for their read-backs. A batch's outcomes are still answered only once it has been
read back, so nothing is recorded done before the site confirmed it.

When no write is waiting or out (the pipeline draining: the run's last batch), its
read-back is split across the streams the site was given (``lms.concurrency``), so the
run's one read-back nothing overlaps takes half the time on a site with two workers.

No answer is taken on trust: what a batch did is read back in one
core_user_get_users_by_field call (many ids per call) and every user is checked against
what was sent, as the single-user path does.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from rostersync.sync.bulk import BatchItem, BatchLimits, Outcome, split
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.moodle_client import MoodleClient
from rostersync.sync.connectors.moodle_cohorts import MoodleCohorts
from rostersync.sync.connectors.moodle_config import MoodleTargetConfig
from rostersync.sync.connectors.moodle_params import creation_params, fields_or_refusal, sent_fields
from rostersync.sync.connectors.moodle_wire import (
    account_from_user,
    refusal,
    user_list,
    verify_applied,
    warning_text,
    warnings_of,
)
from rostersync.sync.models import Account, ErrorClass

# Refusals of what was sent (not of the site or the token): worth splitting the batch.
SPLIT_CLASSES = frozenset({ErrorClass.data, ErrorClass.conflict, ErrorClass.not_found})

# Fewest users a parallel read-back part asks for: each call pays the site's bootstrap
# (20-40 ms on a 4.3 site on loopback, about ten users' read-back), so smaller parts
# would cost the site more than they save.
READ_PART_MIN = 25


def read_parts(count: int, streams: int, minimum: int = READ_PART_MIN) -> int:
    """How many calls at once read ``count`` users back when ``streams`` are free: one
    unless every part gets at least ``minimum`` users."""
    return max(1, min(streams, count // max(1, minimum)))


def divided(ids: list[int], parts: int) -> list[list[int]]:
    """``ids`` in ``parts`` runs of near-equal size, in order."""
    size, extra = divmod(len(ids), parts)
    out, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        out.append(ids[start:end])
        start = end
    return out


def _q(value: Any) -> str:
    return '"' + str(value) + '"'


class SingleWrites(Protocol):
    """The single-user path (``MoodleTarget``): what a user left alone by a split, or an
    update needing more than one write, is sent by."""

    async def create(self, account: Account, manager_lms_id: str | None) -> Account: ...

    async def update(self, lms_id: str, changes: dict[str, Any], *, version: str | None = None,
                     manager_lms_id: str | None = None) -> Account | None: ...


class MoodleBatches:
    """Users in batches for one target: its client, config, cohorts and single path."""

    def __init__(self, client: MoodleClient, config: MoodleTargetConfig,
                 cohorts: MoodleCohorts, single: SingleWrites) -> None:
        self.config = config
        self._client = client
        self._cohorts = cohorts
        self._single = single
        # Write calls at once: the others of the lms.concurrency batches in flight are
        # being read back meanwhile. pipeline_depth 1 leaves the executor's bound alone.
        self._writes = asyncio.Semaphore(max(1, config.concurrency // config.pipeline_depth))
        self._writing = 0  # writes waiting at the gate or out: none means draining

    async def _call(self, function: str, params: dict[str, Any], what: str) -> Any:
        return await self._client.call(function, params, what)

    def _redact(self, text: str) -> str:
        return self._client.redact(text)

    async def _write(self, function: str, users: list[dict[str, Any]], what: str) -> Any:
        """A batch write, through the gate (its read-back is not)."""
        self._writing += 1
        try:
            async with self._writes:
                return await self._call(function, {"users": users}, what)
        finally:
            self._writing -= 1

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

    async def _create_batch(self, items: list[BatchItem]) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        ready: list[tuple[BatchItem, dict[str, Any]]] = []
        for item in items:
            assert item.account is not None
            try:
                ready.append((item, creation_params(item.account, self.config)))
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
                return {item.ref: await self._single.create(item.account,
                                                          item.manager_lms_id)}
            except ConnectorError as exc:
                return {item.ref: exc}
        what = f"{len(ready)} users from username {_q(ready[0][1]['username'])}"
        try:
            data = await self._write("core_user_create_users",
                                     [params for _item, params in ready], what)
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
                    await self._cohorts.place_in_cohort(user_id, getattr(
                        account, self.config.cohorts.field), f"Moodle user {user_id}")
                if not account.active:
                    await self._single.update(str(user_id), {"active": False})
            except ConnectorError as exc:
                outcomes[item.ref] = exc
        users = await self._read_many(ids)
        for (item, params), user_id in zip(ready, ids, strict=True):
            if item.ref in outcomes:
                continue
            label = (f"Moodle core_user_create_users (username {_q(params['username'])}, "
                     f"idnumber {_q(params.get('idnumber'))})")
            outcomes[item.ref] = self._checked(users, user_id, sent_fields(params), label)
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
                params, homeless = fields_or_refusal(item.changes, self.config, label)
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
            return await self._single.update(item.lms_id or "", dict(item.changes),
                                     manager_lms_id=item.manager_lms_id)
        except ConnectorError as exc:
            return exc

    async def _update_split(self, ready: list[tuple[BatchItem, dict[str, Any]]]
                            ) -> dict[str, Outcome]:
        if len(ready) == 1:
            return {ready[0][0].ref: await self._update_one(ready[0][0])}
        what = f"{len(ready)} users from user {ready[0][1]['id']}"
        try:
            data = await self._write("core_user_update_users",
                                     [params for _item, params in ready], what)
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
        """Users by id, in one call per ``batch_size`` ids; every hit checked. With no
        write waiting or out, the streams the writes leave free read parts side by side."""
        found: dict[int, dict[str, Any]] = {}
        size = max(1, self.config.batch_size)
        parts = read_parts(len(ids), self.config.concurrency) if self._writing == 0 else 1
        try:
            if parts > 1 and len(ids) <= size:
                answers = await asyncio.gather(*(self._read_part(part)
                                                 for part in divided(ids, parts)),
                                               return_exceptions=True)
                for answer in answers:
                    if isinstance(answer, BaseException):
                        raise answer
                    found.update(answer)
                return found
            for start in range(0, len(ids), size):
                found.update(await self._read_part(ids[start:start + size]))
        except ConnectorError as exc:
            return exc
        return found

    async def _read_part(self, part: list[int]) -> dict[int, dict[str, Any]]:
        what = f"read-back of {len(part)} users"
        data = await self._call("core_user_get_users_by_field",
                                {"field": "id", "values": part}, what)
        found: dict[int, dict[str, Any]] = {}
        for user in user_list(data, f"Moodle {what}"):
            if int(user["id"]) not in part:
                raise ConnectorError(f"Moodle {what} answered with user {user['id']}, "
                                     "which was not asked for: refusing to trust it",
                                     ErrorClass.conflict)
            found[int(user["id"])] = user
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
