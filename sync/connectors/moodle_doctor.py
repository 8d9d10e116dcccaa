"""What `rostersync doctor` checks on a Moodle site beyond the token and its functions:
the custom profile fields [mapping.attributes] names (docs/moodle.md §8). A mixin of
MoodleTarget, calling through the target's own `_call`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rostersync.sync.connectors.moodle_config import PROFILE_PREFIX

if TYPE_CHECKING:
    from rostersync.sync.connectors.moodle_config import MoodleTargetConfig


class MoodleDoctor:
    config: MoodleTargetConfig

    if TYPE_CHECKING:
        async def _call(self, function: str, params: dict[str, Any], what: str, *,
                        wait: float | None = None) -> Any: ...
        def _listing_wait(self) -> float: ...

    async def check_mapped_attributes(self) -> tuple[bool, str] | None:
        """Which profile fields [mapping.attributes] names the site shows (doctor).

        Moodle's web services list no profile field definitions (4.3 has no such
        function), and answers show a field only on users holding a value for it. So the
        users are listed once: a field seen there exists; one seen nowhere could not be
        checked (a warning: it may be new, or misspelt). A write to a field the site does
        not have is caught anyway, by the read-back, as an error naming the field."""
        mapped = self.config.mapped_attributes
        if not mapped:
            return None
        key, value = self.config.list_criteria_key, self.config.list_criteria_value
        data = await self._call("core_user_get_users",
                                {"criteria": [{"key": key, "value": value}]}, "profile fields",
                                wait=self._listing_wait())
        users = data.get("users") if isinstance(data, dict) else None
        seen = {str(entry.get("shortname")) for user in users or [] if isinstance(user, dict)
                for entry in user.get("customfields") or [] if isinstance(entry, dict)}
        unseen = [name for name in mapped if name.removeprefix(PROFILE_PREFIX) not in seen]
        if unseen:
            return True, (f"could not confirm {', '.join(unseen)} (named in "
                          "mapping.attributes): no user holds a value for it, and Moodle's "
                          "web services list no profile field definitions; check the "
                          "shortname under Site administration > Users > User profile "
                          "fields")
        return True, f"the site's users show all {len(mapped)} mapped profile fields"
