"""Audiences as Canvas groups (docs/canvas.md §7.4, docs/audiences.md).

Each audience is one account-level group, named by the audience's ``lms_group``, alone in
a group category of its own (``lms.groups.category`` with ``{group}`` replaced by the
group's name): Canvas lets a user be in one group per ordinary category, and adding them
to another group of the category deletes their first membership
(GroupMembership#ensure_mutually_exclusive_membership, Group#peer_groups), so audiences
sharing a category would take people out of each other. Groups, not sections: a
section lives inside one course and joining it enrols the person in that course, while
an audience says who must take training across courses; an account group is a
population of its own, which is what an audience is.

Nothing Canvas answers is taken on trust: a listing must name the category and group
asked for, every membership read must belong to the group read, and an addition counts
only when its answer shows that user in that group in a member state. The endpoints and
answer shapes are those of Canvas's own API documentation (docs/canvas.md §7.4 cites
them); the choices a tenant may want otherwise are keys of ``[lms.groups]``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.canvas_client import CanvasClient
from rostersync.sync.connectors.canvas_config import CanvasGroupsConfig
from rostersync.sync.connectors.canvas_wire import canvas_id
from rostersync.sync.models import ErrorClass


def _q(value: str | None) -> str:
    return json.dumps(value, ensure_ascii=False)


class CanvasGroups:
    """The audience half of a CanvasTarget; it speaks through the client the target
    shares with it (paging, throttling, retries, redaction)."""

    def __init__(self, client: CanvasClient, config: CanvasGroupsConfig) -> None:
        self._api = client
        self._config = config
        self._category_ids: dict[str, str] = {}  # category name -> Canvas category id
        self._group_ids: dict[str, str] = {}  # lms_group -> Canvas group id
        # One creator of a missing category or group: concurrent additions to a new
        # audience would otherwise each create a group of the same name.
        self._lock = asyncio.Lock()

    # -- lookups -------------------------------------------------------------------------

    async def _create(self, path: str, what: str, form: dict[str, str],
                      expect: dict[str, str]) -> str:
        """POST a category or group; its answer must show what was asked for."""
        made = await self._api.write("POST", path, what, form)
        new_id = canvas_id(made.get("id"))
        wrong = [k for k, v in expect.items()
                 if (canvas_id(made.get(k)) if k.endswith("_id") else made.get(k)) != v]
        if new_id is None or wrong:
            raise ConnectorError(f"Canvas {what} did not take: the answer shows "
                                 + ", ".join(f"{k} {_q(str(made.get(k)))}" for k in wrong
                                             or ["id"]), ErrorClass.conflict)
        return new_id

    def category_name(self, audience: Any) -> str:
        return self._config.category.replace("{group}", audience.group)

    async def _category(self, audience: Any, create: bool) -> str | None:
        name = self.category_name(audience)
        if name in self._category_ids:
            return self._category_ids[name]
        path = f"{self._api.account_path}/group_categories"
        what = f"list of group categories (looking for {_q(name)})"
        found = [c for c in await self._api.listing(path, what)
                 if c.get("name") == name and canvas_id(c.get("id"))]
        if len(found) > 1:
            raise ConnectorError(f"Canvas {what}: {len(found)} categories have that name; "
                                 "rename all but one in Canvas", ErrorClass.conflict)
        if found:
            self._category_ids[name] = canvas_id(found[0]["id"]) or ""
        elif create:
            self._refuse_creation(audience, f"group category {_q(name)}")
            self._category_ids[name] = await self._create(
                path, f"create of group category {_q(name)}", {"name": name}, {"name": name})
        return self._category_ids.get(name)

    async def _group(self, audience: Any, create: bool) -> str | None:
        """The id of the audience's group (cached for the life of the target)."""
        name = audience.group
        if name in self._group_ids:
            return self._group_ids[name]
        category = await self._category(audience, create)
        if category is None:
            return None
        path = f"/group_categories/{quote(category, safe='')}/groups"
        what = f"list of groups in category {_q(self.category_name(audience))}"
        found = []
        for group in await self._api.listing(path, what):
            if group.get("name") != name or not canvas_id(group.get("id")):
                continue
            if canvas_id(group.get("group_category_id")) != category:
                raise ConnectorError(
                    f"Canvas {what} answered group {canvas_id(group.get('id'))} of category "
                    f"{_q(canvas_id(group.get('group_category_id')))}, not of category "
                    f"{category}", ErrorClass.conflict)
            found.append(group)
        if len(found) > 1:
            raise ConnectorError(f"Canvas {what}: {len(found)} groups are named {_q(name)} "
                                 f"(audience {audience.id!r}); rename all but one in Canvas",
                                 ErrorClass.conflict)
        if found:
            self._group_ids[name] = canvas_id(found[0]["id"]) or ""
        elif create:
            self._refuse_creation(audience, f"group {_q(name)}")
            self._group_ids[name] = await self._create(
                path, f"create of group {_q(name)} (audience {audience.id!r})",
                {"name": name, "description": audience.title,
                 "join_level": self._config.join_level},
                {"name": name, "group_category_id": category})
        return self._group_ids.get(name)

    @staticmethod
    def _refuse_creation(audience: Any, thing: str) -> None:
        if not audience.create_missing:
            raise ConnectorError(f"Canvas {thing} (audience {audience.id!r}) does not exist; "
                                 "create it in Canvas or set create_missing = true",
                                 ErrorClass.mapping)

    async def _memberships(self, group_id: str, what: str) -> list[dict[str, Any]]:
        """The group's memberships, each checked to belong to the group."""
        out = await self._api.listing(f"/groups/{quote(group_id, safe='')}/memberships", what)
        for membership in out:
            if canvas_id(membership.get("group_id")) != group_id:
                raise ConnectorError(
                    f"Canvas {what} answered a membership of group "
                    f"{_q(canvas_id(membership.get('group_id')))}, not of group {group_id}; "
                    "nothing is changed on the strength of it", ErrorClass.conflict)
        return out

    # -- the LmsTarget audience calls ------------------------------------------------------

    async def members(self, audience: Any) -> set[str]:
        group_id = await self._group(audience, create=False)
        if group_id is None:
            return set()
        what = f"read of the members of group {_q(audience.group)} (#{group_id})"
        states = set(self._config.member_states)
        return {user for m in await self._memberships(group_id, what)
                if (user := canvas_id(m.get("user_id"))) and m.get("workflow_state") in states}

    async def add(self, audience: Any, lms_id: str) -> None:
        what = f"add of user {_q(lms_id)} to group {_q(audience.group)}"
        async with self._lock:
            group_id = await self._group(audience, create=True) or ""
        path = f"/groups/{quote(group_id, safe='')}/memberships"
        answer = await self._api.call("POST", path, what, form={"user_id": lms_id})
        if answer.data is None:
            if answer.response.status_code == 404:
                await self._not_found(audience, group_id, lms_id, what)
            raise self._api.error(answer.response, what)
        got = answer.data if isinstance(answer.data, dict) else {}
        shown = (canvas_id(got.get("group_id")), canvas_id(got.get("user_id")),
                 got.get("workflow_state"))
        if shown[:2] != (group_id, lms_id) or shown[2] not in self._config.member_states:
            raise ConnectorError(
                f"Canvas {what} did not take: the answer shows user {_q(shown[1])} in group "
                f"{_q(shown[0])} as {_q(shown[2])}", ErrorClass.conflict)

    async def _not_found(self, audience: Any, group_id: str, lms_id: str, what: str) -> None:
        """A 404 on an addition: the group went away (look it up again next time) or the
        user did (the account is gone: the executor forgets it)."""
        probe = await self._api.call("GET", f"/groups/{quote(group_id, safe='')}",
                                     f"read of group {group_id}")
        if probe.response.status_code == 404:
            self._group_ids.pop(audience.group, None)
            raise ConnectorError(f"Canvas {what} failed: group {group_id} no longer exists; "
                                 "it is looked up again on the next attempt",
                                 ErrorClass.transient, status=404)
        raise ConnectorError(f"Canvas {what} failed: 404 user {_q(lms_id)} does not exist",
                             ErrorClass.not_found, status=404)

    async def remove(self, audience: Any, lms_id: str) -> None:
        group_id = await self._group(audience, create=False)
        if group_id is None:
            return  # no group: nobody to remove
        what = f"removal of user {_q(lms_id)} from group {_q(audience.group)}"
        path = f"/groups/{quote(group_id, safe='')}"
        if self._config.remove_by == "user":
            path += f"/users/{quote(lms_id, safe='')}"
        else:
            mine = [m for m in await self._memberships(group_id, what)
                    if canvas_id(m.get("user_id")) == lms_id and canvas_id(m.get("id"))]
            if not mine:
                return
            path += f"/memberships/{quote(canvas_id(mine[0]['id']) or '', safe='')}"
        answer = await self._api.call("DELETE", path, what)
        if answer.response.status_code == 404:
            return  # not a member (any more): the removal holds
        if answer.data is None:
            raise self._api.error(answer.response, what)
        got = answer.data if isinstance(answer.data, dict) else {}
        if got.get("user_id") is not None and canvas_id(got.get("user_id")) != lms_id:
            raise ConnectorError(f"Canvas {what}: the answer names user "
                                 f"{_q(canvas_id(got.get('user_id')))}", ErrorClass.conflict)
