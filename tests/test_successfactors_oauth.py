"""SuccessFactors OAuth 2.0 SAML bearer (connectors.md §3.1; issue 16): a signed assertion
is exchanged at /oauth/token for short-lived tokens, renewed as they expire."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import pytest

from rostersync.sandbox.successfactors import SuccessFactorsSandbox
from rostersync.sandbox.successfactors_data import organisation
from rostersync.sandbox.successfactors_oauth import make_key_pair
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import Config
from rostersync.sync.connectors.base import SourceUnavailable
from rostersync.sync.connectors.successfactors import SuccessFactorsSource
from rostersync.sync.connectors.successfactors_config import SuccessFactorsSourceConfig
from rostersync.sync.engine import Engine
from tests.support import TOKEN_ENV

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
API_KEY = "NjY0ZjQ5YzAtYjE0Ny00"
KEY_ENV = "ROSTERSYNC_TEST_SF_PRIVATE_KEY"
LIFETIME = timedelta(minutes=10)


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    return make_key_pair()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def hris(clock, keys):
    with SuccessFactorsSandbox("ACME", clock=clock.now) as server:
        server.register_oauth_client(API_KEY, keys[1], token_lifetime=LIFETIME)
        for record in organisation(5):
            server.put(record)
        yield server


@pytest.fixture
def key_file(tmp_path, keys):
    path = tmp_path / "sf-oauth.pem"
    path.write_bytes(keys[0])
    path.chmod(0o600)
    return path


class Monotonic:
    """The client's own clock, apart from the server's (clock skew is one way a token
    the client still trusts is refused)."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


def settings(hris, key_file, **extra) -> dict:
    return {"base_url": hris.base_url, "company_id": "ACME", "auth": "oauth",
            "client_id": API_KEY, "user_id": "sfapi", "private_key_file": str(key_file),
            **extra}


def source(hris, key_file, clock, monotonic, **extra) -> SuccessFactorsSource:
    return SuccessFactorsSource(SuccessFactorsSourceConfig(**settings(hris, key_file, **extra)),
                                now=clock.now, monotonic=monotonic)


def posts(hris) -> list[str]:
    return [path for method, path, _ in hris.requests if method == "POST"]


def test_a_signed_assertion_buys_a_token_that_is_reused_until_shortly_before_expiry(
        hris, key_file, clock):
    mono = Monotonic()
    src = source(hris, key_file, clock, mono)
    assert len(list(src.scan_full())) == 5
    assert posts(hris) == ["/oauth/token"] and hris.app.oauth.issued == 1
    assert not [p for _, p, _ in hris.requests if p.startswith("/oauth/idp")]
    # Renewed 60 s before the stated expiry: just before that edge the token is reused.
    mono.value += LIFETIME.total_seconds() - 61
    list(src.scan_full())
    assert hris.app.oauth.issued == 1
    mono.value += 1  # exactly at the edge: a new one
    clock.advance(seconds=LIFETIME.total_seconds() - 60)
    list(src.scan_full())
    assert hris.app.oauth.issued == 2 and src.auth.grants == 2


@pytest.mark.parametrize("expired_status", [401, 403])
def test_a_token_the_server_has_expired_is_renewed_once_and_the_pull_completes(
        hris, key_file, clock, expired_status):
    hris.app.oauth.expired_status = expired_status  # KBA 2524436: some tenants say 403
    mono = Monotonic()
    src = source(hris, key_file, clock, mono)
    list(src.scan_full())
    clock.advance(seconds=LIFETIME.total_seconds())  # the server's clock says expired
    got = list(src.scan_full())
    assert len(got) == 5 and hris.app.oauth.issued == 2
    assert posts(hris) == ["/oauth/token", "/oauth/token"]


def test_runs_across_token_expiry_never_fail(hris, key_file, clock, scim_server, lms_token,
                                            tmp_path):
    config = Config.model_validate({
        "database": {"path": str(tmp_path / "rostersync.db")},
        "hris": {"type": "successfactors", **settings(hris, key_file)},
        "lms": {"type": "scim", "base_url": scim_server.base_url, "token_env": TOKEN_ENV}})
    clock.advance(hours=2)
    src = SuccessFactorsSource(config.hris, now=clock.now,
                               monotonic=lambda: clock.now().timestamp())
    engine = Engine(config, Store(config.database.path), source=src, clock=clock)
    for _ in range(3):
        report = asyncio.run(engine.sync("full"))
        assert report.status == "succeeded", report.message
        clock.advance(seconds=LIFETIME.total_seconds() + 1)
    assert hris.app.oauth.issued == 3


