"""The [console] section: settings of the terminal console alone.

``keys`` remaps the console's keys: action name -> key (``retry = "R"``). Here they are
plain text; which actions exist and which keys a terminal can send are the console's
knowledge (console/keys_config.py checks them when the config is loaded for a command,
with the same one-sentence errors), so this layer needs nothing from it.
"""

from __future__ import annotations

from pydantic import Field

from rostersync.sync.config_base import Strict


class ConsoleConfig(Strict):
    keys: dict[str, str] = Field(default_factory=dict)
