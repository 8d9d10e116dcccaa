"""Moodle users in batches against the Moodle sandbox: many users per
core_user_create_users / core_user_update_users call, a refused (all-or-nothing) batch
split until only the users it was refused for fail, and every batch read back in bulk
with core_user_get_users_by_field rather than trusted."""

from __future__ import annotations

import asyncio
import math
import os
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rostersync.sandbox.moodle import MoodleSandbox
from rostersync.sandbox.world import COLUMNS
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import config_from_dict
from rostersync.sync.engine import Engine
from tests.support import World

TOKEN = "0123456789abcdef0123456789abcdef"
TOKEN_ENV = "ROSTERSYNC_TEST_MOODLE_TOKEN"
PROFILE = ("jobtitle", "employeenumber", "managerid")
FIELDS = {"title": "profile_field_jobtitle", "employee_number": "profile_field_employeenumber",
          "manager_key": "profile_field_managerid"}
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def lms():
    os.environ[TOKEN_ENV] = TOKEN
    with MoodleSandbox(token=TOKEN, profile_fields=PROFILE) as server:
        yield server


def _engine(tmp_path: Path, lms: MoodleSandbox, people: int, batch: str = "batch_size = 10"
            ) -> tuple[Engine, World]:
    world = World.generate(people)
    csv_path = world.write(tmp_path / "employees.csv")
    lines = ["[database]", f'path = "{tmp_path / "rostersync.db"}"', "",
             "[hris]", 'type = "csv"', f'path = "{csv_path}"', "", "[hris.columns]",
             *[f'{k} = "{v}"' for k, v in COLUMNS.items()], "",
             "[lms]", 'type = "moodle"', f'base_url = "{lms.base_url}"',
             f'token_env = "{TOKEN_ENV}"', 'auth = "oauth2"', batch, "",
             "[lms.fields]", *[f'{k} = "{v}"' for k, v in FIELDS.items()], "",
             "[guards]", "mass_deactivation_min = 1000", ""]
    path = tmp_path / "rostersync.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    config = config_from_dict(tomllib.loads(path.read_text()), path)
    return Engine(config, Store(config.database.path), clock=FrozenClock(NOW)), world


def _sync(engine: Engine):
    return asyncio.run(engine.sync("full"))


def _calls(lms: MoodleSandbox, function: str) -> int:
    return lms.function_calls().count(function)


def _ops(engine: Engine) -> dict[str, dict]:
    return {r["employee_id"]: r for r in engine.store.rows("SELECT * FROM ops ORDER BY id")}


def _assert_matches_hr(lms: MoodleSandbox, world: World, *, but: set[str] = frozenset()):
    keys = [k for k in world.rows if k not in but]
    idnumbers = [u["idnumber"] for u in lms.site.users.values() if u["idnumber"]]
    assert len(idnumbers) == len(set(idnumbers)), "duplicate accounts"
    for key in keys:
        user = lms.user(key)
        assert user is not None, key
        row = world.rows[key]
        assert (user["firstname"], user["lastname"], user["email"]) == (
            row["First Name"], row["Last Name"], row["Work Email"].lower())
        fields = {f["shortname"]: f["value"] for f in user.get("customfields", [])}
        assert fields["jobtitle"] == row["Job Title"]
        assert fields.get("managerid", "") == row["Manager ID"]


@pytest.mark.parametrize(("people", "calls"), [(9, 1), (10, 1), (11, 2), (25, 3)])
def test_a_first_sync_creates_batch_size_users_per_call(tmp_path, lms, people, calls):
    engine, world = _engine(tmp_path, lms, people)
    report = _sync(engine)
    assert report.status == "succeeded", report.message
    assert _calls(lms, "core_user_create_users") == calls
    # Read back in bulk: one lookup per batch, not one per user.
    assert _calls(lms, "core_user_get_users_by_field") == calls
    _assert_matches_hr(lms, world)
    ops = _ops(engine)
    assert {o["status"] for o in ops.values()} == {"succeeded"} and len(ops) == people
    assert all(o["lms_id"] for o in ops.values())
    again = _sync(engine)
    assert again.counts["planned"] == {}, again.counts


@pytest.mark.parametrize("bad", [["E00007"], ["E00003", "E00018"]])
def test_a_refused_batch_is_split_so_only_the_bad_users_fail(tmp_path, lms, bad):
    engine, world = _engine(tmp_path, lms, 20, "batch_size = 20")
    for key in bad:
        lms.faults.refuse(key, exception="invalid_parameter_exception",
                          errorcode="invalidparameter",
                          message="Invalid parameter value detected")
    _sync(engine)
    ops = _ops(engine)
    for key in bad:
        assert ops[key]["status"] in ("failed", "dead"), ops[key]
        assert ops[key]["error_class"] == "data"
        assert lms.user(key) is None
    assert {o["status"] for k, o in ops.items() if k not in bad} == {"succeeded"}
    _assert_matches_hr(lms, world, but=set(bad))
    # Halving finds each bad user in about log2(20) calls, far fewer than one per user.
    creates = _calls(lms, "core_user_create_users")
    assert creates <= 1 + 2 * len(bad) * math.ceil(math.log2(20)) + len(bad)
    assert creates < 20


