"""How the Workday source authenticates (docs/workday.md §2.1, "Auth").

- ``basic``: an Integration System User and its password.
- ``bearer``: one fixed token from the environment (it stops working when it expires).
- ``oauth``: an API client for integrations exchanges its stored refresh token at
  ``/ccx/oauth2/{tenant}/token`` (``grant_type=refresh_token``) for short-lived access
  tokens, before the first call and again when one expires or is refused
  (faros-ai/airbyte-connectors ``sources/workday-source/src/workday.ts`` getAccessToken;
  singer-io/tap-workday-raas ``client.py`` WorkdayOAuthClient, which sends the client id
  and secret as HTTP Basic, as done here). Renewal is RefreshingBearer's.

Secrets are read from the environment when the client opens and appear in no message.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx

from rostersync.sync.config import secret_from_env
from rostersync.sync.connectors.oauth_tokens import RefreshingBearer, grant_sender
from rostersync.sync.connectors.workday_config import WorkdaySourceConfig


def open_client(config: WorkdaySourceConfig,
                clock: Callable[[], float]) -> tuple[httpx.Client, RefreshingBearer | None]:
    """An httpx client carrying the configured credentials, and the token renewer when
    ``auth = "oauth"`` (doctor and tests read how many tokens it obtained)."""
    headers = {"Accept": "application/json"}
    timeout = httpx.Timeout(config.timeout_seconds)
    client = httpx.Client(headers=headers, timeout=timeout, verify=config.verify_tls)
    if config.auth == "basic":
        password = secret_from_env(config.password_env, "hris.password_env") or ""
        client.auth = httpx.BasicAuth(config.user or "", password)
        return client, None
    if config.auth == "bearer":
        token = secret_from_env(config.token_env, "hris.token_env") or ""
        client.headers["Authorization"] = "Bearer " + token
        return client, None
    secret = secret_from_env(config.client_secret_env, "hris.client_secret_env") or ""
    refresh = secret_from_env(config.refresh_token_env, "hris.refresh_token_env") or ""
    url = config.oauth_token_url
    pair = f"{config.client_id or ''}:{secret}".encode()
    basic = "Basic " + base64.b64encode(pair).decode("ascii")

    def token_request() -> httpx.Request:
        # Built through the client so that it carries the client's timeout and TLS
        # settings; sent by RefreshingBearer inside the data request's auth flow.
        return client.build_request(
            "POST", url, data={"grant_type": "refresh_token", "refresh_token": refresh},
            headers={"Authorization": basic})

    what = f"Workday token endpoint {url}"
    bearer = RefreshingBearer(token_request, what, send=grant_sender(client, config, what),
                              now=clock)
    client.auth = bearer
    return client, bearer


def credentials_hint(config: WorkdaySourceConfig) -> str:
    """The settings to check after a refusal, named without their values."""
    if config.auth == "basic":
        return (f"hris.user ({config.user}) and the password in the environment "
                f"variable named by hris.password_env ({config.password_env})")
    if config.auth == "bearer":
        return (f"the token in the environment variable named by hris.token_env "
                f"({config.token_env}); it may have expired")
    return (f"the API client's access to the report (hris.client_id {config.client_id}, "
            f"a fresh token was refused as well)")


def describe_auth(config: WorkdaySourceConfig, bearer: RefreshingBearer | None) -> str:
    """One line for doctor: which authentication is in use, never a secret."""
    if config.auth == "basic":
        return f"HTTP Basic as {config.user} (password from ${config.password_env})"
    if config.auth == "bearer":
        return (f"a fixed bearer token from ${config.token_env} (it is not renewed when "
                "it expires; auth = \"oauth\" renews tokens)")
    obtained = f"; {bearer.grants} access token(s) obtained" if bearer is not None else ""
    return (f"OAuth refresh-token grant at {config.oauth_token_url} as client "
            f"{config.client_id} (secret from ${config.client_secret_env}, refresh token "
            f"from ${config.refresh_token_env}){obtained}")
