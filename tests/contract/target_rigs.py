"""Target rigs: for each LMS kind, its real server on 127.0.0.1 and the connector built
from its config section by ``sync.connectors.factory.make_target``.

A rig says what its LMS can hold, so that one suite (tests/contract/target_suite.py)
asks each target only for what it promised; a rule that cannot apply to an LMS by design
is a documented skip in ``skips`` (rule name -> why).
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, ClassVar

from rostersync.sandbox.canvas import CanvasSandbox
from rostersync.sandbox.moodle import MoodleSandbox
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.sync.config import ScimTargetConfig
from rostersync.sync.connectors.base import LmsTarget
from rostersync.sync.connectors.canvas_config import CanvasTargetConfig
from rostersync.sync.connectors.factory import make_target
from rostersync.sync.connectors.moodle_config import MoodleTargetConfig
from tests.support import lms_users


class TargetRig:
    """How to run one LMS kind for the contract suite (one server per suite class)."""

    kind: ClassVar[str]
    token: ClassVar[str]
    token_env: ClassVar[str]
    # Account fields the LMS keeps and reads back (compared after a create or update).
    holds: ClassVar[tuple[str, ...]]
    # How a manager is held: "lms_id" (reported in extra["manager_lms_id"]), "key" (the
    # manager's HRIS key in manager_key) or None (nowhere).
    manager: ClassVar[str | None]
    # The config key that sets the listing's page size (None: the LMS does not page).
    page_option: ClassVar[str | None]
    # An id of the LMS's own form that no account has.
    missing_id: ClassVar[str]
    skips: ClassVar[dict[str, str]] = {}

    def serve(self, stack: ExitStack) -> None:
        raise NotImplementedError

    def section(self) -> dict[str, Any]:
        """The [lms] section pointing at the running server."""
        raise NotImplementedError

    def target(self, **options: Any) -> LmsTarget:
        """The connector as the product builds it: from its config section."""
        return make_target(self.config_class(**{**self.section(), **options}))

    config_class: ClassVar[type]

    def stored_keys(self) -> list[str]:
        """The external keys of every account the server holds, read past the connector
        (a key twice means a duplicate account)."""
        raise NotImplementedError


class ScimRig(TargetRig):
    kind = "scim"
    token, token_env = "contract-scim-token", "ROSTERSYNC_CONTRACT_SCIM_TOKEN"
    holds = ("external_key", "user_name", "given_name", "family_name", "display_name", "email",
             "title", "department", "employee_number", "active")
    manager = "lms_id"
    page_option = "page_size"
    missing_id = "00000000-0000-4000-8000-000000000000"
    config_class = ScimTargetConfig

    def serve(self, stack: ExitStack) -> None:
        self.lms = stack.enter_context(ScimSandbox(token=self.token))

    def section(self) -> dict[str, Any]:
        # One request per write: the contract is about the single-write methods.
        return {"type": "scim", "base_url": self.lms.base_url, "token_env": self.token_env,
                "bulk": "off"}

    def stored_keys(self) -> list[str]:
        return [u.get("externalId") for u in lms_users(self.lms.base_url, self.token)]


class MoodleRig(TargetRig):
    kind = "moodle"
    token, token_env = "c0ffee00c0ffee00c0ffee00c0ffee00", "ROSTERSYNC_CONTRACT_MOODLE_TOKEN"
    FIELDS = {"title": "profile_field_jobtitle", "employee_number": "profile_field_empno",
              "manager_key": "profile_field_managerid"}
    holds = ("external_key", "user_name", "given_name", "family_name", "email", "title",
             "department", "employee_number", "active")
    manager = "key"
    page_option = None
    missing_id = "99999"
    config_class = MoodleTargetConfig
    skips = {"paging": "Moodle's core_user_get_users has no paging: one call answers every "
                       "user (docs/moodle.md §6.3)"}

    def serve(self, stack: ExitStack) -> None:
        homes = tuple(h.removeprefix("profile_field_") for h in self.FIELDS.values())
        self.lms = stack.enter_context(MoodleSandbox(token=self.token, profile_fields=homes))

    def section(self) -> dict[str, Any]:
        return {"type": "moodle", "base_url": self.lms.base_url, "token_env": self.token_env,
                "fields": self.FIELDS}

    def stored_keys(self) -> list[str]:
        return [u["idnumber"] for u in list(self.lms.site.users.values())
                if not u["deleted"] and u["idnumber"]]  # guest and admin have none


class CanvasRig(TargetRig):
    kind = "canvas"
    token, token_env = "contract-canvas-token", "ROSTERSYNC_CONTRACT_CANVAS_TOKEN"
    holds = ("external_key", "user_name", "given_name", "family_name", "display_name", "email",
             "employee_number", "active")
    manager = None  # Canvas has no manager reference (docs/canvas.md)
    page_option = "per_page"
    missing_id = "99999"
    config_class = CanvasTargetConfig
    skips = {"manager": "Canvas has no manager reference (docs/canvas.md §7.2)"}

    def serve(self, stack: ExitStack) -> None:
        self.lms = stack.enter_context(CanvasSandbox(token=self.token))

    def section(self) -> dict[str, Any]:
        return {"type": "canvas", "base_url": self.lms.base_url, "token_env": self.token_env,
                "account_id": self.lms.account_id}

    def stored_keys(self) -> list[str]:
        return [u["sis_user_id"] for u in self.lms.data.list_users() if u.get("sis_user_id")]


TARGET_RIGS: tuple[type[TargetRig], ...] = (ScimRig, MoodleRig, CanvasRig)