def test_updates_and_suspensions_go_in_batches_and_a_warning_fails_one_user(tmp_path, lms):
    engine, world = _engine(tmp_path, lms, 24)
    assert _sync(engine).status == "succeeded"
    for i in range(3, 13):
        world.rows[f"E{i:05d}"]["Job Title"] = "Principal"
    for i in range(20, 24):
        world.rows[f"E{i:05d}"].update({"Status": "Terminated",
                                        "Termination Date": "2026-01-15"})
    # Someone else holds the address E00005 moves to: Moodle skips that user with a
    # warning and applies the rest of the call.
    world.rows["E00005"]["Work Email"] = "taken@acme.example"
    world.write(Path(engine.config.hris.path))
    lms.site.create_users({"users": [{"username": "taken", "firstname": "T", "lastname": "K",
                                      "email": "taken@acme.example", "password": "x"}]})
    before = _calls(lms, "core_user_update_users")
    _sync(engine)
    updates = _calls(lms, "core_user_update_users") - before
    assert updates <= 4  # 14 changes in batches of 10 (the warned one is sent once more)
    ops = [o for o in engine.store.rows("SELECT * FROM ops WHERE kind != 'create'")]
    by_key = {o["employee_id"]: o for o in ops}
    assert by_key["E00005"]["status"] in ("failed", "dead")
    assert "taken@acme.example" in by_key["E00005"]["last_error"]
    assert {o["status"] for k, o in by_key.items() if k != "E00005"} == {"succeeded"}
    for i in range(20, 24):
        assert lms.user(f"E{i:05d}")["suspended"] is True
    titles = {f["shortname"]: f["value"] for f in lms.user("E00006")["customfields"]}
    assert titles["jobtitle"] == "Principal"


def test_an_update_moodle_ignores_is_caught_by_the_bulk_read_back(tmp_path, lms):
    engine, world = _engine(tmp_path, lms, 12)
    assert _sync(engine).status == "succeeded"
    for i in range(2, 8):
        world.rows[f"E{i:05d}"]["Department"] = "Finance"
    world.write(Path(engine.config.hris.path))
    lms.site.ignored_fields.add("department")  # accepted, silently not applied
    _sync(engine)
    ops = [o for o in engine.store.rows("SELECT * FROM ops WHERE kind = 'update'")]
    assert ops and all(o["status"] in ("failed", "dead") for o in ops)
    assert all("did not take effect" in o["last_error"] for o in ops)


def test_an_untrustworthy_create_answer_is_read_before_anything_is_sent_again(tmp_path, lms):
    engine, world = _engine(tmp_path, lms, 8)
    # An answer that names nobody: what the call did is unknown to the client.
    lms.faults.replace_next("core_user_create_users", [])
    first = _sync(engine)
    assert first.counts["applied"].get("failed") == 8
    assert {o["error_class"] for o in _ops(engine).values()} == {"transient"}
    engine.clock.advance(hours=2)
    lookups = _calls(lms, "core_user_get_users_by_field")
    report = asyncio.run(engine.apply_due(trigger="test"))
    assert report.counts["applied"].get("succeeded") == 8
    # The retries looked each account up (by idnumber) before creating it again.
    assert _calls(lms, "core_user_get_users_by_field") - lookups >= 8
    _assert_matches_hr(lms, world)


def test_the_sandbox_refuses_a_call_whose_second_user_takes_the_firsts_email(lms):
    from rostersync.sandbox.moodle_data import WsError

    def user(name: str, email: str, idnumber: str) -> dict:
        return {"username": name, "firstname": "A", "lastname": "B", "email": email,
                "idnumber": idnumber, "password": "x"}

    before = len(lms.site.users)
    for clash in ([user("a1", "same@x.example", "I1"), user("a2", "SAME@x.example", "I2")],
                  [user("b1", "b1@x.example", "J1"), user("b1", "b2@x.example", "J2")]):
        with pytest.raises(WsError) as refused:
            lms.site.create_users({"users": clash})
        assert "already exists" in refused.value.debuginfo
    assert len(lms.site.users) == before  # all or nothing
    # A Moodle 4.3 site keeps no idnumber unique: two users may share one.
    lms.site.create_users({"users": [user("c1", "c1@x.example", "K1"),
                                     user("c2", "c2@x.example", "K1")]})
    assert len(lms.site.users) == before + 2


def test_the_sandbox_costs_a_call_its_bootstrap_plus_each_user():
    from rostersync.sandbox.moodle import Cost

    cost = Cost(call=0.031, user_written=0.0117, user_read=0.001)
    users = {"users": [{"username": "u"}] * 100}
    assert cost.of("core_user_create_users", users) == pytest.approx(0.031 + 1.17)
    assert cost.of("core_user_update_users", {"users": []}) == pytest.approx(0.031)
    assert cost.of("core_user_get_users_by_field",
                   {"field": "id", "values": [1, 2, 3]}) == pytest.approx(0.034)
    assert cost.of("core_webservice_get_site_info", {}) == pytest.approx(0.031)
    assert Cost().of("core_user_create_users", users) == 0
