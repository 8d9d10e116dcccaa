"""Attribute mapping round trip against a real scim2-server on 127.0.0.1 that declares a
custom User extension (country) beside the enterprise one (costCenter): the accounts
carry the computed values, a second run plans nothing, an LMS-side edit of a
"when_empty" attribute stands, a login collision is drift and not a failed operation,
and a changed mapping is previewed and held."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest
from scim2_models import Schema, SchemaExtension, ScimProvider
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

from rostersync.console.cli import main
from rostersync.console.doctor import run_doctor
from rostersync.sandbox.scim_server import BearerTokenApp, ScimSandbox
from rostersync.storage import ops as op_store
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from tests.scim_fixtures import SCIM_TOKEN
from tests.support import ENTERPRISE, World, by_external_id, lms_users, write_config

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
ACME = "urn:acme:params:scim:schemas:extension:lms:2.0:User"
COUNTRY = f"{ACME}:country"
COST = f"{ENTERPRISE}:costCenter"

_SCHEMA = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": ACME,
    "name": "AcmeLmsUser", "description": "Acme's LMS attributes",
    "attributes": [{"name": "country", "type": "string", "multiValued": False,
                    "required": False, "caseExact": False, "mutability": "readWrite",
                    "returned": "default", "uniqueness": "none"}],
}


def _extended_provider() -> ScimProvider:
    """scim2-server's own schemas and resource types, with the Acme extension declared on
    User (scim2-models builds a server's models from what /Schemas and /ResourceTypes
    say, so a custom extension is one more schema and one more schemaExtensions entry)."""
    types = load_default_resource_types()
    user = types["User"]
    user.schema_extensions = [*(user.schema_extensions or []),
                              SchemaExtension(schema_=ACME, required=False)]
    return ScimProvider.from_discovery(
        [*load_default_schemas().values(), Schema.model_validate(_SCHEMA)], types.values(),
        config=load_default_service_provider_config())


class _ExtendedApp(BearerTokenApp):
    def __init__(self, token: str) -> None:
        ASGIApplication.__init__(self, AsyncInMemoryStorage(), _extended_provider())
        self._expected = f"Bearer {token}".encode()


@pytest.fixture
def acme_lms():
    server = ScimSandbox(token=SCIM_TOKEN)
    server.app = _ExtendedApp(SCIM_TOKEN)
    with server:
        yield server


MAPPING = f"""
[mapping.tables.countries]
"Berlin" = "DE"
"Paris" = "FR"

[mapping.tables.cost_centres]
"Sales" = "CC-100"
"Engineering" = "CC-200"

