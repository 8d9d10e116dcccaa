"""How the SuccessFactors source authenticates (docs/successfactors.md §3.1).

- ``basic``: ``username@companyId`` and a password (SAP calls it deprecated).
- ``bearer``: a fixed access token from the environment, obtained elsewhere.
- ``oauth``: the OAuth 2.0 SAML bearer grant, done here (sync.connectors.successfactors_saml).

Secrets are read when the client opens, from the environment or a key file, and never
appear in messages: those name the config keys that hold them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx

from rostersync.sync.config import secret_from_env
from rostersync.sync.connectors.successfactors_config import SuccessFactorsSourceConfig


def credential_keys(config: SuccessFactorsSourceConfig) -> str:
    """The config keys that hold the credentials, for a message about a refusal."""
    if config.auth == "basic":
        return f"hris.username and hris.password_env ({config.password_env})"
    if config.auth == "bearer":
        return f"hris.token_env ({config.token_env})"
    where = (f"hris.private_key_file ({config.private_key_file})" if config.private_key_file
             else f"hris.private_key_env ({config.private_key_env})")
    return f"hris.client_id, hris.user_id and {where}"


def open_client(config: SuccessFactorsSourceConfig, monotonic: Callable[[], float],
                now: Callable[[], datetime]) -> tuple[httpx.Client, httpx.Auth | None]:
    """The HTTP client for one source, with its auth. The client keeps the session cookie
    SuccessFactors sets on the first answer (§3.1)."""
    headers = {"Accept": "application/json"}
    client = httpx.Client(headers=headers, timeout=config.timeout_seconds,
                          verify=config.verify_tls)
    auth: httpx.Auth | None = None
    if config.auth == "basic":
        password = secret_from_env(config.password_env, "hris.password_env")
        auth = httpx.BasicAuth(f"{config.username}@{config.company_id}", password or "")
    elif config.auth == "bearer":
        token = secret_from_env(config.token_env, "hris.token_env")
        client.headers["Authorization"] = f"Bearer {token}"
    else:
        from rostersync.sync.connectors.successfactors_saml import saml_bearer

        auth = saml_bearer(config, client, monotonic, now=now)  # grants go through client
    if auth is not None:
        client.auth = auth
    return client, auth


def notes(config: SuccessFactorsSourceConfig, auth: httpx.Auth | None) -> list[tuple[str, str]]:
    """What `rostersync doctor` shows about how the source reads (one line each; a line
    with " could not " is a warning)."""
    if config.auth == "oauth":
        from rostersync.sync.connectors.successfactors_saml import token_url

        grants = getattr(auth, "grants", 0)
        said = [("hris auth", f"OAuth SAML bearer at {token_url(config)} for client_id "
                              f"{config.client_id}, user {config.user_id}; {grants} token(s) "
                              "obtained this run")]
    elif config.auth == "basic":
        said = [("hris auth", "Basic auth (SAP calls it deprecated; auth = \"oauth\" "
                              "obtains tokens with a signed SAML assertion)")]
    else:
        said = [("hris auth", f"a fixed bearer token from ${config.token_env}; it is not "
                              "renewed when it expires")]
    if "personEmpTerminationInfoNav" in config.person_filter:
        said.append(("hris person_filter", "hris.person_filter filters on "
                     "personEmpTerminationInfoNav, which can go null during a termination: "
                     "terminations could not be relied on to reach a delta (§3.6)"))
    return said