def test_a_refused_assertion_ends_the_pull_in_one_sentence_without_secrets(
        hris, key_file, clock, keys):
    _, other_cert = make_key_pair("someone-else")
    hris.register_oauth_client(API_KEY, other_cert)  # the registered certificate changed
    with pytest.raises(SourceUnavailable) as caught:
        list(source(hris, key_file, clock, Monotonic()).scan_full())
    text = str(caught.value)
    assert caught.value.error_class == SourceUnavailable.AUTH
    assert text.startswith(f"SuccessFactors token endpoint {hris.base_url}/oauth/token "
                           "refused the token request with HTTP 400: invalid_grant (the "
                           "assertion's signature does not verify against the registered "
                           "certificate")
    assert text.endswith("; renew the stored credentials") and "\n" not in text
    pem_body = b"".join(keys[0].splitlines()[1:-1]).decode()
    assert pem_body[:40] not in text and "assertion=" not in text
    assert not [p for _, p, _ in hris.requests if p.startswith("/odata/")]


def test_the_private_key_may_come_from_the_environment(hris, clock, keys, tmp_path):
    os.environ[KEY_ENV] = keys[0].decode()
    config = {"base_url": hris.base_url, "company_id": "ACME", "auth": "oauth",
              "client_id": API_KEY, "user_id": "sfapi", "private_key_env": KEY_ENV}
    src = SuccessFactorsSource(SuccessFactorsSourceConfig(**config), now=clock.now,
                               monotonic=Monotonic())
    assert len(list(src.scan_full())) == 5


def test_a_key_file_others_can_read_is_refused_naming_the_key(hris, key_file, clock):
    key_file.chmod(0o640)
    with pytest.raises(SourceUnavailable) as caught:
        list(source(hris, key_file, clock, Monotonic()).scan_full())
    assert str(caught.value) == (
        f"hris.private_key_file {key_file} can be read by other users (mode 0640); make it "
        "readable by its owner only (chmod 600)")
    assert hris.requests == []


def test_a_key_that_cannot_sign_is_one_sentence(hris, tmp_path, clock):
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n")
    bad.chmod(0o600)
    with pytest.raises(SourceUnavailable, match=r"^SuccessFactors OAuth: the private key "
                       r"named by hris\.private_key_file cannot sign the assertion \(\w+\); "
                       "it must be an unencrypted PEM RSA key$"):
        list(source(hris, bad, clock, Monotonic()).scan_full())


def test_oauth_config_needs_its_settings_and_never_the_idp_endpoint(key_file):
    base = {"base_url": "https://api4.successfactors.com", "company_id": "ACME",
            "auth": "oauth"}
    with pytest.raises(ValueError, match="needs client_id"):
        SuccessFactorsSourceConfig(**base, private_key_file=str(key_file))
    with pytest.raises(ValueError, match="one of private_key_file or private_key_env"):
        SuccessFactorsSourceConfig(**base, client_id="K", user_id="u")
    with pytest.raises(ValueError, match="must not be /oauth/idp"):
        SuccessFactorsSourceConfig(**base, client_id="K", user_id="u",
                                   private_key_file=str(key_file),
                                   token_url="https://api4.successfactors.com/oauth/idp")


def test_doctor_notes_say_how_the_source_authenticates_and_warn_of_the_old_filter(
        hris, key_file, clock):
    src = source(hris, key_file, clock, Monotonic())
    list(src.scan_full())
    assert src.notes() == [("hris auth", f"OAuth SAML bearer at {hris.base_url}/oauth/token "
                                         f"for client_id {API_KEY}, user sfapi; 1 token(s) "
                                         "obtained this run")]
    risky = source(hris, key_file, clock, Monotonic(),
                   person_filter="personEmpTerminationInfoNav/activeEmploymentsCount ne null")
    name, detail = risky.notes()[1]
    assert name == "hris person_filter" and " could not " in detail  # doctor: a warning
