"""Reports from recorded history: a real engine run against a real SCIM sandbox with
terminations on time, held, failed and suppressed (tests/report_world.py), then the
reports through the CLI, checked against the database and `status`."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rostersync.console.cli import main
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.storage import audit, retention
from rostersync.storage.db import Store
from rostersync.sync.reports import parse_period
from rostersync.sync.reports.period import PeriodError
from rostersync.sync.reports.stats import percentile
from rostersync.sync.status import build_status
from tests.report_world import END, SINCE, UNTIL, History, live

TOKEN = "reports-test-token"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[History]:
    with ScimSandbox(token=TOKEN) as lms:
        yield live(tmp_path_factory.mktemp("report-world"), lms, TOKEN)


def run_cli(world: History, capsys, *argv: str, db: Path | None = None) -> tuple[int, str]:
    capsys.readouterr()
    code = main([*argv, "--config", str(world.config_path)]
                + (["--db", str(db)] if db else []))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def report(world: History, capsys, name: str, *extra: str) -> tuple[int, str]:
    return run_cli(world, capsys, "report", name, "--since", SINCE, "--until", UNTIL, *extra)


def copy_db(world: History, folder: Path) -> Path:
    target = folder / "copy.db"
    src, dst = sqlite3.connect(world.config.database.path), sqlite3.connect(target)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    return target


# -- terminations ----------------------------------------------------------------------

def test_terminations_lists_each_with_its_delay_and_reason(world, capsys):
    code, out = report(world, capsys, "terminations", "--json")
    assert code == 0
    doc = json.loads(out)
    rows = {r["employee_id"]: r for r in doc["rows"]}
    assert set(rows) == {"E00003", "E00005", "E00011", "E00020", "E00030", "E00031",
                         "E00032", "E00033"}
    seen = {k: (r["outcome"], r["reason"], r["delay_seconds"]) for k, r in rows.items()}
    assert seen["E00003"] == ("on_time", None, 0)       # deactivated in the run that saw it
    assert seen["E00011"] == ("on_time", None, 0)       # scheduled, applied at midnight NY
    assert seen["E00005"] == ("late", "failed", 3 * 3600)
    assert seen["E00030"] == ("late", "held", 3 * 3600)
    assert seen["E00020"][:2] == ("open_past_sla", "suppressed")
    assert seen["E00033"][:2] == ("open_past_sla", "held")
    # Open ones are measured up to the end of the period.
    assert rows["E00020"]["delay_seconds"] == (END - world_time("2026-10-01T10:00")).seconds \
        + (END - world_time("2026-10-01T10:00")).days * 86400
    assert "alice" in rows["E00020"]["why"] and "legal hold" in rows["E00020"]["why"]
    assert "carol" in rows["E00030"]["why"]
    assert "503" in rows["E00005"]["why"] and "bob" in rows["E00005"]["why"]
    assert "mass deactivation" in rows["E00033"]["why"]
    # The effective time in the person's zone and in UTC: midnight after the last day.
    assert rows["E00011"]["effective_local"] == "2026-10-03T00:00:00-04:00"
    assert rows["E00011"]["effective_utc"] == "2026-10-03T04:00:00.000000Z"
    assert rows["E00003"]["hr_recorded_after_seconds"] == 11 * 3600  # London, BST
    s = doc["summary"]
    assert (s["count"], s["on_time"], s["late"], s["open"]) == (8, 2, 4, 2)
    assert s["share_within_sla"] == 0.25
    assert s["delay_seconds"] == {"count": 6, "p50": 10800, "p95": 10800, "max": 10800}
    assert s["missed_by_reason"] == {"failed": 1, "held": 4, "suppressed": 1}


def world_time(text: str):
    from datetime import UTC, datetime

    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_terminations_agree_with_status_and_the_database(world, capsys):
    doc = json.loads(report(world, capsys, "terminations", "--json")[1])
    status = build_status(world.store, world.config, END)["terminations"]
    assert doc["summary"]["open"] == status["pending"] == 2
    assert doc["summary"]["open_past_sla"] == status["overdue"] == 2
    # Every deactivation time is the succeeded op's finished_at, as recorded.
    for row in doc["rows"]:
        finished = world.store.conn.execute(
            "SELECT finished_at FROM ops WHERE employee_id = ? AND status = 'succeeded' "
            "AND kind = 'deactivate'", (row["employee_id"],)).fetchall()
        assert [f[0] for f in finished] == ([row["inactive_at"]] if row["inactive_at"] else [])
    # The CLI's status at the real now agrees on what is still open.
    _code, out = run_cli(world, capsys, "status", "--json")
    assert json.loads(out)["terminations"]["pending"] == doc["summary"]["open"]


def test_csv_and_json_carry_the_same_rows_and_runs_are_reproducible(world, capsys):
    first = report(world, capsys, "terminations", "--format", "json")[1]
    assert report(world, capsys, "terminations", "--format", "json")[1] == first
    rows = list(csv.DictReader(io.StringIO(report(world, capsys, "terminations",
                                                  "--format", "csv")[1])))
    doc = json.loads(first)
    assert [r["employee_id"] for r in rows] == [r["employee_id"] for r in doc["rows"]]
    assert [int(r["delay_seconds"]) for r in rows] == [r["delay_seconds"] for r in doc["rows"]]


class Page(HTMLParser):
    """What the tests need from an HTML report: external references, scripts, charts."""

    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []
        self.scripts = 0
        self.svgs: list[str] = []
        self.bars: list[tuple[str, float]] = []
        self.series: dict[str, list[int]] = {}
        self.rows: dict[str, int] = {}
        self._table: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith("#"):
                self.external.append(a[key])
        if tag == "link" or tag == "script":
            self.scripts += tag == "script"
            self.external.append(tag)
        if tag == "svg":
            self.svgs.append(a.get("aria-label", ""))
        if tag == "rect" and a.get("class") == "bar":
            self.bars.append((self.svgs[-1] + "/" + a["data-label"], float(a["data-value"])))
        if tag == "polyline":
            self.series[a["data-label"]] = [int(v) for v in a["data-value"].split(",")]
        if tag == "table":
            self._table = a.get("id")
            self.rows[self._table] = 0
        if tag == "tr" and self._table:
            self.rows[self._table] += 1


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def test_html_is_self_contained_with_charts_whose_numbers_agree(world, capsys, tmp_path):
    target = tmp_path / "terminations.html"
    code, _ = report(world, capsys, "terminations", "--format", "html", "-o", str(target))
    assert code == 0
    page = parse(target.read_text(encoding="utf-8"))
    assert page.external == [] and page.scripts == 0
    assert "termination delay distribution" in page.svgs
    doc = json.loads(report(world, capsys, "terminations", "--json")[1])
    hist = {k.split("/", 1)[1]: v for k, v in page.bars
            if k.startswith("termination delay distribution/")}
    assert sum(hist.values()) == doc["summary"]["deactivated"] == 6
    assert hist["0s to 15m"] == 2 and hist["2h 00m to 6h 00m"] == 4
    assert page.rows["terminations"] == 1 + doc["summary"]["count"]  # header + one each

    drift = tmp_path / "drift.html"
    report(world, capsys, "drift", "--format", "html", "-o", str(drift))
    page = parse(drift.read_text(encoding="utf-8"))
    assert page.external == [] and page.scripts == 0
    assert page.series["pending_termination"][-1] == 2 and page.series["unmapped"][-1] == 1
    assert ("failures by error class/transient (IT)", 2.0) in page.bars


# -- drift and operator ------------------------------------------------------------------

def test_drift_report_ages_owners_and_failures(world, capsys):
    doc = json.loads(report(world, capsys, "drift", "--json")[1])
    assert doc["summary"]["open_at_end"]["pending_termination"] == 2
    assert doc["summary"]["open_at_end"]["unmapped"] == 1
    resolve = {r["kind"]: r for r in doc["time_to_resolve"]}
    assert resolve["invalid"]["count"] == 1 and resolve["invalid"]["max"] == 3 * 3600
    quality = {(q["field"], q["owner"], q["kind"]): (q["seen"], q["open"])
               for q in doc["data_quality"]}
    assert quality == {("department", "L&D", "unmapped"): (1, 1),
                       ("email", "HR", "invalid"): (1, 0)}
    assert [o["subject"] for o in doc["oldest_open"]] == ["E00009", "E00020", "E00033"]
    assert doc["failures"] == [{"error_class": "transient", "owner": "IT", "attempts": 2,
                                "ops": 1, "example": doc["failures"][0]["example"]}]
    # Open drift at the end agrees with status (which counts open drift now).
    status = build_status(world.store, world.config, END)
    assert {k: v for k, v in status["drift"].items() if v} == \
        {k: v for k, v in doc["summary"]["open_at_end"].items() if v}


def test_operator_report_names_who_did_what_and_verifies_the_chain(world, capsys):
    code, out = report(world, capsys, "operator", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["chain"]["ok"] is True
    did = [(e["actor"], e["action"], e["people"] or [e["target"]]) for e in doc["entries"]]
    assert ("alice", "suppress", ["E00020"]) in did
    assert ("bob", "retry", ["E00005"]) in did
    assert ("carol", "approve", ["E00030", "E00031", "E00032"]) in did
    code, out = report(world, capsys, "operator")
    assert "chain intact" in out


def test_a_tampered_audit_log_fails_the_operator_report(world, capsys, tmp_path):
    db = copy_db(world, tmp_path)
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET actor = 'mallory' WHERE actor = 'bob'")
    conn.commit()
    conn.close()
    code, out = run_cli(world, capsys, "report", "operator", "--since", SINCE, "--until",
                        UNTIL, "--json", db=db)
    assert code == 2 and json.loads(out)["chain"]["ok"] is False


# -- retention -------------------------------------------------------------------------

def test_pruning_keeps_the_audit_chain_verifiable(world, tmp_path):
    store = Store(copy_db(world, tmp_path))
    before = audit.verify(store)
    assert before.ok and before.entries == 3
    result = retention.prune(store, END, {"audit": 1, "ops": 1, "attempts": 1, "runs": 1,
                                          "resolved_drift": 1}, actor="auditor")
    # Everything happened on 1 October, more than a day before END: all prunable goes,
    # except the newest audit entry, open drift and open ops.
    assert result["deleted"]["audit"] == 2
    assert store.scalar("SELECT count(*) FROM drift WHERE resolved_at IS NULL") == 3
    assert store.scalar("SELECT count(*) FROM ops WHERE status IN ('held', 'suppressed')") == 2
    # Only E00011's deactivation (at 04:00 on 3 October) is younger than a day.
    assert store.scalar("SELECT employee_id FROM ops WHERE status = 'succeeded'") == "E00011"
    assert store.scalar("SELECT count(*) FROM ops WHERE status = 'succeeded'") == 1
    check = audit.verify(store)
    assert check.ok and check.entries == 2  # carol's approve, then the prune itself
    actions = [r["action"] for r in audit.entries(store)]
    assert actions == ["prune", "approve"]
    # Later entries keep chaining; deleting the first kept one is still detected.
    audit.record(store, END, "retry", None, {"ops": []}, actor="bob")
    assert audit.verify(store).ok
    store.conn.execute("DROP TRIGGER audit_no_delete")
    store.conn.execute("DELETE FROM audit WHERE id = (SELECT min(id) FROM audit)")
    assert not audit.verify(store).ok


def test_prune_command_follows_the_retention_config(world, capsys, tmp_path):
    db = copy_db(world, tmp_path)
    code, out = run_cli(world, capsys, "prune", "--json", db=db)
    assert code == 0 and json.loads(out)["deleted"] == {}  # defaults keep everything
    config = tmp_path / "rostersync.toml"
    config.write_text(world.config_path.read_text() + "\n[retention]\naudit_days = 1\n"
                      "ops_days = 1\n")
    capsys.readouterr()
    code = main(["prune", "--dry-run", "--json", "--config", str(config), "--db", str(db)])
    dry = json.loads(capsys.readouterr().out)
    assert code == 0 and dry["deleted"]["audit"] == 2 and dry["deleted"]["ops"] > 0
    assert Store(db).scalar("SELECT count(*) FROM audit") == 3  # a dry run deletes nothing
    code = main(["prune", "--config", str(config), "--db", str(db)])
    assert code == 0
    capsys.readouterr()
    assert main(["audit", "verify", "--config", str(config), "--db", str(db)]) == 0
    assert "chain intact" in capsys.readouterr().out


def test_retention_settings_are_checked(world, tmp_path, capsys):
    config = tmp_path / "rostersync.toml"
    config.write_text(world.config_path.read_text() + "\n[retention]\naudit_days = -3\n")
    code = main(["prune", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and "retention.audit_days" in err and "-3" in err


# -- periods ---------------------------------------------------------------------------

def test_bad_periods_are_one_sentence(world, capsys):
    code, out = run_cli(world, capsys, "report", "drift", "--since", "last tuesday")
    assert code == 2 and "--since 'last tuesday'" in out and "Traceback" not in out
    code, out = run_cli(world, capsys, "report", "drift", "--since", "2026-10-02",
                        "--until", "2026-10-01")
    assert code == 2 and "not before" in out
    with pytest.raises(PeriodError):
        parse_period("30d", "2999-01-01", END)
    period = parse_period("2w", "2026-10-03T00:00", END)
    assert period.days == 14


def test_percentiles_are_values_that_occurred():
    assert percentile([5, 1, 3, 2, 4], 50) == 3
    assert percentile([1, 2, 3, 4, 100], 95) == 100
    assert percentile([], 50) is None


# -- console ---------------------------------------------------------------------------

@pytest.mark.anyio
async def test_reports_screen_shows_the_report_summaries(world, tmp_path):
    from rostersync.console.app import ConsoleApp
    from rostersync.console.screens.reports import ReportsScreen
    from rostersync.sync.clock import FrozenClock
    from rostersync.sync.reports.build import build_report
    from tests.console_harness import SIZE, settle

    store = Store(copy_db(world, tmp_path))
    app = ConsoleApp(world.config, store, clock=FrozenClock(END), read_only=True,
                     run_scheduler=False, live=False, actor="tester")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("8")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReportsScreen)
        period = parse_period("30d", None, END)
        assert screen.data["terminations"] == build_report("terminations", store,
                                                           world.config, period)
        shown = text_of(screen.query_one("#rep-terminations"))
        assert "25.0%" in shown and "held 4" in shown
        assert "chain intact" in text_of(screen.query_one("#rep-operator"))
        await pilot.press("p")  # 30 -> 90 days
        await settle(pilot)
        assert screen.days == 90 and "90d" in str(screen.query_one("#rep-drift").border_title)


def text_of(widget) -> str:
    from rich.console import Console

    console = Console(width=100, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
