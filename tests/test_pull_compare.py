"""The full pull's comparison of a feed with the last snapshot, against a plain reference.

The batch comparison finds changed rows by digest membership (no lookup by key), so
the cases a key-by-key diff gets for free - a key met twice in any combination of
unchanged and changed copies, in one chunk or across chunks - are checked here, each
against what a naive dict-by-key diff says.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rostersync.sync.config import CsvSourceConfig
from rostersync.sync.connectors import csv_source
from rostersync.sync.connectors.csv_source import CsvSource
from rostersync.sync.pull import FullPull, compare_batches, compare_records

COLUMNS = {"employee_id": "id", "first_name": "first", "last_name": "last", "status": "status"}


def csv_of(rows: list[tuple[str, str]]) -> str:
    return "id,first,last,status\n" + "".join(f"{k},{v},Smith,active\n" for k, v in rows)


def base_of(source: CsvSource) -> tuple[list[str], list[bytes]]:
    """The snapshot an accepted pull of ``source`` leaves (its feed has unique keys)."""
    records = list(source.scan_full())
    return [r.key for r in records], [r.digest for r in records]


def reference(old: list[tuple[str, str]], new: list[tuple[str, str]]):
    """A key-by-key diff: changed or added keys, vanished keys, duplicated keys."""
    before = dict(old)
    seen: dict[str, int] = {}
    for key, _ in new:
        seen[key] = seen.get(key, 0) + 1
    duplicates = {k for k, n in seen.items() if n > 1}
    changed = {k for k, v in new if before.get(k) != v}
    vanished = set(before) - set(seen)
    return changed, vanished, duplicates


def compare(tmp_path: Path, old, new, *, batches: bool, force: bool = False) -> FullPull:
    path = tmp_path / "employees.csv"
    source = CsvSource(CsvSourceConfig(path=path, columns=COLUMNS))
    path.write_text(csv_of(old))
    keys, digests = base_of(source)
    path.write_text(csv_of(new))
    pull = FullPull(base_keys=keys, base_digests=digests)
    if batches:
        pull.rows = compare_batches(source, source.scan_full_digests(), force, pull)
    else:
        pull.rows = compare_records(source.scan_full(), force, pull)
    return pull


def check(pull: FullPull, old, new) -> None:
    changed, vanished, duplicates = reference(old, new)
    assert pull.rows == len(new)
    assert set(pull.duplicates) == duplicates
    assert set(pull.vanished) == vanished and len(pull.vanished) == len(vanished)
    if not duplicates:
        assert {r.key for r in pull.changed} == changed
        assert len(pull.changed) == len(changed)


OLD = [(f"E{i:03}", f"Ana{i}") for i in range(40)]


@pytest.fixture
def small_chunks(monkeypatch):
    # About three rows a chunk, so that repeats fall within one chunk and across chunks.
    monkeypatch.setattr(csv_source, "CHUNK_BYTES", 64)


@pytest.mark.parametrize("batches", [True, False], ids=["batches", "records"])
@pytest.mark.parametrize("new", [
    pytest.param(OLD[:2] + OLD[1:], id="unchanged row twice in one chunk"),
    pytest.param(OLD + OLD[:1], id="unchanged row twice across chunks"),
    pytest.param([*OLD, ("E005", "Changed")], id="unchanged then changed copy"),
    pytest.param([("E005", "Changed"), *OLD], id="changed then unchanged copy"),
    pytest.param(OLD[:5] + OLD[6:] + [("E005", "X"), ("E005", "Y")], id="two changed copies"),
    pytest.param([*OLD, ("N1", "New"), ("N1", "New")], id="a new key twice"),
])
def test_a_key_met_twice_is_reported_however_its_copies_fall(tmp_path, small_chunks, new,
                                                             batches):
    pull = compare(tmp_path, OLD, new, batches=batches)
    check(pull, OLD, new)
    assert pull.duplicates


def test_changed_added_and_vanished_rows_are_told_apart(tmp_path, small_chunks):
    new = [r for r in OLD if r[0] not in ("E003", "E030")] + [("N1", "New")]
    new[10] = (new[10][0], "Changed")
    pull = compare(tmp_path, OLD, new, batches=True)
    check(pull, OLD, new)
    assert sorted(pull.vanished) == ["E003", "E030"]
    assert sorted(r.key for r in pull.changed) == sorted([new[10][0], "N1"])


def test_forced_comparison_returns_every_row_and_still_finds_the_vanished(tmp_path):
    new = OLD[1:]
    pull = compare(tmp_path, OLD, new, batches=True, force=True)
    assert len(pull.changed) == len(new) and pull.vanished == ["E000"]


keys = st.sampled_from([f"E{i}" for i in range(12)])
values = st.sampled_from(["a", "b", "c"])
feeds = st.lists(st.tuples(keys, values), max_size=30)
# Rows repeated in place now and then, so that some copies share a chunk.
repeating_feeds = st.lists(st.tuples(keys, values, st.sampled_from([1, 1, 1, 2])),
                           max_size=30).map(lambda rows: [(k, v) for k, v, n in rows
                                                          for _ in range(n)])


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old=feeds.map(lambda rows: list(dict(rows).items())), new=repeating_feeds,
       batches=st.booleans())
def test_comparison_agrees_with_a_key_by_key_diff(tmp_path, small_chunks, old, new, batches):
    check(compare(tmp_path, old, new, batches=batches), old, new)
