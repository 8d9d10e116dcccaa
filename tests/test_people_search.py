"""Finding people and list rows by text, over the database the real engine seeded
(tests/console_harness.py): LIKE's wildcards are literal, every visible column counts,
a person is found by part of a name or an e-mail, scheduled terminations are the future
ones only."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from rostersync.storage import console_queries as q
from rostersync.storage import people_search
from rostersync.storage.db import Store, ts
from rostersync.sync.lifecycle import termination_instant
from rostersync.sync.models import Person
from tests.console_harness import VIEWED_AT, fresh_db


@pytest.fixture
def store(seeded, tmp_path):
    s = Store(fresh_db(seeded, tmp_path))
    yield s
    s.close()


def person(store: Store, employee_id: str) -> Person:
    record = store.scalar("SELECT record FROM people WHERE employee_id = ?", (employee_id,))
    return Person.model_validate_json(record)


def test_like_pattern_takes_wildcards_literally():
    assert people_search.like_pattern("a_b%c\\") == "%a\\_b\\%c\\\\%"
    # the ESCAPE clause only where there is something to escape (it slows every LIKE)
    assert people_search.like("E00012") == "LIKE ?"
    assert [people_search.like(w) for w in ("a_b", "5%", "a\\b")] == ["LIKE ? ESCAPE '\\'"] * 3


def test_which_words_are_looked_for_in_names():
    # one letter narrows nothing; two already name someone ("Li")
    assert [people_search.may_name_a_person(w) for w in ("a", "li", "lin")] == [
        False, True, True]
    # a digit means an id or a number, unless the word is an e-mail
    assert not people_search.may_name_a_person("E00012")
    assert people_search.may_name_a_person("chloe.costa.82@")


def test_drift_filter_keeps_the_underscore(store):
    """Defect: the underscore was removed, so /pending_termination found nothing."""
    expected = store.scalar("SELECT count(*) FROM drift WHERE resolved_at IS NULL "
                            "AND kind = 'pending_termination'")
    page = q.page(store, "drift", filter_text="pending_termination", limit=100)
    assert expected == 30 and page.total == expected
    assert {r["kind"] for r in page.rows} == {"pending_termination"}


def test_an_underscore_or_percent_is_not_a_wildcard(store):
    assert q.page(store, "ops", filter_text="E00001").total >= 1
    # "_" as a wildcard would match E00001; removed, "E0001" would match E00010..E00019.
    assert q.page(store, "ops", filter_text="E_0001").total == 0
    assert q.page(store, "ops", filter_text="E0%01").total == 0
    assert people_search.search(store, "_") == []


def test_ops_filter_searches_the_status_and_the_hold_reason(store):
    """Defect: /held found 0 of the 30 held ops: the status column was not searched."""
    held = store.scalar("SELECT count(*) FROM ops WHERE status = 'held'")
    assert held == 30
    assert q.page(store, "ops", filter_text="held").total == held
    reason = store.scalar("SELECT hold_reason FROM ops WHERE status = 'held' LIMIT 1")
    assert q.page(store, "ops", filter_text=reason.split()[0]).total == held


def test_list_filters_match_a_person_by_name_and_by_email(store):
    fatima = person(store, "E00005")
    namesakes = {r[0] for r in store.conn.execute("SELECT employee_id FROM people")
                 if person(store, r[0]).display_name == fatima.display_name}
    page = q.page(store, "ops", filter_text=fatima.display_name.lower(), limit=500)
    assert "E00005" in {r["employee_id"] for r in page.rows}
    assert {r["employee_id"] for r in page.rows} == namesakes
    # An e-mail finds the one person, on the drift list and the terminations list.
    ben = person(store, "E00121")
    for name in ("drift", "terminations"):
        page = q.page(store, name, filter_text=ben.email)
        assert [r["subject"] for r in page.rows] == ["E00121"], name


def test_search_finds_people_by_part_of_a_name_an_email_or_an_id(store):
    chloe = person(store, "E00082")
    assert chloe.display_name == "Chloe Costa"
    by_name = people_search.search(store, "CHLOE cos")
    assert "E00082" in [h.employee_id for h in by_name]
    assert all("chloe" in f"{h.name} {h.email}".lower() for h in by_name)
    by_email = people_search.search(store, "costa.82@")
    assert [(h.employee_id, h.name, h.email) for h in by_email] == [
        ("E00082", "Chloe Costa", chloe.email)]
    by_id = people_search.search(store, "e0008")
    assert {h.employee_id for h in by_id} == {f"E0008{i}" for i in range(10)}
    # Every word must match: a word nobody has empties the result.
    assert people_search.search(store, "chloe zzzz") == []


def test_search_stops_at_its_limit(store):
    assert len(people_search.search(store, "acme", limit=5)) == 5
    assert len(people_search.search(store, "acme")) == 20


def test_names_for_a_page(store):
    assert people_search.names_for(store, ["E00082", "nobody", ""]) == {
        "E00082": "Chloe Costa"}


def _schedule(store: Store, employee_id: str, day: date, zone: str) -> str:
    """A termination HR dated ``day`` in ``zone``, as the engine records it."""
    effective = ts(termination_instant(day, zone, "end_of_day"))
    store.conn.execute(
        "UPDATE people SET effective_at = ?, record = json_set(record, "
        "'$.termination_date', ?, '$.timezone', ?) WHERE employee_id = ?",
        (effective, day.isoformat(), zone, employee_id))
    return effective


def test_scheduled_lists_terminations_strictly_in_the_future(store):
    effective = _schedule(store, "E00010", date(2026, 11, 30), "America/New_York")
    assert effective == "2026-12-01T05:00:00.000000Z"
    moment = termination_instant(date(2026, 11, 30), "America/New_York", "end_of_day")
    tick = timedelta(microseconds=1)
    for now, listed in ((moment - tick, ["E00010"]), (moment, []), (moment + tick, [])):
        page = q.page(store, "scheduled", now=now)
        assert [r["employee_id"] for r in page.rows] == listed, now
    row = q.page(store, "scheduled", now=VIEWED_AT).rows[0]
    assert (row["timezone"], row["termination_date"]) == ("America/New_York", "2026-11-30")


def test_only_terminations_of_people_in_scope_are_scheduled(store):
    """effective_at also holds a future hire's start; only terminations are listed, a
    rehire after the termination date makes that termination history, and a person out
    of scope is not rostersync's to terminate."""
    _schedule(store, "E00013", date(2026, 11, 30), "UTC")
    assert q.page(store, "scheduled", now=VIEWED_AT).total == 1
    store.conn.execute("UPDATE people SET in_scope = 0 WHERE employee_id = 'E00013'")
    store.conn.execute("UPDATE people SET effective_at = '2026-12-01T00:00:00.000000Z' "
                       "WHERE employee_id = 'E00011'")
    _schedule(store, "E00012", date(2026, 11, 30), "UTC")
    store.conn.execute("UPDATE people SET record = json_set(record, '$.hire_date', "
                       "'2026-12-15') WHERE employee_id = 'E00012'")
    assert q.page(store, "scheduled", now=VIEWED_AT).total == 0


def test_scheduled_filter_finds_a_person_by_name(store):
    _schedule(store, "E00010", date(2026, 11, 30), "Europe/Berlin")
    _schedule(store, "E00082", date(2026, 12, 3), "Asia/Tokyo")
    page = q.page(store, "scheduled", filter_text="chloe", now=VIEWED_AT)
    assert [r["employee_id"] for r in page.rows] == ["E00082"]
    record = json.loads(store.scalar("SELECT record FROM people WHERE employee_id = 'E00082'"))
    assert record["timezone"] == "Asia/Tokyo"
