"""Operator decisions on disputed and unlinked matches, honoured by the next run: driven
through `rostersync links` and the Engine against a real scim2-server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from rostersync.console.cli import main
from rostersync.storage import match_decisions as match_store
from rostersync.storage.db import Store
from rostersync.storage.store_factory import make_store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import load_config
from rostersync.sync.diff import MatchChoice, Policy, Subject, decide
from rostersync.sync.engine import Engine
from rostersync.sync.lifecycle import Lifecycle
from rostersync.sync.mapping import Mapped
from rostersync.sync.models import Account, DriftKind, OpKind, Status
from tests.support import World, lms_users, write_config

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SCHEMA = ["urn:ietf:params:scim:schemas:core:2.0:User"]


@pytest.fixture
def org(tmp_path, scim_server, lms_token):
    """40 people in HR; in the LMS, before the first run, two accounts that share
    E00008's e-mail (disputed) and one with E00007's userName (unlinked), none with an
    externalId."""
    world = World.generate(40)
    csv_path = world.write(tmp_path / "employees.csv")
    config_path = write_config(tmp_path, scim_server.base_url, csv_path)
    config = load_config(config_path)
    clock = FrozenClock(START)
    engine = Engine(config, make_store(config.database), clock=clock)
    email7, email8 = World.person(7)["Work Email"], World.person(8)["Work Email"]
    client = httpx.Client(base_url=scim_server.base_url,
                          headers={"Authorization": f"Bearer {lms_token}"})

    def post(user_name: str, email: str, **more) -> str:
        answer = client.post("/Users", json={"schemas": SCHEMA, "userName": user_name,
                                             "emails": [{"value": email}], **more})
        answer.raise_for_status()
        return answer.json()["id"]

    class Org:
        pass

    o = Org()
    o.engine, o.clock, o.store, o.client = engine, clock, engine.store, client
    o.email7, o.email8 = email7, email8
    o.legacy_a = post("legacy-a", email8, name={"givenName": "Old", "familyName": "A"})
    o.legacy_b = post("legacy-b", email8)
    o.loose7 = post(email7, email7)
    o.post = post
    o.run = lambda **kw: asyncio.run(engine.sync("full", **kw))
    o.cli = lambda *argv: main([*argv, "--config", str(config_path)])
    o.user = lambda lms_id: client.get(f"/Users/{lms_id}").json()
    o.users = lambda: lms_users(scim_server.base_url, lms_token)
    yield o
    client.close()


def ops_of(store: Store, employee_id: str) -> list[tuple[str, str, str | None]]:
    return [(r[0], r[1], r[2]) for r in store.conn.execute(
        "SELECT kind, status, lms_id FROM ops WHERE employee_id = ? ORDER BY id",
        (employee_id,))]


def open_drift(store: Store, employee_id: str) -> dict[str, dict]:
    return {r[0]: json.loads(r[1]) for r in store.conn.execute(
        "SELECT kind, detail FROM drift WHERE subject = ? AND resolved_at IS NULL",
        (employee_id,))}


def audit_of(store: Store, employee_id: str) -> list[tuple[str, dict]]:
    return [(r[0], json.loads(r[1])) for r in store.conn.execute(
        "SELECT action, detail FROM audit WHERE target = ? ORDER BY id", (employee_id,))]


def test_link_decision_links_exactly_that_account(org, capsys):
    report = org.run()
    assert report.counts["drift"]["disputed"] == 1
    assert "disputed" in open_drift(org.store, "E00008")

    assert org.cli("links", "list", "--json") == 0
    queue = json.loads(capsys.readouterr().out)["matches"]
    [match] = [m for m in queue if m["employee_id"] == "E00008"]
    assert match["kind"] == "disputed" and match["decision"] is None
    assert sorted(c["lms_id"] for c in match["candidates"]) == sorted(
        [org.legacy_a, org.legacy_b])
    assert match["record"]["email"] == org.email8

    # Not a candidate, or unknown: one sentence, exit 2, nothing written.
    assert org.cli("links", "link", "E00008", org.loose7) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rostersync: LMS account '{org.loose7}' is not one of E00008's "
                          "candidate accounts") and err.count("\n") == 1
    assert org.cli("links", "link", "E99999", org.legacy_a) == 2
    assert "not known to rostersync" in capsys.readouterr().err
    assert match_store.active(org.store, "E00008") is None

    assert org.cli("links", "link", "E00008", org.legacy_b) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"E00008 linked to LMS account {org.legacy_b} (legacy-b, ")
    decision = match_store.active(org.store, "E00008")
    assert (decision.decision, decision.lms_id) == ("link", org.legacy_b)
    [(action, detail)] = [a for a in audit_of(org.store, "E00008") if a[0].startswith("match")]
    assert action == "match_link" and detail["lms_id"] == org.legacy_b

    org.clock.advance(hours=1)
    report = org.run()
    assert report.counts["planned"].get("link") == 1
    assert ("link", "succeeded", org.legacy_b) in ops_of(org.store, "E00008")
    chosen, other = org.user(org.legacy_b), org.user(org.legacy_a)
    assert chosen["externalId"] == "E00008" and chosen["userName"] == org.email8
    assert "externalId" not in other and other["userName"] == "legacy-a"  # untouched
    assert open_drift(org.store, "E00008") == {}
    org.clock.advance(hours=1)
    assert org.run().counts["planned"] == {}  # settled: nothing more to do


def test_create_decision_makes_a_new_account_and_leaves_the_candidates(org, capsys):
    org.run()
    assert org.cli("links", "create", "E00008") == 0
    assert capsys.readouterr().out.startswith("E00008 gets a new LMS account on the next run")
    org.clock.advance(hours=1)
    org.run()
    mine = [u for u in org.users() if u.get("externalId") == "E00008"]
    assert len(mine) == 1 and mine[0]["id"] not in (org.legacy_a, org.legacy_b)
    assert "externalId" not in org.user(org.legacy_a)
    assert "externalId" not in org.user(org.legacy_b)
    assert open_drift(org.store, "E00008") == {}


def test_create_over_an_unlinked_account_with_that_username_fails_as_a_conflict(org, capsys):
    # E00009: one account holds their userName, another their e-mail: disputed.
    email9 = World.person(9)["Work Email"]
    holder = org.post(email9, "someone-else@acme.example")
    org.post("old-9", email9)
    org.run()
    assert "disputed" in open_drift(org.store, "E00009")
    assert org.cli("links", "create", "E00009") == 0
    out = capsys.readouterr().out
    assert f"LMS account {holder} already has userName {email9!r}" in out
    org.clock.advance(hours=1)
    org.run()
    [error] = [r[0] for r in org.store.conn.execute(
        "SELECT last_error FROM ops WHERE employee_id = 'E00009' AND kind = 'create'")]
    assert f"userName {email9!r} is already held by LMS account {holder}" in error
    assert "the operator decided on a new account for E00009" in error
    assert "externalId" not in org.user(holder)  # not linked behind the operator's back


def test_ignore_decision_plans_nothing_and_says_why(org, capsys):
    org.run(apply=False)  # planned, not applied: E00007's link is waiting
    assert ("link", "pending", org.loose7) in ops_of(org.store, "E00007")
    assert org.cli("links", "ignore", "E00007", "--reason", "shared mailbox, HR fixes it") == 0
    capsys.readouterr()
    assert ops_of(org.store, "E00007") == [("link", "superseded", org.loose7)]
    assert org.cli("links", "ignore", "E00008", "--reason", " ") == 2  # a reason is required
    assert "a reason is required" in capsys.readouterr().err
    org.clock.advance(hours=1)
    org.run()
    assert ops_of(org.store, "E00007") == [("link", "superseded", org.loose7)]
    detail = open_drift(org.store, "E00007")["unlinked"]
    assert detail["ignored"] == "shared mailbox, HR fixes it"
    assert detail["decision"]["decision"] == "ignore"
    assert "externalId" not in org.user(org.loose7)

    # Cleared: the ordinary rules apply again (a single unlinked match is linked).
    assert org.cli("links", "clear", "E00007") == 0
    capsys.readouterr()
    org.clock.advance(hours=1)
    org.run()
    assert org.user(org.loose7)["externalId"] == "E00007"
    assert [a for a, _d in audit_of(org.store, "E00007")] == ["match_ignore", "match_clear"]


def test_a_link_to_an_account_gone_or_claimed_goes_back_to_disputed(org, capsys):
    org.run()
    assert org.cli("links", "link", "E00008", org.legacy_a) == 0
    capsys.readouterr()
    org.client.delete(f"/Users/{org.legacy_a}").raise_for_status()
    org.clock.advance(hours=1)
    org.run()
    detail = open_drift(org.store, "E00008")["disputed"]
    assert detail["decision_stale"] == (
        f"the decision to link to LMS account {org.legacy_a} is not followed: LMS account "
        f"{org.legacy_a} no longer exists; decide again")
    assert [k for k, _s, _l in ops_of(org.store, "E00008")] == []
    assert "externalId" not in org.user(org.legacy_b)

    # Decided again, for legacy-b; then someone else claims it in the LMS before the run.
    assert org.cli("links", "link", "E00008", org.legacy_b) == 0
    capsys.readouterr()
    org.client.patch(f"/Users/{org.legacy_b}", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "externalId", "value": "E00031"}],
    }).raise_for_status()
    org.clock.advance(hours=1)
    org.run()
    detail = open_drift(org.store, "E00008")["disputed"]
    assert f"LMS account {org.legacy_b} now belongs to E00031" in detail["decision_stale"]
    assert [k for k, _s, _l in ops_of(org.store, "E00008")] == []
    assert org.user(org.legacy_b)["externalId"] == "E00031"


# -- the pure decision (sync/diff.py): decisions are data passed in --------------------

POLICY = Policy(timedelta(hours=24), 0, frozenset({Status.pre_hire}))


def subject(choice: MatchChoice | None, *candidates: Account) -> Subject:
    desired = Account(external_key="E1", user_name="ada@acme.example", email="ada@acme.example")
    return Subject("E1", Lifecycle(Status.active), Mapped(True, desired),
                   candidates=list(candidates), choice=choice)


def account(lms_id: str, key: str | None = None, user_name: str = "ada@acme.example") -> Account:
    return Account(external_key=key, user_name=user_name, email="ada@acme.example",
                   lms_id=lms_id)


def test_decide_links_exactly_the_chosen_account_among_several():
    a, b = account("L1"), account("L2", user_name="other")
    out = decide(subject(MatchChoice("link", "L2", account=b), a, b), START, POLICY)
    assert [(i.kind, i.lms_id) for i in out.intents] == [(OpKind.link, "L2")]
    assert out.intents[0].payload["lms_id"] == "L2"
    assert [d.kind for d in out.drift] == [DriftKind.disputed]
    assert out.drift[0].detail["decision"]["lms_id"] == "L2"


def test_decide_create_ignore_and_a_stale_link():
    a, b = account("L1"), account("L2", user_name="other")
    out = decide(subject(MatchChoice("create"), a, b), START, POLICY)
    assert [i.kind for i in out.intents] == [OpKind.create]
    assert out.intents[0].payload["new_account"] is True

    out = decide(subject(MatchChoice("ignore", reason="HR fixes it"), a), START, POLICY)
    assert out.intents == [] and out.drift[0].kind == DriftKind.unlinked
    assert out.drift[0].detail["ignored"] == "HR fixes it"

    claimed = account("L2", key="E9", user_name="other")
    out = decide(subject(MatchChoice("link", "L2", account=claimed), a, claimed), START,
                 POLICY)
    assert out.intents == [] and out.drift[0].kind == DriftKind.disputed
    assert "now belongs to E9" in out.drift[0].detail["decision_stale"]
    gone = decide(subject(MatchChoice("link", "L7"), a), START, POLICY)
    assert gone.intents == [] and gone.drift[0].kind == DriftKind.disputed
    assert "LMS account L7 no longer exists" in gone.drift[0].detail["decision_stale"]


def test_an_ignored_dispute_stays_listed_but_is_no_longer_a_status_warning(org, capsys):
    from rostersync.sync.status import build_status

    org.run()
    before = build_status(org.store, org.engine.config, org.clock.now())
    assert any("1 disputed" in r for r in before["reasons"])
    assert org.cli("links", "ignore", "E00008", "--reason", "two legacy logins; HR merges") \
        == 0
    org.clock.advance(hours=1)
    org.run()
    after = build_status(org.store, org.engine.config, org.clock.now())
    assert after["drift"]["disputed"] == 1  # still listed, with its reason
    assert not any("disputed" in r for r in after["reasons"])
