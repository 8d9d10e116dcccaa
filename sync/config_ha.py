"""The [ha] section: several `rostersync serve` nodes on one database, one leading.

Off by default: a single node needs no leader lease. Each node names itself (default:
the host name); the lease the leader renews lasts ``lease_seconds``, which is also the
longest a dead leader's work waits before a standby takes it over.
"""

from __future__ import annotations

import socket

from pydantic import Field, field_validator

from rostersync.sync.config_base import Strict

# A standby takes over when the lease expires: a longer lease leaves terminations
# unenforced for longer after a node dies.
MAX_LEASE_SECONDS = 60.0


class HaConfig(Strict):
    enabled: bool = False
    node: str = Field(default_factory=socket.gethostname, min_length=1)
    lease_seconds: float = Field(30.0, gt=0)

    @field_validator("lease_seconds")
    @classmethod
    def _short_enough(cls, value: float) -> float:
        if value > MAX_LEASE_SECONDS:
            raise ValueError(f"must be at most {MAX_LEASE_SECONDS:g} seconds (a standby waits "
                             f"this long before taking over from a dead leader), not {value:g}")
        return value

    @field_validator("node")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.strip() or any(not ch.isprintable() for ch in value):
            raise ValueError(f"must be a printable, non-blank node name, not {value!r}")
        return value.strip()

    @property
    def renew_seconds(self) -> float:
        """How often the leader renews and a standby looks at the lease."""
        return self.lease_seconds / 3

    @property
    def fence_margin_seconds(self) -> float:
        """A leader that could not renew stops applying this long before its lease ends."""
        return self.lease_seconds / 3
