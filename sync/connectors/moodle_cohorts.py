"""Moodle cohorts (connector spec §6.4), a collaborator MoodleTarget owns: the
department cohorts an account write keeps in step (`[lms.cohorts]`), and the cohorts that
audiences name (docs/audiences.md). Calls go through the target's own client
(`MoodleClient`), so they are retried, classified and redacted like every other call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.coalesce import GroupChanges, about_the_request
from rostersync.sync.connectors.moodle_client import MoodleClient
from rostersync.sync.connectors.moodle_config import MoodleTargetConfig
from rostersync.sync.connectors.moodle_params import quoted as _q
from rostersync.sync.connectors.moodle_wire import (
    check_write_answer,
    cohort_idnumber,
    cohort_note,
    is_managed_cohort,
    one_line,
    warning_text,
    warnings_of,
)
from rostersync.sync.models import Account, ErrorClass

# core_cohort_add_cohort_members answers a member it did not add with a numbered
# warningcode and no item (cohort/externallib.php, add_cohort_members): "1" a cohorttype
# or usertype it cannot use, "2" "cohort ... not exists" / "user ... not exists", "3"
# "record already exists": the user is a member already, which is what an addition wants.
_ALREADY_A_MEMBER = "3"
_COHORT_ADD_CLASSES = {"1": ErrorClass.mapping, "2": ErrorClass.not_found}


def check_cohort_add_answer(data: Any, label: str, redact: Callable[[str], str]) -> None:
    """An add_cohort_members answer: done, unless a warning other than "already a
    member" says a member was not added."""
    refused = [w for w in warnings_of(data)
               if str(w.get("warningcode")) != _ALREADY_A_MEMBER]
    if not refused:
        if not warnings_of(data):  # no warning at all: the answer must still be empty
            check_write_answer(data, label, redact)
        return
    code = str(refused[0].get("warningcode"))
    more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
    raise ConnectorError(f"{label} refused: {one_line(warning_text(refused[0]), redact, 300)}"
                         f"{more}", _COHORT_ADD_CLASSES.get(code, ErrorClass.transient),
                         status=200, code=code)


def _about_the_call(error: ConnectorError) -> bool:
    return error.status != 200 and about_the_request(error)  # 200: warnings (per member)


