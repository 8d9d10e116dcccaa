"""Workday auth = "oauth": the refresh-token grant at /ccx/oauth2/{tenant}/token, access
tokens renewed before they expire and once when refused, and a refused refresh token
ending the pull in one sentence without a secret."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from rostersync.sandbox.workday import WorkdaySandbox
from rostersync.sandbox.workday_data import generate
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import Config, ConfigError, config_from_dict
from rostersync.sync.connectors.base import SourceUnavailable
from rostersync.sync.connectors.workday import WorkdaySource
from rostersync.sync.connectors.workday_config import WorkdaySourceConfig
from rostersync.sync.engine import Engine
from tests.support import TOKEN_ENV
from tests.test_workday import NOW

CLIENT_ID = "lms-sync-client"
SECRET, SECRET_ENV = "sandbox-client-secret", "ROSTERSYNC_TEST_WORKDAY_CLIENT_SECRET"
REFRESH, REFRESH_ENV = "sandbox-refresh-token", "ROSTERSYNC_TEST_WORKDAY_REFRESH_TOKEN"
LIFETIME = 600.0  # seconds; tokens are renewed 60 s before they run out


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def hris(clock):
    os.environ[SECRET_ENV] = SECRET
    os.environ[REFRESH_ENV] = REFRESH
    with WorkdaySandbox(user=None, clock=clock.now, oauth=(CLIENT_ID, SECRET, REFRESH),
                        token_lifetime_seconds=LIFETIME) as server:
        for worker in generate(7):
            server.put(worker)
        yield server


def oauth_settings(hris, **overrides) -> dict:
    return {"base_url": hris.base_url, "report_path": hris.report_path, "auth": "oauth",
            "client_id": CLIENT_ID, "client_secret_env": SECRET_ENV,
            "refresh_token_env": REFRESH_ENV, **overrides}


def source(hris, clock, **overrides) -> WorkdaySource:
    config = WorkdaySourceConfig.model_validate(oauth_settings(hris, **overrides))
    return WorkdaySource(config, now=clock.now, sleep=lambda s: pytest.fail(f"slept {s}"))


def pull(src: WorkdaySource) -> int:
    return len(list(src.scan_full()))


def test_a_token_is_obtained_once_and_reused_while_fresh(hris, clock):
    src = source(hris, clock)
    assert pull(src) == 7 and pull(src) == 7
    assert hris.app.token_requests == 1 and hris.oauth.issued == 1
    # Report and schema both carried the bearer token.
    assert [scheme for _m, scheme, _p in hris.requests] == ["bearer"] * 4


@pytest.mark.parametrize(("elapsed", "tokens"), [
    (LIFETIME - 61, 1),  # just before the renewal margin: the token is still used
    (LIFETIME - 60, 2),  # exactly at it: renewed before the call
    (LIFETIME - 59, 2),  # inside it
    (LIFETIME + 3600, 2),  # long expired: renewed, no 401 on the way
])
def test_a_token_is_renewed_60_s_before_it_expires(hris, clock, elapsed, tokens):
    src = source(hris, clock)
    assert pull(src) == 7
    clock.advance(seconds=elapsed)
    assert pull(src) == 7
    assert hris.oauth.issued == tokens and hris.oauth.refused == 0
    assert len(hris.requests) == 4  # no refused call was replayed


def test_a_token_refused_early_is_renewed_once_and_the_call_replayed(hris, clock):
    src = source(hris, clock)
    assert pull(src) == 7
    hris.oauth.revoke_all()  # e.g. a rotated signing key: the token dies before its time
    assert pull(src) == 7
    assert hris.oauth.issued == 2
    assert len(hris.requests) == 5  # the refused report call, its replay, the schema


def test_an_expired_token_does_not_fail_a_run(hris, clock, scim_server, lms_token, tmp_path):
    config = Config.model_validate({
        "database": {"path": str(tmp_path / "rostersync.db")},
        "hris": {"type": "workday", **oauth_settings(hris)},
        "lms": {"type": "scim", "base_url": scim_server.base_url, "token_env": TOKEN_ENV},
    })
    src = WorkdaySource(config.hris, now=clock.now, sleep=clock.slept.append)
    engine = Engine(config, Store(config.database.path), source=src, clock=clock)
    assert asyncio.run(engine.sync("full")).status == "succeeded"
    clock.advance(hours=2)  # the first access token has long expired
    hris.update(generate(3)[2]["Worker_WID"], Business_Title="Lead")
    report = asyncio.run(engine.sync("full"))
    assert report.status == "succeeded", report.message
    assert report.counts["planned"] == {"update": 1}
    assert hris.oauth.issued == 2 and clock.slept == []


def test_a_refused_refresh_token_ends_the_pull_in_one_sentence(hris, clock):
    os.environ[REFRESH_ENV] = "a-revoked-refresh-token"
    with pytest.raises(SourceUnavailable) as err:
        pull(source(hris, clock))
    message = str(err.value)
    assert message == (
        f"Workday token endpoint {hris.base_url}/ccx/oauth2/acme/token refused the token "
        "request with HTTP 400: invalid_grant (Invalid refresh token); renew the stored "
        "credentials")
    assert err.value.error_class == SourceUnavailable.AUTH
    assert "a-revoked-refresh-token" not in message and SECRET not in message
    assert hris.requests == []  # the report was never asked for without a token


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_failing_token_endpoint_is_an_outage_not_a_refusal(hris, clock, status):
    hris.oauth.failing_with = status
    with pytest.raises(SourceUnavailable) as err:
        pull(source(hris, clock))
    assert err.value.error_class == SourceUnavailable.UNREACHABLE
    assert str(err.value) == (
        f"Workday token endpoint {hris.base_url}/ccx/oauth2/acme/token failed with HTTP "
        f"{status} while obtaining an access token; the next run tries again")
    hris.oauth.failing_with = None
    assert pull(source(hris, clock)) == 7  # back: nothing to renew


def test_a_wrong_client_secret_is_named_without_the_secret(hris, clock):
    os.environ[SECRET_ENV] = "not-the-client-secret"
    with pytest.raises(SourceUnavailable) as err:
        pull(source(hris, clock))
    assert "HTTP 401: invalid_client" in str(err.value)
    assert "not-the-client-secret" not in str(err.value)


def test_an_engine_run_with_a_refused_refresh_token_fails_and_says_why(
        hris, clock, scim_server, lms_token, tmp_path):
    os.environ[REFRESH_ENV] = "a-revoked-refresh-token"
    config = Config.model_validate({
        "database": {"path": str(tmp_path / "rostersync.db")},
        "hris": {"type": "workday", **oauth_settings(hris)},
        "lms": {"type": "scim", "base_url": scim_server.base_url, "token_env": TOKEN_ENV},
    })
    engine = Engine(config, Store(config.database.path),
                    source=WorkdaySource(config.hris, now=clock.now), clock=clock)
    report = asyncio.run(engine.sync("full"))
    assert (report.status, report.exit_code, report.error_class) == (
        "failed", 1, "source_auth")
    assert "invalid_grant" in report.message and "revoked" not in report.message


def test_the_token_url_is_derived_from_the_tenant_or_configured(hris):
    config = WorkdaySourceConfig.model_validate(oauth_settings(hris))
    assert config.oauth_token_url == f"{hris.base_url}/ccx/oauth2/acme/token"
    other = WorkdaySourceConfig.model_validate(oauth_settings(
        hris, report_path="custom/report", token_url="https://auth.example/token"))
    assert other.oauth_token_url == "https://auth.example/token"


@pytest.mark.parametrize(("change", "message"), [
    ({"client_id": None}, "needs client_id, client_secret_env and refresh_token_env"),
    ({"refresh_token_env": None}, "needs client_id, client_secret_env and refresh_token_env"),
    ({"report_path": "custom/report"}, "needs token_url, since report_path does not name"),
])
def test_oauth_config_mistakes_are_one_sentence(change, message):
    hris = {"type": "workday", "base_url": "https://wd.example",
            "report_path": "ccx/service/customreport2/acme/ISU/R", "auth": "oauth",
            "client_id": CLIENT_ID, "client_secret_env": SECRET_ENV,
            "refresh_token_env": REFRESH_ENV, **change}
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"hris": hris, "lms": {"type": "scim",
                                                "base_url": "https://lms.example"}})


def test_doctor_notes_say_which_auth_is_used(hris, clock):
    src = source(hris, clock)
    pull(src)
    notes = dict(src.notes())
    assert notes["hris auth"] == (
        f"OAuth refresh-token grant at {hris.base_url}/ccx/oauth2/acme/token as client "
        f"{CLIENT_ID} (secret from ${SECRET_ENV}, refresh token from ${REFRESH_ENV}); "
        "1 access token(s) obtained")
    assert SECRET not in str(notes) and REFRESH not in str(notes)



def test_rostersync_doctor_shows_the_auth_and_the_prompts(hris, tmp_path, capsys,
                                                          scim_server, lms_token):
    from rostersync.console.cli import main

    path = tmp_path / "rostersync.toml"
    path.write_text("\n".join([
        "[database]", f'path = "{tmp_path / "rostersync.db"}"', "",
        "[hris]", 'type = "workday"', f'base_url = "{hris.base_url}"',
        f'report_path = "{hris.report_path}"', 'auth = "oauth"', f'client_id = "{CLIENT_ID}"',
        f'client_secret_env = "{SECRET_ENV}"', f'refresh_token_env = "{REFRESH_ENV}"', "",
        "[hris.prompts]", 'Worker_Type = "Employee"', "",
        "[lms]", 'type = "scim"', f'base_url = "{scim_server.base_url}"',
        f'token_env = "{TOKEN_ENV}"', ""]), encoding="utf-8")
    path.chmod(0o600)
    main(["doctor", "--json", "--config", str(path)])
    checks = {c["check"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["hris"]["result"] == "ok", checks["hris"]
    assert checks["hris auth"]["detail"].startswith(
        f"OAuth refresh-token grant at {hris.base_url}/ccx/oauth2/acme/token")
    assert checks["hris prompts"]["detail"] == "sent as Worker_Type=Employee"
    assert checks["hris schema"]["result"] == "ok"
    assert SECRET not in json.dumps(checks) and REFRESH not in json.dumps(checks)
