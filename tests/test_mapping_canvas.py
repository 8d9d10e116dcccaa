"""Attribute mapping into Canvas's user and login fields, against the Canvas sandbox on
127.0.0.1: the computed time zone, locale and authentication provider land, a second run
plans nothing, an LMS-side edit of a "when_empty" attribute stands while an "always" one
is restored, and a name a Canvas target cannot take is one config error naming the key.

Where Canvas keeps each field and where it answers it is cited in docs/canvas.md §7.5.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from rostersync.sandbox.canvas import CanvasSandbox
from rostersync.sandbox.canvas_data import DEFAULT_TIME_ZONE
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import ConfigError, config_from_dict
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.canvas import CanvasTarget
from rostersync.sync.engine import Engine
from rostersync.sync.models import ErrorClass
from tests.support import World
from tests.test_canvas import CANVAS_COLUMNS, NOW, TOKEN, TOKEN_ENV, Sleeper

LANGUAGES = {"Berlin": "de", "Paris": "fr"}
ATTRIBUTES = {
    "time_zone": "timezone",
    "locale": {"expr": 'lookup("languages", location, "en")', "apply": "when_empty"},
    "authentication_provider_id": '"7"',
}


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()


@pytest.fixture
def lms(monkeypatch, sleeper):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with CanvasSandbox(token=TOKEN, clock=sleeper.clock, max_per_page=4) as server:
        yield server


def _config(folder: Path, csv_path: Path, base_url: str, account_id: str,
            attributes: dict[str, Any], **lms: Any):
    return config_from_dict({
        "database": {"path": str(folder / "rostersync.db")},
        "hris": {"type": "csv", "path": str(csv_path),
                 "columns": {**CANVAS_COLUMNS, "location": "Location"},
                 "date_formats": ["%Y-%m-%d"]},
        "lms": {"type": "canvas", "base_url": base_url, "token_env": TOKEN_ENV,
                "account_id": account_id, "concurrency": 4, **lms},
        "mapping": {"tables": {"languages": LANGUAGES}, "attributes": attributes},
    })


class Org:
    def __init__(self, lms, sleeper, folder: Path, size: int = 6,
                 attributes: dict[str, Any] = ATTRIBUTES) -> None:
        self.lms, self.sleeper, self.folder = lms, sleeper, folder
        self.world = World.generate(size)
        for i, key in enumerate(sorted(self.world.rows)):
            self.world.rows[key]["Location"] = "Paris" if i % 2 else "Berlin"
        self.csv = self.world.write(folder / "employees.csv")
        self.config = _config(folder, self.csv, lms.base_url, lms.account_id, attributes)
        self.clock = FrozenClock(NOW)
        self.engine = Engine(self.config, Store(self.config.database.path), clock=self.clock,
                             target_factory=lambda: CanvasTarget(self.config.lms,
                                                                 sleep=self.sleeper))

    def run(self):
        return asyncio.run(self.engine.sync("full"))

    def users(self) -> dict[str, dict[str, Any]]:
        """SIS id -> the user as Canvas shows it to an admin, login and profile included."""
        out = {}
        data = self.lms.data
        for user in data.list_users(include=("email",)):
            (login,) = data.logins_of(user["id"])
            out[user["sis_user_id"]] = {**data.profile_json(user["id"]), "login": login}
        return out

    def put(self, path: str, form: dict[str, str]) -> None:
        httpx.put(f"{self.lms.base_url}/api/v1{path}", data=form,
                  headers={"Authorization": f"Bearer {TOKEN}"}).raise_for_status()


def test_computed_fields_land_and_a_second_run_plans_nothing(lms, sleeper, tmp_path):
    org = Org(lms, sleeper, tmp_path)
    first = org.run()
    assert first.status == "succeeded", first.message
    assert first.counts["planned"] == {"create": 6}
    users = org.users()
    assert len(users) == 6
    for key, row in org.world.rows.items():
        user = users[key]
        assert user["time_zone"] == row["Time Zone"]
        assert user["locale"] == LANGUAGES[row["Location"]]
        assert (user["login"]["authentication_provider_id"],
                user["login"]["authentication_provider_type"]) == (7, "saml")
    again = org.run()
    assert again.status == "succeeded" and again.counts.get("planned") == {}
    assert again.counts.get("drift", {}) == {}


def test_lms_edits_a_when_empty_field_stands_and_an_always_field_is_restored(
        lms, sleeper, tmp_path):
    org = Org(lms, sleeper, tmp_path, size=4)
    org.run()
    user = org.users()["E00002"]
    org.put(f"/users/{user['id']}", {"user[locale]": "pt-BR",
                                     "user[time_zone]": "Pacific/Auckland"})
    org.put(f"/accounts/{lms.account_id}/logins/{user['login']['id']}",
            {"login[authentication_provider_id]": "ldap"})
    report = org.run()
    assert report.status == "succeeded", report.message
    assert report.counts["planned"] == {"update": 1}
    after = org.users()["E00002"]
    assert after["locale"] == "pt-BR"  # when_empty: the LMS admin's choice stands
    assert after["time_zone"] == org.world.rows["E00002"]["Time Zone"]  # always: restored
    assert after["login"]["authentication_provider_id"] == 7
    # Emptied in Canvas, a when_empty field is HR's again; an HR change reaches Canvas.
    org.put(f"/users/{user['id']}", {"user[locale]": ""})
    org.world.rows["E00003"]["Time Zone"] = "Asia/Tokyo" \
        if org.world.rows["E00003"]["Time Zone"] != "Asia/Tokyo" else "Europe/London"
    org.world.write(org.csv)
    org.clock.advance(hours=1)
    third = org.run()
    assert third.status == "succeeded", third.message
    assert third.counts["planned"] == {"update": 2}
    users = org.users()
    assert users["E00002"]["locale"] == LANGUAGES[org.world.rows["E00002"]["Location"]]
    assert users["E00003"]["time_zone"] == org.world.rows["E00003"]["Time Zone"]
    org.clock.advance(hours=1)
    assert org.run().counts.get("planned") == {}


def test_an_unset_time_zone_reads_as_the_account_default_so_it_is_not_cleared(
        lms, sleeper, tmp_path):
    # An empty HR zone becomes the default zone: an expression is what can be empty.
    org = Org(lms, sleeper, tmp_path, size=2, attributes={
        **ATTRIBUTES, "time_zone": 'if(location == "Remote", null, timezone)'})
    org.run()
    org.world.rows["E00001"]["Location"] = "Remote"
    org.world.write(org.csv)
    org.clock.advance(hours=1)
    report = org.run()
    zone = org.users()["E00001"]["time_zone"]
    assert zone not in ("", None, DEFAULT_TIME_ZONE)  # the last zone written stays
    assert report.counts.get("planned") == {"update": 1}
    (failed,) = org.engine.store.rows("SELECT * FROM ops WHERE last_error IS NOT NULL")
    assert failed["error_class"] == "mapping"
    assert "Canvas cannot clear time_zone (an unset time zone reads as the account's " \
           "default time zone)" in failed["last_error"]


# -- config ---------------------------------------------------------------------------------


def _load(tmp_path: Path, attributes: dict[str, Any], **lms: Any):
    csv_path = World.generate(1).write(tmp_path / "employees.csv")
    return _config(tmp_path, csv_path, "http://127.0.0.1:9", "1", attributes, **lms)


def test_a_name_canvas_does_not_hold_is_a_config_error_listing_the_allowed_ones(tmp_path):
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, {"timezone": "timezone"})
    message = str(caught.value)
    assert "key 'mapping.attributes.timezone'" in message
    assert "time_zone, locale, authentication_provider_id (docs/canvas.md)" in message
    with pytest.raises(ConfigError, match=r"mapping\.attributes\.short_name'.*display_name"):
        _load(tmp_path, {"short_name": "first_name"})
    with pytest.raises(ConfigError, match=r"integration_id'.*employee_number"):
        _load(tmp_path, {"integration_id": "employee_id"})
    with pytest.raises(ConfigError, match=r"lms\.authentication_provider_id already sets"):
        _load(tmp_path, {"authentication_provider_id": '"saml"'},
              authentication_provider_id="saml")


def test_the_canvas_fields_are_accepted_where_the_connector_writes_them(tmp_path):
    config = _load(tmp_path, {**ATTRIBUTES, "integration_id": "employee_id"},
                   employee_number_field="none")
    assert config.lms.mapped_attributes == ("time_zone", "locale",
                                            "authentication_provider_id", "integration_id")


# -- the sandbox answers as Canvas does (docs/canvas.md §7.5) -------------------------------


def test_the_sandbox_shows_zone_and_locale_only_where_canvas_does(lms):
    made = lms.data.add("Ada Novak", "ada@acme.example", email="ada@acme.example")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    base = f"{lms.base_url}/api/v1"
    shown = httpx.get(f"{base}/users/{made['id']}", headers=auth).json()
    assert (shown["locale"], shown["email"], "time_zone" in shown) == (
        None, "ada@acme.example", False)  # api_show_includes: no time zone
    listed = httpx.get(f"{base}/accounts/{lms.account_id}/users", headers=auth).json()
    assert "email" not in listed[0] and "time_zone" not in listed[0] \
        and "locale" not in listed[0]
    for i in range(5):  # a second page, whose link must keep both include[] values
        lms.data.add(f"Bo Novak{i}", f"bo{i}@acme.example", email=f"bo{i}@acme.example")
    first = httpx.get(f"{base}/accounts/{lms.account_id}/users", headers=auth,
                      params=[("include[]", "email"), ("include[]", "time_zone")])
    following = httpx.get(first.links["next"]["url"], headers=auth).json()
    assert all(u["time_zone"] == DEFAULT_TIME_ZONE and u["email"] for u in following)
    put = httpx.put(f"{base}/users/{made['id']}", headers=auth,
                    data={"user[time_zone]": "Europe/Oslo", "user[locale]": "nb"}).json()
    assert (put["time_zone"], put["locale"]) == ("Europe/Oslo", "nb")
    profile = httpx.get(f"{base}/users/{made['id']}/profile", headers=auth).json()
    assert (profile["time_zone"], profile["locale"]) == ("Europe/Oslo", "nb")
    refused = httpx.put(f"{base}/users/{made['id']}", headers=auth,
                        data={"user[locale]": "not a locale"})
    assert refused.status_code == 400 and "locale" in refused.json()["errors"]
    (login,) = lms.data.logins_of(made["id"])
    path = f"{base}/accounts/{lms.account_id}/logins/{login['id']}"
    by_type = httpx.put(path, headers=auth, data={"login[authentication_provider_id]": "ldap"})
    assert (by_type.json()["authentication_provider_id"],
            by_type.json()["authentication_provider_type"]) == (8, "ldap")
    unknown = httpx.put(path, headers=auth, data={"login[authentication_provider_id]": "cas"})
    empty = httpx.put(path, headers=auth, data={"login[authentication_provider_id]": ""})
    assert unknown.status_code == empty.status_code == 404


def test_an_unknown_provider_is_a_mapping_error_not_a_vanished_account(lms, sleeper, tmp_path):
    csv_path = World.generate(1).write(tmp_path / "employees.csv")
    config = _config(tmp_path, csv_path, lms.base_url, lms.account_id,
                     {"authentication_provider_id": '"cas"'})
    made = lms.data.add("Ada Novak", "ada@acme.example", sis_user_id="E1")

    async def edit():
        async with CanvasTarget(config.lms, sleep=sleeper) as target:
            await target.update(str(made["id"]), {"authentication_provider_id": "cas"})

    with pytest.raises(ConnectorError) as caught:
        asyncio.run(edit())
    assert caught.value.error_class is ErrorClass.mapping
    assert 'authentication_provider_id "cas"' in str(caught.value)


def test_a_mapped_zone_alone_is_read_from_the_listing_without_a_call_per_user(
        lms, sleeper, tmp_path):
    org = Org(lms, sleeper, tmp_path, size=5, attributes={"time_zone": "timezone"})
    org.run()
    lms.requests.clear()
    again = org.run()
    assert again.counts.get("planned") == {}
    assert not [p for _m, p, _q in lms.requests if p.endswith("/profile")]
    listings = [q for m, p, q in lms.requests if p.endswith(f"/accounts/{lms.account_id}/users")]
    assert listings and all("include%5B%5D=time_zone" in q for q in listings)