[mapping.attributes]
"{COUNTRY}" = 'lookup_strict("countries", location)'
"{COST}" = 'lookup("cost_centres", department)'
title = {{ expr = "job_title", apply = "when_empty" }}
nickName = {{ expr = "first_name", apply = "create" }}
"""
LOGINS = ("user_name = ['lower(left(normalize_diacritics(first_name), 1) + "
          "normalize_diacritics(last_name))', 'lower(normalize_diacritics(first_name) + \".\" "
          "+ normalize_diacritics(last_name))']\n")


class Lms:
    def __init__(self, tmp_path, server, world: World, guards=None) -> None:
        self.tmp, self.server, self.world = tmp_path, server, world
        self.csv = world.write(tmp_path / "employees.csv")
        path = write_config(tmp_path, server.base_url, self.csv, guards=guards or {})
        text = path.read_text(encoding="utf-8").replace(
            '[mapping]\nstrict = ["department"]', '[mapping]\nstrict = ["department"]\n'
            + LOGINS)
        path.write_text(text + MAPPING, encoding="utf-8")
        self.path = path
        self.reload()

    def reload(self) -> None:
        self.config = load_config(self.path)
        self.clock = FrozenClock(START)
        self.engine = Engine(self.config, Store(self.config.database.path), clock=self.clock)

    def run(self, **kw):
        return asyncio.run(self.engine.sync("full", **kw))

    def users(self) -> dict[str, dict]:
        return {k: v[0] for k, v in by_external_id(
            lms_users(self.server.base_url, SCIM_TOKEN)).items()}

    def patch(self, lms_id: str, operations: list[dict]) -> None:
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": operations}
        httpx.patch(f"{self.server.base_url}/Users/{lms_id}", json=body,
                    headers={"Authorization": f"Bearer {SCIM_TOKEN}"}).raise_for_status()


def _world(n: int) -> World:
    world = World.generate(n)
    for i, key in enumerate(sorted(world.rows)):
        row = world.rows[key]
        row["Location"] = "Paris" if i % 3 == 0 else "Berlin"
        row["Department"] = "Sales" if i % 2 else "Engineering"
    return world


def test_computed_attributes_reach_the_lms_and_a_second_run_plans_nothing(
        tmp_path, acme_lms, lms_token):
    lms = Lms(tmp_path, acme_lms, _world(12))
    first = lms.run()
    assert first.exit_code == 0, first.reasons
    users = lms.users()
    assert len(users) == 12
    for key, row in lms.world.rows.items():
        user = users[key]
        assert user[ACME]["country"] == {"Paris": "FR", "Berlin": "DE"}[row["Location"]]
        assert user[ENTERPRISE]["costCenter"] == {"Sales": "CC-100",
                                                   "Engineering": "CC-200"}[row["Department"]]
        assert user["title"] == row["Job Title"]
    logins = sorted(u["userName"] for u in users.values())
    assert len(set(logins)) == 12  # generated, and unique
    again = lms.run()
    assert again.counts["planned"] == {} and again.counts["drift"] == {}


def test_generated_logins_collide_into_the_next_candidate_then_into_drift(
        tmp_path, acme_lms, lms_token):
    world = _world(3)
    for key in ("E00002", "E00003"):  # three people named alike
        world.rows[key].update({"First Name": world.rows["E00001"]["First Name"],
                                "Last Name": world.rows["E00001"]["Last Name"]})
    lms = Lms(tmp_path, acme_lms, world)
    first, last = world.rows["E00001"]["First Name"].lower(), \
        world.rows["E00001"]["Last Name"].lower()
    report = lms.run()
    users = lms.users()
    assert users["E00001"]["userName"] == f"{first[0]}{last}"
    assert users["E00002"]["userName"] == f"{first}.{last}"
    assert "E00003" not in users  # both candidates held: no create sent, no 409
    assert report.counts["drift"].get("login_taken") == 1
    assert report.counts.get("applied", {}).get("failed") is None
    store = Store(lms.config.database.path)
    (row,) = store.rows("SELECT * FROM drift WHERE resolved_at IS NULL AND kind = ?",
                        ("login_taken",))
    assert row["subject"] == "E00003" and row["owner"] == "IT"
    assert not op_store.open_ops_for(store, ["E00003"]).get("E00003")
    # A renamed colleague keeps the login assigned at creation.
    lms.world.rows["E00001"]["Last Name"] = "Zed"
    lms.world.write(lms.csv)
    lms.run()
    assert lms.users()["E00001"]["userName"] == f"{first[0]}{last}"


def test_an_lms_edit_of_a_when_empty_attribute_stands(tmp_path, acme_lms, lms_token):
    lms = Lms(tmp_path, acme_lms, _world(4))
    lms.run()
    user = lms.users()["E00002"]
    lms.patch(user["id"], [{"op": "replace", "path": "title", "value": "Edited in LMS"},
                           {"op": "replace", "path": COUNTRY, "value": "XX"}])
    report = lms.run()
    users = lms.users()
    assert users["E00002"]["title"] == "Edited in LMS"  # when_empty: left alone
    restored = {"Paris": "FR", "Berlin": "DE"}[lms.world.rows["E00002"]["Location"]]
    assert users["E00002"][ACME]["country"] == restored  # always: HR's value restored
    assert report.counts["planned"] == {"update": 1}
    lms.patch(user["id"], [{"op": "remove", "path": "title"}])
    lms.run()
    assert lms.users()["E00002"]["title"] == lms.world.rows["E00002"]["Job Title"]
    # apply = "create": written once, an HR change later does not reach it
    first = lms.world.rows["E00002"]["First Name"]
    assert lms.users()["E00002"]["nickName"] == first
    lms.world.rows["E00002"]["First Name"] = "Renamed"
    lms.world.write(lms.csv)
    lms.run()
    user = lms.users()["E00002"]
    assert user["nickName"] == first and user["name"]["givenName"] == "Renamed"


def test_a_changed_mapping_is_previewed_and_held_beyond_the_limit(tmp_path, acme_lms,
                                                                   lms_token):
    lms = Lms(tmp_path, acme_lms, _world(12),
              guards={"mass_attribute_change_min": 3, "mass_attribute_change_percent": 0})
    lms.run()
    text = lms.path.read_text(encoding="utf-8")
    lms.path.write_text(text.replace('"Berlin" = "DE"', '"Berlin" = "DEU"'), encoding="utf-8")
    lms.reload()
    preview = lms.run(dry_run=True)
    berliners = sum(r["Location"] == "Berlin" for r in lms.world.rows.values())
    assert preview.counts["rewrites"] == {COUNTRY: berliners}
    real = lms.run()
    assert real.exit_code == 3  # held for approval
    assert any(r.startswith(f"mass attribute change: {COUNTRY} on {berliners} accounts")
               for r in real.reasons)
    assert all(u[ACME]["country"] in ("DE", "FR") for u in lms.users().values())


def test_hr_rewriting_many_titles_is_not_a_mapping_change(tmp_path, acme_lms, lms_token):
    """The attribute hold previews a changed config; a move in HR (every office at once)
    is HR's data and goes through (the feed gate guards the export itself)."""
    lms = Lms(tmp_path, acme_lms, _world(12),
              guards={"mass_attribute_change_min": 3, "mass_attribute_change_percent": 0})
    lms.run()
    for row in lms.world.rows.values():
        row["Location"] = "Paris"
    lms.world.write(lms.csv)
    report = lms.run()
    assert report.exit_code == 0, report.reasons
    assert {u[ACME]["country"] for u in lms.users().values()} == {"FR"}


