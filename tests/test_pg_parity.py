"""The same history on SQLite and on PostgreSQL gives the same answers: the console's
lists and person view, status, the held events, the reports and the audit chain.

Each store is filled the same way by the real engine against its own real SCIM sandbox
(150 people; a failing update; an invalid e-mail; an unmapped department; 30 leavers held
by the mass guard), on one frozen clock, then every read the console and the reports make
is asked of both and compared.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.storage import audit, audit_verify, held, people_search, queries, trends
from rostersync.storage import console_queries as cq
from rostersync.storage.db import Store
from rostersync.storage.pg_store import PgStore
from rostersync.storage.store_factory import make_store
from rostersync.sync.config import Config, load_config
from rostersync.sync.reports.build import REPORTS, build_report
from rostersync.sync.reports.period import parse_period
from rostersync.sync.status import build_status
from tests.console_harness import START, play_history
from tests.support import World, set_token_env, write_config

VIEWED_AT = START + timedelta(hours=3)
TOKEN = "parity-token"


def fill(folder: Path, database_url: str | None) -> tuple[Store, Config]:
    set_token_env(TOKEN)
    folder.mkdir(parents=True, exist_ok=True)
    counter = itertools.count(1)  # the sandbox's user ids, the same on both sides
    with ScimSandbox(token=TOKEN) as lms, mock.patch(
            "scim2_server.memory.uuid.uuid4", lambda: uuid.UUID(int=next(counter))):
        world = World.generate(150)
        csv_path = world.write(folder / "employees.csv")
        config = load_config(write_config(folder, lms.base_url, csv_path))
        config.database.url = database_url
        config.database.path = folder / "rostersync.db"
        store = make_store(config.database)
        clock = play_history(store, config, world, csv_path, lms)
    audit.record(store, clock.now() + timedelta(minutes=5), "sync", None,
                 {"kind": "full", "from": "cli"}, actor="operator")
    for minute, action, target in ((6, "suppress", "E00005"), (7, "note", "E00130")):
        audit.record(store, clock.now() + timedelta(minutes=minute), action, target,
                     {"reason": "parity"}, actor="operator")
    return store, config


@pytest.fixture
def pair(tmp_path, pg_database):
    lite, lite_config = fill(tmp_path / "sqlite", None)
    pg, pg_config = fill(tmp_path / "pg", pg_database)
    assert isinstance(pg, PgStore) and not isinstance(lite, PgStore)
    yield (lite, lite_config), (pg, pg_config)
    pg.close_all()


def answers(store: Store, config: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in cq.SPECS:
        for desc in (False, True):
            page = cq.page(store, name, desc=desc, now=VIEWED_AT, limit=200)
            out[f"{name}/{desc}"] = (page.total, page.rows)
        out[f"{name}/filtered"] = cq.page(store, name, filter_text="e0012", now=VIEWED_AT).rows
    out["ops/held"] = cq.page(store, "ops", status="held", now=VIEWED_AT).rows
    for key in ("E00005", "E00007", "E00130"):
        out[f"person/{key}"] = cq.person_detail(store, key)
    out["recent"] = cq.recent_activity(store)
    out["series"] = cq.run_series(store, now=VIEWED_AT)
    out["banner"] = cq.banner_figures(store)
    out["held"] = held.hold_events(store)
    out["search"] = [hit for word in ("first", "E0001", "e00130") for hit in
                     people_search.search(store, word)]
    out["terminations"] = queries.termination_figures(store, VIEWED_AT, 60)
    out["trends"] = trends.run_trends(store, VIEWED_AT)
    status = build_status(store, config, VIEWED_AT)
    out["status"] = {k: v for k, v in status.items() if k not in ("database", "config")}
    period = parse_period("30d", None, VIEWED_AT)
    for name in REPORTS:
        out[f"report/{name}"] = build_report(name, store, config, period)
    out["audit"] = audit_verify.verify(store)
    return out


def test_every_read_answers_the_same_on_both_stores(pair):
    (lite, lite_config), (pg, pg_config) = pair
    expected = answers(lite, lite_config)
    found = answers(pg, pg_config)
    # The world has what is compared: every list, held changes, a person's history.
    assert all(expected[f"{name}/False"][0] for name in ("drift", "ops", "runs", "audit"))
    assert expected["held"] and expected["ops/held"] and expected["person/E00005"]["ops"]
    assert expected["audit"].ok and expected["audit"].entries == 3
    for key in expected:
        assert found[key] == expected[key], key