class MoodleCohorts:
    """The cohorts of one site, as one target keeps them (its remembered cohort ids)."""

    def __init__(self, client: MoodleClient, config: MoodleTargetConfig) -> None:
        self.config = config
        self._client = client
        self._cohort_ids: dict[str, int] | None = None  # managed idnumber -> cohort id
        self._cohort_lock = asyncio.Lock()
        self._audience_cohort_ids: dict[str, int] = {}  # audience idnumber -> cohort id
        # A call answered with warnings names the members it refused: split it, whatever
        # the warning's class, so that no refused member holds the others back.
        self._audience_adds: GroupChanges[tuple[Any, int]] = GroupChanges(
            self._add_members, shared=_about_the_call)
        self._audience_removals: GroupChanges[tuple[Any, int]] = GroupChanges(
            self._remove_members, shared=_about_the_call)

    async def _call(self, function: str, params: dict[str, Any], what: str) -> Any:
        return await self._client.call(function, params, what)

    def _redact(self, text: str) -> str:
        return self._client.redact(text)

    # -- cohorts (§6.4) ----------------------------------------------------------------

    async def _managed_cohorts(self, refresh: bool = False) -> dict[str, int]:
        cohorts = self.config.cohorts
        assert cohorts is not None
        if self._cohort_ids is None or refresh:
            data = await self._call("core_cohort_get_cohorts", {}, "list of cohorts")
            if not isinstance(data, list) or not all(
                    isinstance(c, dict) and str(c.get("id", "")).isdigit() for c in data):
                raise ConnectorError("Moodle core_cohort_get_cohorts: the answer is not a "
                                     "list of cohorts with ids", ErrorClass.transient)
            self._cohort_ids = {str(c["idnumber"]): int(c["id"]) for c in data
                                if is_managed_cohort(c.get("idnumber"), cohorts)}
        return self._cohort_ids

    async def _members(self, cohort_ids: list[int]) -> dict[int, set[int]]:
        if not cohort_ids:
            return {}
        data = await self._call("core_cohort_get_cohort_members", {"cohortids": cohort_ids},
                                f"members of {len(cohort_ids)} cohorts")
        out: dict[int, set[int]] = {}
        try:
            for entry in data:
                cohort_id = int(entry["cohortid"])
                if cohort_id not in cohort_ids or not isinstance(entry["userids"], list):
                    raise ValueError
                out[cohort_id] = {int(u) for u in entry["userids"]}
        except (TypeError, KeyError, ValueError):
            raise ConnectorError("Moodle core_cohort_get_cohort_members: the answer is not "
                                 "the members of the cohorts asked for",
                                 ErrorClass.transient) from None
        return out

    async def memberships_by_user(self) -> dict[int, set[str]]:
        """user id -> idnumbers of the managed cohorts the user is in."""
        cohorts = await self._managed_cohorts(refresh=True)
        members = await self._members(sorted(cohorts.values()))
        by_user: dict[int, set[str]] = {}
        for idnumber, cohort_id in cohorts.items():
            for user_id in members.get(cohort_id, set()):
                by_user.setdefault(user_id, set()).add(idnumber)
        return by_user

    def note_cohort_drift(self, account: Account, held: set[str]) -> None:
        """Membership that does not follow the field shows as a difference in that field,
        so the engine plans the update that puts it right."""
        config = self.config.cohorts
        assert config is not None
        value = getattr(account, config.field)
        note = cohort_note(value, held, config)
        if note:
            setattr(account, config.field, f"{value or ''} [{note}]".strip())

    async def place_in_cohort(self, user_id: int, value: str | None, label: str) -> None:
        """Exactly the one managed cohort ``value`` picks, then read back to be sure."""
        config = self.config.cohorts
        assert config is not None
        wanted = cohort_idnumber(value, config)
        label = f"{label}: cohort {_q(wanted)} for {config.field} {_q(value)}"
        async with self._cohort_lock:
            cohorts = await self._managed_cohorts()
            if wanted and wanted not in cohorts:
                cohorts = await self._managed_cohorts(refresh=True)
            if wanted and wanted not in cohorts:
                if not config.create_missing:
                    raise ConnectorError(f"{label}: no such cohort in Moodle; create it or "
                                         "set lms.cohorts.create_missing = true",
                                         ErrorClass.mapping)
                cohorts[wanted] = await self._create_cohort(wanted, value or "", label)
        members = await self._members(sorted(cohorts.values()))
        held = {i for i, c in cohorts.items() if user_id in members.get(c, set())}
        if wanted and wanted not in held:
            data = await self._call("core_cohort_add_cohort_members", {"members": [{
                "cohorttype": {"type": "id", "value": cohorts[wanted]},
                "usertype": {"type": "id", "value": user_id}}]}, f"user {user_id}")
            check_cohort_add_answer(data, label, self._redact)
        stale = sorted(held - {wanted})
        if stale:
            data = await self._call("core_cohort_delete_cohort_members", {"members": [
                {"cohortid": cohorts[i], "userid": user_id} for i in stale]},
                f"user {user_id}")
            check_write_answer(data, label, self._redact)
        if wanted not in held or stale:
            after = await self._members(sorted(cohorts.values()))
            now = {i for i, c in cohorts.items() if user_id in after.get(c, set())}
            if now != ({wanted} if wanted else set()):
                raise ConnectorError(f"{label} did not take effect: read back, user "
                                     f"{user_id} is in {sorted(now) or 'no managed cohort'}",
                                     ErrorClass.conflict)

    async def _create_cohort(self, idnumber: str, value: str, label: str) -> int:
        config = self.config.cohorts
        assert config is not None
        data = await self._call("core_cohort_create_cohorts", {"cohorts": [{
            "categorytype": {"type": "system", "value": ""},
            "name": f"{config.field.title()}: {value}", "idnumber": idnumber}]},
            f"cohort {_q(idnumber)}")
        if not (isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict)
                and data[0].get("idnumber") == idnumber
                and str(data[0].get("id", "")).isdigit()):
            raise ConnectorError(f"{label}: creating the cohort answered no cohort "
                                 f"{_q(idnumber)}", ErrorClass.transient)
        return int(data[0]["id"])

    # -- audiences: cohorts named by idnumber (docs/audiences.md) ------------------------
    # Separate from lms.cohorts above, which keeps each user in the one cohort of their
    # department: the config refuses an audience whose cohort lms.cohorts would manage.

    async def _audience_cohort(self, audience: Any, create: bool) -> int | None:
        """The audience's cohort id: listed once, then remembered (a first sync adds
        thousands of members) until a change of its members fails."""
        idnumber = audience.group
        known = self._audience_cohort_ids.get(idnumber)
        if known is not None:
            return known
        found_id = await self._find_or_create_cohort(audience, create)
        if found_id is not None:
            self._audience_cohort_ids[idnumber] = found_id
        return found_id

    async def _find_or_create_cohort(self, audience: Any, create: bool) -> int | None:
        idnumber = audience.group
        data = await self._call("core_cohort_get_cohorts", {}, "list of cohorts")
        if not isinstance(data, list):
            raise ConnectorError("Moodle core_cohort_get_cohorts: the answer is not a list "
                                 "of cohorts", ErrorClass.transient)
        found = [c for c in data if isinstance(c, dict) and c.get("idnumber") == idnumber
                 and str(c.get("id", "")).isdigit()]
        if found:
            return int(found[0]["id"])
        if not create:
            return None
        label = f"Moodle cohort {_q(idnumber)} (audience {audience.id!r})"
        if not audience.create_missing:
            raise ConnectorError(f"{label} does not exist; create it in Moodle or set "
                                 "create_missing = true", ErrorClass.mapping)
        data = await self._call("core_cohort_create_cohorts", {"cohorts": [{
            "categorytype": {"type": "system", "value": ""}, "name": audience.title,
            "idnumber": idnumber}]}, f"cohort {_q(idnumber)}")
        if not (isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict)
                and str(data[0].get("id", "")).isdigit()):
            raise ConnectorError(f"{label}: creating the cohort answered no cohort",
                                 ErrorClass.transient)
        return int(data[0]["id"])

    async def audience_members(self, audience: Any) -> set[str]:
        cohort_id = await self._audience_cohort(audience, create=False)
        if cohort_id is None:
            return set()
        members = await self._members([cohort_id])
        return {str(u) for u in members.get(cohort_id, set())}

    async def add_to_audience(self, audience: Any, lms_id: str) -> None:
        if not lms_id.isdigit():
            raise ConnectorError(f"Moodle core_cohort_add_cohort_members (user {lms_id}, "
                                 f"cohort {_q(audience.group)}): {_q(lms_id)} is not a Moodle "
                                 "user id", ErrorClass.not_found)
        # Additions to one cohort waiting behind a call go together in the next one.
        await self._audience_adds.submit(audience.group, (audience, int(lms_id)))

    async def remove_from_audience(self, audience: Any, lms_id: str) -> None:
        if not lms_id.isdigit():
            return  # no such user: nobody to remove
        await self._audience_removals.submit(audience.group, (audience, int(lms_id)))

    async def _add_members(self, group: str, changes: list[tuple[Any, int]]) -> None:
        audience, users = changes[0][0], [user for _audience, user in changes]
        who = f"user {users[0]}" if len(users) == 1 else f"{len(users)} users"
        label = f"Moodle core_cohort_add_cohort_members ({who}, cohort {_q(group)})"
        async with self._cohort_lock:  # one creator of a missing cohort
            cohort_id = await self._audience_cohort(audience, create=True)
        with self._forget_cohort_on_failure(audience):
            data = await self._call("core_cohort_add_cohort_members", {"members": [{
                "cohorttype": {"type": "id", "value": cohort_id},
                "usertype": {"type": "id", "value": user}} for user in users]}, who)
            check_cohort_add_answer(data, label, self._redact)

    async def _remove_members(self, group: str, changes: list[tuple[Any, int]]) -> None:
        audience, users = changes[0][0], [user for _audience, user in changes]
        who = f"user {users[0]}" if len(users) == 1 else f"{len(users)} users"
        label = f"Moodle core_cohort_delete_cohort_members ({who}, cohort {_q(group)})"
        cohort_id = await self._audience_cohort(audience, create=False)
        if cohort_id is None:
            return  # no such cohort: nobody to remove
        with self._forget_cohort_on_failure(audience):
            data = await self._call("core_cohort_delete_cohort_members", {"members": [
                {"cohortid": cohort_id, "userid": user} for user in users]}, who)
            check_write_answer(data, label, self._redact)

    @contextmanager
    def _forget_cohort_on_failure(self, audience: Any) -> Iterator[None]:
        # The cohort may have been deleted or recreated in Moodle: the retry looks again.
        try:
            yield
        except ConnectorError:
            self._audience_cohort_ids.pop(audience.group, None)
            raise