def test_doctor_names_a_mapped_attribute_the_server_does_not_declare(
        tmp_path, acme_lms, lms_token, capsys):
    lms = Lms(tmp_path, acme_lms, _world(2))
    text = lms.path.read_text(encoding="utf-8")
    lms.path.write_text(text + '"urn:acme:params:scim:schemas:extension:lms:2.0:User:shoe" '
                        '= "location"\n', encoding="utf-8")
    args = argparse.Namespace(config=lms.path, db=None, json=True)
    code = run_doctor(args, load_config)
    out = capsys.readouterr().out
    assert code == 2
    assert f"does not declare {ACME}:shoe" in out


def test_mapping_test_explains_a_recorded_person_and_a_trial_expression(
        tmp_path, acme_lms, lms_token, capsys):
    lms = Lms(tmp_path, acme_lms, _world(3))
    lms.run()
    capsys.readouterr()
    base = ["--config", str(lms.path)]
    assert main(["mapping", "test", "E00002", "--json", *base]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["attribute"]: r for r in doc["attributes"]}
    row = lms.world.rows["E00002"]
    country = rows[COUNTRY]
    assert country["expression"] == 'lookup_strict("countries", location)'
    assert country["inputs"] == {"location": row["Location"]}
    assert country["result"] == country["lms"] == {"Paris": "FR", "Berlin": "DE"}[
        row["Location"]]
    assert rows["given_name"]["source"] == "default"
    assert rows["title"]["apply"] == "when_empty"
    assert doc["assigned_login"] == lms.users()["E00002"]["userName"]
    assert rows["user_name[0]"]["inputs"] == {"first_name": row["First Name"],
                                              "last_name": row["Last Name"]}

    trial = f'{COUNTRY}=lower(lookup("countries", location))'
    assert main(["mapping", "test", "E00002", "--expr", trial, *base]) == 0
    text = capsys.readouterr().out
    expected = {"Paris": "fr", "Berlin": "de"}[row["Location"]]
    assert f"{COUNTRY} [trial]" in text and f"result:     '{expected}'" in text

    assert main(["mapping", "test", "E00002", "--expr", "nickName=upper(first_name", *base]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rostersync: --expr nickName: column ") and err.count("\n") == 1
    assert main(["mapping", "test", "E09999", *base]) == 2
    assert "not known to rostersync" in capsys.readouterr().err
