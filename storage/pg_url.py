"""Where the PostgreSQL store is and how it logs in: parsed from ``[database] url``.

The password never comes from the config file: it is read from the environment variable
``[database] password_env`` names (ROSTERSYNC_DB_PASSWORD by default), else libpq's own
PGPASSWORD or ~/.pgpass, which the driver reads by itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

DEFAULT_PASSWORD_ENV = "ROSTERSYNC_DB_PASSWORD"
SCHEMES = ("postgresql", "postgres")

# A writer holds the store's advisory lock for its whole transaction (pg_store.tx), so a
# node that dies or loses its network mid-transaction must not keep it for the kernel's
# two-hour TCP timeout: both ends probe the connection every few seconds, and the server
# ends a transaction left idle for a minute (none of ours waits on anything but the
# database inside one). A URL that sets its own ``options`` keeps them.
KEEPALIVES = {"keepalives": "1", "keepalives_idle": "10", "keepalives_interval": "5",
              "keepalives_count": "3"}
SESSION_OPTIONS = ("-c idle_in_transaction_session_timeout=60s -c tcp_keepalives_idle=10 "
                   "-c tcp_keepalives_interval=5 -c tcp_keepalives_count=3")


def url_problem(url: str, key: str = "[database] url") -> str | None:
    """One sentence saying what is wrong with ``url``, or None: pure, for the config."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{key} is not a valid URL ({exc})"
    if parts.scheme not in SCHEMES:
        return (f"{key} must start with postgresql:// (got {parts.scheme or 'no scheme'}"
                "); use [database] path for SQLite")
    if parts.password is not None:
        return (f"{key} must not contain a password: put it in the environment variable "
                f"[database] password_env names ({DEFAULT_PASSWORD_ENV} by default)")
    if not parts.hostname:
        return f"{key} names no host (postgresql://user@host:port/database)"
    if not parts.path.strip("/"):
        return f"{key} names no database (postgresql://user@host:port/database)"
    if port is not None and not 0 < port < 65536:
        return f"{key} has port {port}, outside 1-65535"
    return None


@dataclass(frozen=True)
class PgTarget:
    """A checked URL and the password for it (None: libpq finds its own, if any)."""

    url: str
    password: str | None = field(default=None, repr=False)

    @property
    def display(self) -> str:
        """The URL as messages show it: it never holds a password (url_problem)."""
        return self.url

    def conninfo(self) -> str:
        # Here, not at the top: the config imports this module, and a SQLite deployment
        # never needs the driver.
        import psycopg.conninfo

        given = psycopg.conninfo.conninfo_to_dict(self.url)
        extra = {key: value for key, value in KEEPALIVES.items() if key not in given}
        if "options" not in given:
            extra["options"] = SESSION_OPTIONS
        if self.password:
            extra["password"] = self.password
        return psycopg.conninfo.make_conninfo(self.url, application_name="rostersync",
                                              **extra)

    @property
    def database(self) -> str:
        return unquote(urlsplit(self.url).path.strip("/"))


def target_from(url: str, password_env: str = DEFAULT_PASSWORD_ENV) -> PgTarget:
    """The target for ``url``, its password from ``password_env``; ValueError (one
    sentence) for a URL url_problem refuses."""
    problem = url_problem(url)
    if problem is not None:
        raise ValueError(problem)
    return PgTarget(url, os.environ.get(password_env) or None)
