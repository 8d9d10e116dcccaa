"""The Canvas sandbox's account groups: group categories, their groups and the groups'
memberships (docs/canvas.md §7.4), as a part of CanvasData, whose lock and users they use.
"""

from __future__ import annotations

import threading
from typing import Any

from rostersync.sandbox.canvas_errors import MAX_NAME, NotFound
from rostersync.sandbox.canvas_errors import field_error as _field_error


class CanvasGroupsData:
    """Account groups; mixed into CanvasData (safe to use from any thread)."""

    account: dict[str, Any]
    _lock: threading.RLock
    _users: dict[int, dict[str, Any]]
    _categories: dict[int, dict[str, Any]]
    _groups: dict[int, dict[str, Any]]
    _memberships: dict[int, dict[str, Any]]
    _next_category: int
    _next_group: int
    _next_membership: int

    def user_json(self, user_id: int, include: Any = ...) -> dict[str, Any]:
        raise NotImplementedError  # CanvasData's

    def find_user(self, ref: str) -> int:
        raise NotImplementedError  # CanvasData's

    # -- groups (§7.4) -----------------------------------------------------------------

    def categories(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for _i, c in sorted(self._categories.items())]

    def create_category(self, params: dict[str, str]) -> dict[str, Any]:
        """POST /accounts/:id/group_categories: names are unique within the account."""
        with self._lock:
            name = params.get("name", "").strip()
            if not name:
                raise _field_error(400, None, "name", "blank", "can't be blank")
            if any(c["name"] == name for c in self._categories.values()):
                raise _field_error(400, None, "name", "taken", "Name is already in use")
            category_id, self._next_category = self._next_category, self._next_category + 1
            self._categories[category_id] = {
                "id": category_id, "name": name, "role": None, "self_signup": None,
                "group_limit": None, "context_type": "Account",
                "account_id": self.account["id"]}
            return dict(self._categories[category_id])

    def _group_view(self, group: dict[str, Any]) -> dict[str, Any]:
        count = sum(1 for m in self._memberships.values()
                    if m["group_id"] == group["id"] and m["workflow_state"] == "accepted")
        return {**group, "members_count": count}

    def group(self, group_id: int) -> dict[str, Any]:
        with self._lock:
            group = self._groups.get(group_id)
            if group is None or group["workflow_state"] == "deleted":
                raise NotFound(str(group_id))
            return self._group_view(group)

    def groups_in(self, category_id: int) -> list[dict[str, Any]]:
        with self._lock:
            if category_id not in self._categories:
                raise NotFound(str(category_id))
            return [self._group_view(g) for _i, g in sorted(self._groups.items())
                    if g["group_category_id"] == category_id
                    and g["workflow_state"] != "deleted"]

    def create_group(self, category_id: int, params: dict[str, str]) -> dict[str, Any]:
        """POST /group_categories/:id/groups (names need not be unique, as in Canvas)."""
        with self._lock:
            if category_id not in self._categories:
                raise NotFound(str(category_id))
            name = params.get("name", "").strip()
            if not name:
                raise _field_error(400, None, "name", "blank", "can't be blank")
            if len(name) > MAX_NAME:
                raise _field_error(400, None, "name", "too_long",
                                   f"is too long (maximum is {MAX_NAME} characters)")
            group_id, self._next_group = self._next_group, self._next_group + 1
            self._groups[group_id] = {
                "id": group_id, "name": name, "description": params.get("description") or None,
                "is_public": False, "join_level": params.get("join_level") or "invitation_only",
                "group_category_id": category_id, "context_type": "Account",
                "account_id": self.account["id"], "sis_group_id": None,
                "workflow_state": "available"}
            return self._group_view(self._groups[group_id])

    def memberships_of(self, group_id: int, states: list[str] | None = None
                       ) -> list[dict[str, Any]]:
        with self._lock:
            self.group(group_id)
            return [dict(m) for _i, m in sorted(self._memberships.items())
                    if m["group_id"] == group_id and m["workflow_state"] != "deleted"
                    and (not states or m["workflow_state"] in states)]

    def _membership_of(self, group_id: int, user_id: int) -> dict[str, Any] | None:
        return next((m for m in self._memberships.values() if m["group_id"] == group_id
                     and m["user_id"] == user_id and m["workflow_state"] != "deleted"), None)

    def add_membership(self, group_id: int, params: dict[str, str]) -> dict[str, Any]:
        """POST /groups/:id/memberships with user_id; an existing member's membership is
        answered again ("If the membership or join request already exists, then it is
        simply returned"). GroupMembership#auto_join accepts it at once, and
        #ensure_mutually_exclusive_membership deletes the user's memberships of the other
        groups of the category (Group#peer_groups: every category but the
        student_organized and communities ones)."""
        with self._lock:
            group = self.group(group_id)
            user_id = self.find_user(params.get("user_id", "").strip())
            existing = self._membership_of(group_id, user_id)
            if existing is not None:
                return {**existing, "just_created": False}
            category = self._categories.get(group["group_category_id"], {})
            if category.get("role") not in ("student_organized", "communities"):
                for other in self._memberships.values():
                    if other["user_id"] == user_id and other["group_id"] != group_id and \
                            self._groups[other["group_id"]]["group_category_id"] == \
                            group["group_category_id"]:
                        other["workflow_state"] = "deleted"
            membership_id = self._next_membership
            self._next_membership += 1
            self._memberships[membership_id] = {
                "id": membership_id, "group_id": group_id, "user_id": user_id,
                "workflow_state": "accepted", "moderator": False}
            return {**self._memberships[membership_id], "just_created": True}

    def remove_member(self, group_id: int, user_ref: str) -> dict[str, Any]:
        """DELETE /groups/:id/users/:user_id; NotFound when not a member."""
        with self._lock:
            self.group(group_id)
            membership = (self._membership_of(group_id, int(user_ref))
                          if user_ref.isdigit() else None)
            if membership is None:
                raise NotFound(user_ref)
            membership["workflow_state"] = "deleted"
            return {"ok": True}  # GroupMembershipsController#destroy

    def remove_membership(self, group_id: int, membership_id: int) -> dict[str, Any]:
        """DELETE /groups/:id/memberships/:membership_id."""
        with self._lock:
            self.group(group_id)
            membership = self._memberships.get(membership_id)
            if membership is None or membership["group_id"] != group_id \
                    or membership["workflow_state"] == "deleted":
                raise NotFound(str(membership_id))
            membership["workflow_state"] = "deleted"
            return {"ok": True}

    # -- for tests --------------------------------------------------------------------

    def group_members(self, name: str, category: str | None = None) -> set[str]:
        """The SIS ids (else Canvas ids) of the accepted members of every live group named
        ``name`` (in ``category`` when given), for tests to read back."""
        with self._lock:
            wanted = {g["id"] for g in self._groups.values() if g["name"] == name
                      and g["workflow_state"] != "deleted"
                      and (category is None
                           or self._categories[g["group_category_id"]]["name"] == category)}
            out = set()
            for m in self._memberships.values():
                if m["group_id"] in wanted and m["workflow_state"] == "accepted":
                    sis = self.user_json(m["user_id"])["sis_user_id"]
                    out.add(sis or str(m["user_id"]))
            return out

    def delete_group(self, group_id: int) -> None:
        with self._lock:
            self._groups[group_id]["workflow_state"] = "deleted"
