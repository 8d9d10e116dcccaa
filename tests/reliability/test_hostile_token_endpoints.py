"""Hostile token endpoints: Workday's refresh-token grant and SuccessFactors' SAML-bearer
grant, answered by a server that is hostile in one way. The token answer is read within
the same limits as data answers (sync/connectors/oauth_tokens.py grant_sender):

- a huge answer is refused at hris.max_answer_bytes, streamed, never read whole;
- a drip that beats the read timeout ends at hris.request_deadline_seconds, as a timeout
  (retried like one);
- a redirect is never followed: the grant's credentials (the client secret and refresh
  token, or the signed assertion) never reach the other host, and the answer is one
  sentence naming the Location.

Before, the token answer was read whole by httpx, with no deadline, and a redirect was
"refused the token request with HTTP 302" without saying where it pointed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from rostersync.sandbox.successfactors_oauth import make_key_pair
from rostersync.sync.connectors.successfactors import SuccessFactorsSource
from rostersync.sync.connectors.successfactors_config import SuccessFactorsSourceConfig
from rostersync.sync.connectors.workday import WorkdaySource
from rostersync.sync.connectors.workday_config import WorkdaySourceConfig
from tests.reliability import figures
from tests.reliability.hostile_rigs import MIB, NOW, SECRET, SECRET_ENV, refused
from tests.reliability.hostile_server import Hostile, HostileServer, drip, endless

pytestmark = pytest.mark.reliability

REFRESH_ENV = "ROSTERSYNC_REL_HOSTILE_REFRESH"
REFRESH = "planted-hostile-refresh-9c2e"


@pytest.fixture(scope="module")
def sf_key(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sf") / "sf-oauth.pem"
    path.write_bytes(make_key_pair()[0])
    path.chmod(0o600)
    return path


def _workday(token_url: str, limits: dict[str, object]) -> Callable[[], object]:
    os.environ[SECRET_ENV], os.environ[REFRESH_ENV] = SECRET, REFRESH
    config = WorkdaySourceConfig.model_validate({
        "base_url": "http://127.0.0.1:9", "report_path": "/ccx/service/customreport2/acme/r",
        "auth": "oauth", "client_id": "lms-sync", "client_secret_env": SECRET_ENV,
        "refresh_token_env": REFRESH_ENV, "token_url": token_url, "timeout_seconds": 5.0,
        # The report's read timeout may not exceed the request's deadline.
        "report_timeout_seconds": min(5.0, float(limits.get("request_deadline_seconds", 5.0))),
        **limits})
    source = WorkdaySource(config, now=lambda: NOW, sleep=lambda s: None, jitter=lambda: 1.0)
    return lambda: list(source.scan_full())


def _successfactors(token_url: str, limits: dict, key: Path) -> Callable[[], object]:
    config = SuccessFactorsSourceConfig(**{
        "base_url": "http://127.0.0.1:9", "company_id": "ACME", "auth": "oauth",
        "client_id": "NjY0ZjQ5YzAtYjE0Ny00", "user_id": "sfapi",
        "private_key_file": str(key), "token_url": token_url, "timeout_seconds": 5.0,
        **limits})
    source = SuccessFactorsSource(config, now=lambda: NOW, sleep=lambda s: None,
                                  jitter=lambda: 1.0)
    return lambda: list(source.scan_full())


GRANTS = ["workday", "successfactors"]


def _reader(grant: str, url: str, key: Path, **limits: object) -> Callable[[], object]:
    if grant == "workday":
        return _workday(url, limits)
    return _successfactors(url, limits, key)


@pytest.mark.parametrize("grant", GRANTS)
def test_a_huge_token_answer_is_refused_at_the_cap(grant, sf_key):
    size = 64 * MIB
    with HostileServer(endless(b'{"access_token": "', size, declare=False)) as server:
        message = refused(_reader(grant, server.base_url + "/token", sf_key,
                                  max_answer_bytes=MIB))
        assert "token endpoint" in message and "max_answer_bytes" in message, message
        assert str(MIB) in message, message
        assert server.sent < size // 2, server.sent  # streamed and dropped, not read whole
    figures.add("hostile: huge token answers refused at the cap")


@pytest.mark.parametrize("grant", GRANTS)
def test_a_dripped_token_answer_ends_at_the_deadline(grant, sf_key):
    body = b'{"access_token": "t", "expires_in": 600}' + b" " * 400
    with HostileServer(drip(body, every=0.02)) as server:
        # Each byte well within the 5 s read timeout; the whole would take 9 s.
        message = refused(_reader(grant, server.base_url + "/token", sf_key,
                                  request_deadline_seconds=0.15))
        assert "request_deadline_seconds" in message and "0.15s" in message, message
    figures.add("hostile: dripped token answers ended at the deadline")


@pytest.mark.parametrize("grant", GRANTS)
def test_a_token_endpoint_that_redirects_is_named_and_never_followed(grant, sf_key):
    with HostileServer(Hostile(200)) as elsewhere:
        away = f"{elsewhere.base_url}/collect?from=rostersync"
        with HostileServer(Hostile(307, {"Location": away})) as server:
            message = refused(_reader(grant, server.base_url + "/token", sf_key))
            assert len(server.requests) == 1
        assert away in message and "redirect" in message and "token endpoint" in message, \
            message
        assert elsewhere.requests == []  # the grant's credentials went nowhere else
    figures.add("hostile: token endpoint redirects refused")
