"""SCIM Bulk (RFC 7644 §3.7) against a real scim2-server: creates, updates and
deactivations packed into /Bulk requests within the advertised limits, bulkId references
between a manager and a report created in the same request, each operation's own status
mapped back to its own outbox row, failOnErrors, and single requests where bulk is absent,
refused or turned off."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from rostersync.console.cli import main
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.sync.bulk import BatchItem
from rostersync.sync.connectors.scim_bulk import (
    bulk_operation,
    bulk_request,
    bulk_request_reference,
)
from rostersync.sync.models import Account
from tests.scim_fixtures import SCIM_TOKEN
from tests.support import ENTERPRISE, TOKEN_ENV, World, by_external_id, lms_users, write_config

SCHEMA = ["urn:ietf:params:scim:schemas:core:2.0:User"]


class Recorder:
    """Sees every request (body included) and may answer some instead of the server."""

    wants_body = True

    def __init__(self, max_operations: int | None = None, bulk: bool = True,
                 bulk_status: int | None = None) -> None:
        self.max_operations, self.bulk, self.bulk_status = max_operations, bulk, bulk_status
        self.requests: list[tuple[str, str, bytes]] = []
        self._lock = threading.Lock()
        self.spc: dict[str, Any] | None = None

    def __call__(self, method: str, path: str, body: bytes = b"") -> Any:
        with self._lock:
            self.requests.append((method, path, body))
        if path.endswith("/ServiceProviderConfig") and self.spc is not None:
            spc = json.loads(json.dumps(self.spc))
            spc["bulk"]["supported"] = self.bulk
            if self.max_operations is not None:
                spc["bulk"]["maxOperations"] = self.max_operations
            return 200, {"Content-Type": "application/scim+json"}, json.dumps(spc).encode()
        if path.endswith("/Bulk") and self.bulk_status is not None:
            return self.bulk_status, {"Content-Type": "application/scim+json"}, json.dumps({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": str(self.bulk_status), "detail": "bulk is not offered"}).encode()
        return None

    def count(self, method: str, suffix: str) -> int:
        return sum(1 for m, p, _b in self.requests if m == method and p.endswith(suffix))

    def bulk_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(b) for m, p, b in self.requests if m == "POST" and p.endswith("/Bulk")]


@pytest.fixture
def lms(tmp_path):
    recorder = Recorder()
    with ScimSandbox(token=SCIM_TOKEN, fault=recorder) as server:
        import httpx
        recorder.spc = httpx.get(f"{server.base_url}/ServiceProviderConfig").json()
        server.recorder = recorder
        yield server


def _setup(tmp_path: Path, lms: ScimSandbox, people: int, lms_extra: str = "") -> Path:
    os.environ[TOKEN_ENV] = SCIM_TOKEN
    world = World.generate(people)
    csv_path = world.write(tmp_path / "employees.csv")
    config = write_config(tmp_path, lms.base_url, csv_path,
                          guards={"mass_deactivation_min": 1000})
    if lms_extra:
        config.write_text(config.read_text().replace("[lms]\n", f"[lms]\n{lms_extra}\n"))
    return config


def _sync(config: Path, capsys) -> tuple[int, dict]:
    code = main(["sync", "--config", str(config), "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def _users(lms: ScimSandbox) -> dict[str, dict]:
    found = by_external_id(lms_users(lms.base_url, SCIM_TOKEN))
    assert not {k for k, v in found.items() if len(v) > 1}, "duplicate accounts"
    return {k: v[0] for k, v in found.items()}


def _ops(folder: Path) -> list[sqlite3.Row]:
    db = sqlite3.connect(folder / "rostersync.db")
    db.row_factory = sqlite3.Row
    return db.execute("SELECT o.*, (SELECT count(*) FROM op_attempts a WHERE a.op_id = o.id) "
                      "AS logged FROM ops o ORDER BY id").fetchall()


# -- the request itself ------------------------------------------------------------------


def test_the_bulk_request_equals_the_scim2_models_serialisation():
    manager = Account(external_key="E1", user_name="boss@acme.example", given_name="Bo",
                      family_name="Ss", display_name="Bo Ss", email="boss@acme.example",
                      title="Head", department="Sales", employee_number="1")
    report = Account(external_key="E2", user_name="rep@acme.example", given_name="Re",
                     family_name="P", email="rep@acme.example")
    items = [BatchItem("1", "create", account=manager),
             BatchItem("2", "create", account=report, manager_ref="1"),
             BatchItem("3", "update", lms_id="abc/def", changes={"title": "Lead",
                                                                  "active": False},
                       version='W/"3"')]
    operations = [bulk_operation(item) for item in items]
    for fail_on_errors in (None, 1):
        assert bulk_request(operations, fail_on_errors) == \
            bulk_request_reference(operations, fail_on_errors)
    assert operations[1]["data"][ENTERPRISE]["manager"] == {"value": "bulkId:1"}
    assert operations[2]["path"] == "/Users/abc%2Fdef"  # an id never reaches another path


# -- the engine over /Bulk ---------------------------------------------------------------


def test_first_sync_goes_in_bulk_with_managers_referenced_by_bulk_id(tmp_path, lms, capsys):
    config = _setup(tmp_path, lms, 60)
    code, report = _sync(config, capsys)
    assert code == 0, report
    recorder = lms.recorder
    assert recorder.count("POST", "/Users") == 0
    [body] = recorder.bulk_bodies()  # 60 creates, well under maxOperations 1000
    assert len(body["Operations"]) == 60
    references = [op for op in body["Operations"]
                  if str(op["data"].get(ENTERPRISE, {}).get("manager", {}).get("value", ""))
                  .startswith("bulkId:")]
    assert len(references) == 59  # everyone but the top reports to someone created here
    users = _users(lms)
    assert len(users) == 60
    for i in (2, 17, 60):
        person = World.person(i)
        manager = users[person["Manager ID"]]
        assert users[person["Employee ID"]][ENTERPRISE]["manager"]["value"] == manager["id"]
    # One row per operation, one logged attempt each, all succeeded: the history and
    # the console's progress stay per operation.
    ops = _ops(tmp_path)
    assert len(ops) == 60 and {op["status"] for op in ops} == {"succeeded"}
    assert {op["logged"] for op in ops} == {1} and all(op["lms_id"] for op in ops)
    # Nothing left to do: the accounts recorded from the bulk answer match the LMS.
    assert _sync(config, capsys)[1]["counts"].get("planned") == {}


@pytest.mark.parametrize(("people", "requests"), [(9, 1), (10, 1), (11, 2)])
def test_batches_hold_at_most_max_operations(tmp_path, lms, capsys, people, requests):
    lms.recorder.max_operations = 10
    config = _setup(tmp_path, lms, people)
    assert _sync(config, capsys)[0] == 0
    sizes = [len(b["Operations"]) for b in lms.recorder.bulk_bodies()]
    assert len(sizes) == requests and max(sizes) <= 10 and sum(sizes) == people
    assert len(_users(lms)) == people


def test_updates_and_deactivations_go_in_bulk(tmp_path, lms, capsys):
    config = _setup(tmp_path, lms, 30)
    assert _sync(config, capsys)[0] == 0
    world = World.generate(30)
    for i in range(5, 15):
        world.rows[f"E{i:05d}"]["Job Title"] = "Principal"
    for i in range(20, 25):
        world.rows[f"E{i:05d}"].update({"Status": "Terminated",
                                        "Termination Date": "2026-01-15"})
    world.write(tmp_path / "employees.csv")
    before = len(lms.recorder.bulk_bodies())
    code, report = _sync(config, capsys)
    assert code == 0, report
    bodies = lms.recorder.bulk_bodies()[before:]
    assert lms.recorder.count("PATCH", "/Users") == 0 or all(
        "/Users/" not in p for m, p, _b in lms.recorder.requests if m == "PATCH")
    assert sum(len(b["Operations"]) for b in bodies) == 15
    users = _users(lms)
    assert {users[f"E{i:05d}"]["title"] for i in range(5, 15)} == {"Principal"}
    assert not any(users[f"E{i:05d}"]["active"] for i in range(20, 25))
    assert all(users[f"E{i:05d}"]["active"] for i in range(25, 31))


def _plan_then_take(config: Path, lms: ScimSandbox, *people: int) -> Any:
    """Plan the first sync, then let someone else take these people's userNames in the
    LMS before it is applied (so that the LMS, not the plan, refuses them)."""
    import asyncio

    import httpx

    from rostersync.storage.db import Store
    from rostersync.sync.config import load_config
    from rostersync.sync.engine import Engine

    loaded = load_config(config)
    engine = Engine(loaded, Store(loaded.database.path))
    asyncio.run(engine.sync("full", apply=False))
    for i in people:
        httpx.post(f"{lms.base_url}/Users", headers={"Authorization": f"Bearer {SCIM_TOKEN}"},
                   json={"schemas": SCHEMA, "userName": World.person(i)["Work Email"],
                         "externalId": f"OTHER-{i}"}).raise_for_status()
    return asyncio.run(engine.apply_due(trigger="test"))


def test_a_409_for_one_person_fails_that_person_only(tmp_path, lms, capsys):
    config = _setup(tmp_path, lms, 20)
    report = _plan_then_take(config, lms, 7)
    assert report.counts["applied"].get("succeeded") == 19
    [body] = lms.recorder.bulk_bodies()
    assert len(body["Operations"]) == 20  # one request, and only E00007 failed in it
    ops = {op["employee_id"]: op for op in _ops(tmp_path)}
    assert ops["E00007"]["status"] in ("failed", "dead")
    assert ops["E00007"]["error_class"] == "conflict"
    assert "OTHER-7" in ops["E00007"]["last_error"]
    assert {op["status"] for k, op in ops.items() if k != "E00007"} == {"succeeded"}
    users = _users(lms)
    assert "E00007" not in users and len(users) == 20  # 19 created + the one holding it


@pytest.mark.parametrize(("limit", "failures", "stopped"), [(2, 1, False), (2, 2, True),
                                                            (2, 3, True)])
def test_fail_on_errors_is_honoured(tmp_path, lms, capsys, limit, failures, stopped):
    config = _setup(tmp_path, lms, 30, f"bulk_fail_on_errors = {limit}")
    taken = [28, 29, 30][:failures]  # nobody reports to them
    _plan_then_take(config, lms, *taken)
    first = lms.recorder.bulk_bodies()[0]
    assert first["failOnErrors"] == limit
    ops = {op["employee_id"]: op for op in _ops(tmp_path)}
    not_run = {k for k, op in ops.items() if "was not run" in (op["last_error"] or "")}
    assert bool(not_run) == stopped
    for i in taken[:limit]:
        assert ops[f"E{i:05d}"]["error_class"] == "conflict"
    # What the server did not run is sent again (it never reached the LMS) and is done.
    main(["ops", "retry", "--all-failed", "--config", str(config), "--json"])
    capsys.readouterr()
    users = _users(lms)
    assert all(f"E{i:05d}" in users for i in range(1, 31) if i not in taken)
    assert not any(f"E{i:05d}" in users for i in taken)


@pytest.mark.parametrize("how", ["off", "absent", "refused"])
def test_single_requests_where_bulk_is_off_absent_or_refused(tmp_path, lms, capsys, how):
    if how == "absent":
        lms.recorder.bulk = False
    if how == "refused":
        lms.recorder.bulk_status = 501
    config = _setup(tmp_path, lms, 15, 'bulk = "off"' if how == "off" else "")
    code, report = _sync(config, capsys)
    assert code == 0, report
    assert lms.recorder.count("POST", "/Users") == 15
    assert len(lms.recorder.bulk_bodies()) == (1 if how == "refused" else 0)
    assert len(_users(lms)) == 15
    ops = _ops(tmp_path)
    assert {op["status"] for op in ops} == {"succeeded"} and {op["attempts"] for op in ops} == {1}


def test_a_lost_bulk_answer_is_read_before_anything_is_sent_again(tmp_path, capsys):
    from rostersync.sandbox.faults import FaultPlan
    faults = FaultPlan()
    faults.reset_connections(1, method="POST", after=True)  # the LMS acts; the answer is lost
    with ScimSandbox(token=SCIM_TOKEN, fault=faults) as server:
        config = _setup(tmp_path, server, 25)
        assert _sync(config, capsys)[0] == 1
        assert len(_users(server)) == 25  # the request was carried out
        main(["ops", "retry", "--all-failed", "--config", str(config), "--json"])
        capsys.readouterr()
        assert _sync(config, capsys)[0] == 0
        assert len(_users(server)) == 25  # read first: no duplicate
        ops = _ops(tmp_path)
        assert {op["status"] for op in ops} == {"succeeded"}


def test_a_too_large_request_is_split(tmp_path, capsys):
    seen: list[int] = []

    def too_large_once(method: str, path: str, body: bytes = b"") -> Any:
        if path.endswith("/Bulk"):
            seen.append(len(json.loads(body)["Operations"]))
            if len(seen) == 1:
                return 413, {"Content-Type": "application/scim+json"}, json.dumps({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                    "status": "413", "detail": "too large"}).encode()
        return None

    too_large_once.wants_body = True
    with ScimSandbox(token=SCIM_TOKEN, fault=too_large_once) as server:
        config = _setup(tmp_path, server, 20)
        code, report = _sync(config, capsys)
        assert code == 0, report
        assert seen == [20, 10, 10]
        assert len(_users(server)) == 20


def test_every_request_stays_within_max_payload_size(tmp_path, lms, capsys):
    spc = lms.recorder.spc
    spc["bulk"]["maxPayloadSize"] = 4000  # a few operations per request
    config = _setup(tmp_path, lms, 30)
    assert _sync(config, capsys)[0] == 0
    sizes = [len(b) for m, p, b in lms.recorder.requests if p.endswith("/Bulk")]
    assert len(sizes) > 3 and max(sizes) <= 4000
    assert math.fsum(len(b["Operations"]) for b in lms.recorder.bulk_bodies()) == 30
    assert len(_users(lms)) == 30


def test_the_lms_refuses_the_same_records_inside_a_bulk_request(tmp_path, capsys):
    """The sandbox's fault plan (a login the LMS holds elsewhere, an update it rejects)
    applies to each operation of a /Bulk request as to single requests, with its own
    status: the demo's and the console tests' stories hold with bulk on."""
    from rostersync.sandbox.faults import FaultPlan

    plan = FaultPlan()
    seen: list[tuple[str, str]] = []
    with ScimSandbox(token=SCIM_TOKEN, fault=plan,
                     on_request=lambda m, p: seen.append((m, p))) as lms:
        config = _setup(tmp_path, lms, 12)
        world = World.generate(12)
        plan.refuse_create_of(world.rows["E00004"]["Work Email"])
        code, report = _sync(config, capsys)
        assert code == 1 and report["counts"]["applied"]["succeeded"] == 11
        ops = {op["employee_id"]: op for op in _ops(tmp_path)}
        assert ops["E00004"]["error_class"] == "conflict"
        assert set(_users(lms)) == {k for k in world.rows if k != "E00004"}

        target = _users(lms)["E00006"]["id"]
        plan.refuse_updates_of(target)
        for key in ("E00006", "E00007"):
            world.rows[key]["Job Title"] = "Lead"
        world.write(tmp_path / "employees.csv")
        _sync(config, capsys)
        ops = {op["employee_id"]: op for op in _ops(tmp_path) if op["kind"] == "update"}
        assert ops["E00006"]["status"] in ("failed", "dead")
        assert "value rejected by the LMS" in ops["E00006"]["last_error"]
        assert ops["E00007"]["status"] == "succeeded"
        users = _users(lms)
        assert users["E00007"]["title"] == "Lead" and users["E00006"]["title"] != "Lead"
        assert plan.faults_served >= 2
        writes = [p for m, p in seen if m in ("PATCH", "POST") and "/Users" in p]
        assert writes == []  # every write went in /Bulk


def test_a_refused_operation_stays_refused_when_the_bulk_answer_is_lost(tmp_path, capsys):
    """The LMS carries out a /Bulk request whose answer the network then loses: the
    operation it refused inside it is still refused (the sandbox must not let a lost
    answer turn a refusal into an account), and every other person exists once."""
    from rostersync.sandbox.faults import FaultPlan

    plan = FaultPlan()
    with ScimSandbox(token=SCIM_TOKEN, fault=plan) as lms:
        config = _setup(tmp_path, lms, 12)
        world = World.generate(12)
        plan.refuse_create_of(world.rows["E00004"]["Work Email"])
        plan.reset_connections(1, method="POST", after=True)
        _sync(config, capsys)  # the lost answer: an outcome to read before anything else
        assert set(_users(lms)) == {k for k in world.rows if k != "E00004"}
        assert main(["ops", "retry", "--all-failed", "--config", str(config)]) in (0, 1)
        ops = {op["employee_id"]: op for op in _ops(tmp_path)}
        assert ops["E00004"]["status"] in ("failed", "dead")
        assert ops["E00004"]["error_class"] == "conflict"  # read, then refused again
        assert set(_users(lms)) == {k for k in world.rows if k != "E00004"}
