"""What `rostersync doctor` checks on a Moodle site beyond the token and its functions:
the custom profile fields [mapping.attributes] names (docs/moodle.md §8). A collaborator
MoodleTarget owns, calling through the target's own client."""

from __future__ import annotations

from rostersync.sync.connectors.moodle_client import MoodleClient
from rostersync.sync.connectors.moodle_config import PROFILE_PREFIX, MoodleTargetConfig


class MoodleDoctor:
    def __init__(self, client: MoodleClient, config: MoodleTargetConfig) -> None:
        self.config = config
        self._client = client

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
        data = await self._client.call("core_user_get_users",
                                       {"criteria": [{"key": key, "value": value}]},
                                       "profile fields", wait=self._client.listing_wait())
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
