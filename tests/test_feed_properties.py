"""Property: whatever mix of shared e-mails, manager loops, unknown managers and renamed
columns an export carries, the real engine writes nothing to a conflicting field of a real
scim2-server, names every case in HR-owned drift, and still syncs everything else; and a
renamed configured column (not marked optional) rejects the whole export untouched.

Each example starts its own LMS and database (a scim2-server start costs ~0.2 s), so the
examples are few but each one is the whole product end to end.
"""

from __future__ import annotations

import asyncio
import csv
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.sandbox.world import HEADER
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from tests.scim_fixtures import SCIM_TOKEN
from tests.support import (
    ENTERPRISE,
    World,
    by_external_id,
    lms_users,
    set_token_env,
    write_config,
)

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
# Configured columns HR may rename without taking the key, names or status with them.
RENAMABLE = ["Department", "Job Title", "Location", "Termination Date", "Time Zone",
             "Preferred Name", "Worker Type"]


@st.composite
def exports(draw):
    n = draw(st.integers(6, 12))
    keys = [f"E{i:05d}" for i in range(1, n + 1)]
    pick = st.sampled_from(keys)
    renamed = draw(st.lists(st.sampled_from(RENAMABLE), max_size=2, unique=True))
    # Most renamed columns are marked optional, so most examples reach the LMS.
    optional = [c for c in renamed if draw(st.integers(0, 3))]
    return {
        "n": n,
        "shared": draw(st.lists(st.tuples(pick, pick), max_size=3)),  # b takes a's e-mail
        "loops": draw(st.lists(st.tuples(pick, pick), max_size=2)),  # a and b manage each other
        "ghosts": draw(st.lists(pick, max_size=2, unique=True)),  # manager nobody knows
        "retitled": draw(st.lists(pick, max_size=4, unique=True)),  # an ordinary change
        "renamed": renamed,
        "optional": optional,
    }


def _write(world: World, path: Path, renamed: list[str]) -> None:
    header = [f"{name} (new)" if name in renamed else name for name in HEADER]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in world.rows.values():
            writer.writerow([row[name] for name in HEADER])


def _on_loop(key: str, managers: dict[str, str]) -> bool:
    node, seen = managers.get(key), set()
    while node and node in managers and node not in seen:
        if node == key:
            return True
        seen.add(node)
        node = managers[node]
    return False


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(exports())
def test_no_write_touches_a_conflict_and_every_case_is_named(case):
    set_token_env(SCIM_TOKEN)
    with tempfile.TemporaryDirectory() as tmp, ScimSandbox(token=SCIM_TOKEN) as lms:
        folder = Path(tmp)
        world = World.generate(case["n"])
        csv_path = world.write(folder / "employees.csv")
        config_path = write_config(folder, lms.base_url, csv_path)
        if case["optional"]:
            listed = ", ".join(json.dumps(c) for c in case["optional"])
            text = config_path.read_text(encoding="utf-8")
            config_path.write_text(text.replace(
                "[hris.columns]", f"optional_columns = [{listed}]\n\n[hris.columns]", 1),
                encoding="utf-8")
        engine = Engine(load_config(config_path), Store(folder / "rostersync.db"),
                        clock=FrozenClock(START))
        assert asyncio.run(engine.sync("full")).exit_code == 0
        before = {k: v[0] for k, v in by_external_id(lms_users(lms.base_url,
                                                               SCIM_TOKEN)).items()}

        rows = world.rows
        for a, b in case["shared"]:
            rows[b]["Work Email"] = rows[a]["Work Email"]
        for a, b in case["loops"]:
            rows[a]["Manager ID"], rows[b]["Manager ID"] = b, a
        for k in case["ghosts"]:
            rows[k]["Manager ID"] = f"E9{k[1:]}"
        for k in case["retitled"]:
            rows[k]["Job Title"] = f"Lead {k}"
        _write(world, csv_path, case["renamed"])
        report = asyncio.run(engine.sync("full"))
        after = {k: v[0] for k, v in by_external_id(lms_users(lms.base_url,
                                                              SCIM_TOKEN)).items()}

        refused = [c for c in case["renamed"] if c not in case["optional"]]
        if refused:
            assert report.exit_code == 4 and report.status == "rejected", report.message
            for column in refused:
                assert repr(column) in report.message
            assert after == before  # nothing of that export reached the LMS
            return
        assert report.exit_code == 0, report.message

        def drift(kind: str) -> dict[str, dict]:
            return {r["subject"]: json.loads(r["detail"]) for r in engine.store.rows(
                "SELECT subject, detail FROM drift WHERE resolved_at IS NULL AND kind = ?",
                (kind,))}

        holders: dict[str, set[str]] = {}
        for k, row in rows.items():
            holders.setdefault(row["Work Email"].lower(), set()).add(k)
        sharing = {k for ks in holders.values() if len(ks) > 1 for k in ks}
        conflicts = drift("conflict")
        assert set(conflicts) == sharing
        for k in sharing:
            assert set(conflicts[k]["with"]) == holders[rows[k]["Work Email"].lower()] - {k}
            assert after[k]["userName"] == before[k]["userName"]
            assert after[k]["emails"] == before[k]["emails"]

        managers = {k: row["Manager ID"] for k, row in rows.items()}
        # Nobody manages themselves: such a record is invalid as a whole (validate), and
        # the last good state stands for that person.
        own = {k for k, m in managers.items() if m == k}
        assert own <= set(drift("invalid"))
        unknown = {k for k, m in managers.items() if m and m not in rows}
        looped = {k for k in rows if _on_loop(k, managers) and k not in own}
        assert set(drift("manager_unknown")) == unknown
        assert set(drift("manager_cycle")) == looped
        for k in unknown | looped:
            assert (after[k].get(ENTERPRISE, {}).get("manager")
                    == before[k].get(ENTERPRISE, {}).get("manager"))

        # Everything else still flows: a new title reaches the LMS unless its column was
        # the one HR renamed (then the field is unmanaged and the LMS keeps the old one).
        for k in set(case["retitled"]) - own:
            expected = before[k].get("title") if "Job Title" in case["renamed"] else f"Lead {k}"
            assert after[k].get("title") == expected
