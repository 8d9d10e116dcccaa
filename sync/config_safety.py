"""Rules that keep secrets out of harm's way, applied to every config section alike.

- Plain ``http://`` carries a bearer token, an API key or a client secret in clear. It is
  accepted only to a loopback host (127.0.0.0/8, ::1, ``localhost``), or when the section
  says ``allow_insecure_http = true`` (a TLS-terminating sidecar on another host, a lab);
  such a URL is then named at load, by ``doctor`` and on the dashboard.
- A key ending in ``_env`` names an environment variable. A secret pasted there instead is
  refused without ever being repeated (messages, logs and the screen never show it).

The rules walk the validated config generically (every field whose name ends in ``url``
or ``_env``, in every section and nested table), so a connector added later is covered
without a copy of its own. Pure functions: no IO.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel

# What a shell accepts as a variable name (POSIX: letters, digits, underscore).
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A name past this length is not something anyone types: it was pasted.
_MAX_NAME = 64
ALLOW_KEY = "allow_insecure_http"


def is_loopback_host(host: str | None) -> bool:
    """127.0.0.0/8, ::1 and the name ``localhost`` (pure)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_cleartext(url: str) -> bool:
    """Whether a request to ``url`` would leave this machine unencrypted (pure)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False  # not a URL we would call; the section's own check says why
    return parts.scheme.lower() == "http" and not is_loopback_host(host)


def without_credentials(url: str) -> str:
    """The URL with any user:password@ and query string removed, for messages (pure)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unparsable URL)"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def looks_like_secret(value: str) -> bool:
    """Whether a value given for a ``*_env`` key is a secret rather than a variable name.

    Names are short and made of letters, digits and underscores (LMS_TOKEN,
    ROSTERSYNC_HRIS_KEY_2024). Anything else cannot be exported from a shell, and a long
    run of mixed case and digits, or of hex/base64 without an underscore, is what tokens
    and keys look like (pure)."""
    if not _ENV_NAME.fullmatch(value) or len(value) > _MAX_NAME:
        return True
    has_digit = any(c.isdigit() for c in value)
    mixed_case = any(c.islower() for c in value) and any(c.isupper() for c in value)
    if len(value) >= 20 and has_digit and mixed_case:
        return True
    return len(value) >= 24 and has_digit and "_" not in value


def settings(node: BaseModel, where: str) -> Iterator[tuple[str, Any]]:
    """Every (dotted key, value) under ``node``, nested tables and lists of tables
    included."""
    for name in type(node).model_fields:
        value = getattr(node, name, None)
        key = f"{where}.{name}"
        if isinstance(value, BaseModel):
            yield from settings(value, key)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from settings(item, f"{key}.{i}")
        yield key, value


def sections(config: BaseModel) -> Iterator[tuple[str, BaseModel]]:
    """The config's sections by key. A list of tables inside a section (each alert
    channel) comes first, as sections of its own: each has its own allow_insecure_http,
    and the first section to claim a key is the one that decides it."""
    for name in type(config).model_fields:
        value = getattr(config, name, None)
        if isinstance(value, BaseModel):
            for sub in type(value).model_fields:
                items = getattr(value, sub, None)
                if isinstance(items, list) and items and isinstance(items[0], BaseModel):
                    for i, item in enumerate(items):
                        yield f"{name}.{sub}.{i}", item
            yield name, value
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield f"{name}.{i}", item


def _is_url_key(key: str) -> bool:
    last = key.rsplit(".", 1)[-1]
    return last == "url" or last.endswith("_url")


def cleartext_urls(config: BaseModel) -> list[tuple[str, str, bool]]:
    """(key, URL without credentials, allowed) for every plain-HTTP URL to another host."""
    out = []
    for where, section in sections(config):
        allowed = bool(getattr(section, ALLOW_KEY, False))
        for key, value in settings(section, where):
            if _is_url_key(key) and isinstance(value, str) and is_cleartext(value):
                out.append((key, without_credentials(value), allowed))
    return _dedupe(out)


def secret_like_env_keys(config: BaseModel) -> list[str]:
    """Keys ending in ``_env`` whose value looks like a secret (the value is not returned)."""
    keys = []
    for where, section in sections(config):
        for key, value in settings(section, where):
            if key.endswith("_env") and isinstance(value, str) and looks_like_secret(value):
                keys.append(key)
    return list(dict.fromkeys(keys))


def _dedupe(rows: list[tuple[str, str, bool]]) -> list[tuple[str, str, bool]]:
    seen, out = set(), []
    for row in rows:
        if row[0] not in seen:
            seen.add(row[0])
            out.append(row)
    return out


def refused_cleartext(config: BaseModel) -> str | None:
    """One sentence for the first plain-HTTP URL that is not allowed, else None (pure)."""
    for key, url, allowed in cleartext_urls(config):
        if not allowed:
            section = key.rsplit(".", 1)[0]
            return (f"key {key!r}: plain http:// to a host other than this machine ({url}) "
                    f"would send credentials in clear; use https://, or set "
                    f"{section}.{ALLOW_KEY} = true to accept that")
    return None


def secret_sentence(key: str) -> str:
    """The sentence for a secret pasted into a ``*_env`` key: it never repeats the value."""
    return (f"the value of {key} looks like a secret, not a variable name; put the secret "
            "in an environment variable and name that variable here (the value is not "
            "shown)")


def insecure_sentence(key: str, url: str, what: str = "allowed") -> str:
    """The sentence shown at load, by doctor and on the dashboard for an allowed URL."""
    return (f"plain http:// {what} for {key} ({url}) by {ALLOW_KEY} = true: credentials "
            "travel in clear")


def check_url(url: str, allowed: bool, key: str) -> None:
    """Raise ValueError when ``url`` (read at run time, e.g. from a variable) is refused."""
    if is_cleartext(url) and not allowed:
        raise ValueError(f"{key}: plain http:// to a host other than this machine would "
                         f"send the data in clear; use https://, or set the channel's "
                         f"{ALLOW_KEY} = true to accept that")
