"""Moodle batches in a pipeline (``lms.pipeline_depth``): the next batch's
core_user_create_users call goes out while the last batch is being read back, writes go
one stream at a time, and nothing is recorded done before its read-back confirmed it.

The sandbox shows what was out at once: ``lms.app.met`` lists, for every call as it
arrived, the calls still being answered; ``lms.faults.hold`` keeps one answer back until
another call arrives, so an overlap is waited for, not timed.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from rostersync.sandbox.moodle import MoodleSandbox
from rostersync.sync.config import ConfigError, config_from_dict
from rostersync.sync.connectors.moodle_batch import READ_PART_MIN, divided, read_parts
from tests.test_moodle_batch import (
    PROFILE,
    TOKEN,
    TOKEN_ENV,
    _assert_matches_hr,
    _calls,
    _engine,
    _ops,
    _sync,
)

CREATE = "core_user_create_users"
READ = "core_user_get_users_by_field"


@pytest.fixture
def lms():
    os.environ[TOKEN_ENV] = TOKEN
    with MoodleSandbox(token=TOKEN, profile_fields=PROFILE) as server:
        yield server


def _settings(concurrency: int, depth: int) -> str:
    return f"batch_size = 10\nconcurrency = {concurrency}\npipeline_depth = {depth}"


def _writes_met_by_writes(lms: MoodleSandbox) -> list[tuple[str, ...]]:
    return [found for function, found in lms.app.met if function == CREATE and CREATE in found]


def test_the_next_batch_is_written_while_the_last_is_read_back(tmp_path, lms):
    engine, world = _engine(tmp_path, lms, 25, _settings(2, 2))
    lms.faults.hold(CREATE, until=CREATE, limit=1.0)  # no second write while one is out
    lms.faults.hold(READ, until=CREATE)  # batch 1's read-back waits for batch 2's write
    report = _sync(engine)
    assert report.status == "succeeded", report.message
    assert lms.faults.held == [False, True]
    assert any(READ in found for function, found in lms.app.met if function == CREATE)
    assert _writes_met_by_writes(lms) == []  # one stream of writes: never two at once
    assert _calls(lms, CREATE) == 3 and _calls(lms, READ) == 3
    _assert_matches_hr(lms, world)
    assert {o["status"] for o in _ops(engine).values()} == {"succeeded"}


def test_depth_one_reads_each_batch_back_before_the_next_is_written(tmp_path, lms):
    engine, world = _engine(tmp_path, lms, 25, _settings(1, 1))
    lms.faults.hold(READ, until=CREATE, limit=1.0)
    assert _sync(engine).status == "succeeded"
    assert lms.faults.held == [False]  # no write came while a read-back was out
    assert all(found == () for _function, found in lms.app.met)
    _assert_matches_hr(lms, world)


@pytest.mark.parametrize(("concurrency", "depth", "writes_at_once"), [
    (2, 2, 1),  # concurrency exactly depth: one stream, pipelined
    (3, 2, 1),  # one above: still one stream (3 // 2)
    (4, 2, 2),  # twice depth: two streams
    (2, 1, 2),  # depth 1: the executor's bound alone, as before pipelines
    (2, 3, 1),  # depth above concurrency: one stream
])
def test_writes_at_once_are_concurrency_over_depth(tmp_path, lms, concurrency, depth,
                                                  writes_at_once):
    engine, world = _engine(tmp_path, lms, 45, _settings(concurrency, depth))
    # The first write is answered only once a second write has come, or after a second.
    lms.faults.hold(CREATE, until=CREATE, limit=1.0 if writes_at_once == 1 else 30.0)
    assert _sync(engine).status == "succeeded"
    assert lms.faults.held == [writes_at_once > 1]
    if writes_at_once == 1:
        assert _writes_met_by_writes(lms) == []
    _assert_matches_hr(lms, world)


def test_a_batch_not_read_back_is_not_recorded_done_and_is_read_before_resent(tmp_path, lms):
    engine, world = _engine(tmp_path, lms, 25, _settings(2, 2) + "\nmax_attempts = 1")
    engine.config.guards.breaker_min_ops = 100  # the subject is one batch, not the breaker
    # Batch 1's read-back fails while batch 2 is written: its users were created, but no
    # operation of it may count as done, and none may be created twice.
    lms.faults.hold(READ, until=CREATE)
    lms.faults.replace_next(READ, {"exception": "dml_read_exception",
                                   "errorcode": "dmlreadexception",
                                   "message": "Error reading from database"})
    first = _sync(engine)
    assert lms.faults.held == [True]
    ops = _ops(engine)
    unconfirmed = {k for k, o in ops.items() if o["status"] != "succeeded"}
    assert len(unconfirmed) == 10
    assert {ops[k]["error_class"] for k in unconfirmed} == {"transient"}
    assert first.counts["applied"].get("succeeded") == 15
    engine.clock.advance(hours=2)
    creates = _calls(lms, CREATE)
    again = asyncio.run(engine.apply_due(trigger="test"))
    assert again.counts["applied"].get("succeeded") == 10
    assert _calls(lms, CREATE) == creates  # found by a lookup, never sent again
    _assert_matches_hr(lms, world)


@pytest.mark.parametrize(("depth", "accepted"), [(0, False), (1, True), (16, True),
                                                 (17, False)])
def test_pipeline_depth_is_bounded(tmp_path, depth, accepted):
    raw = {"hris": {"type": "csv", "path": str(tmp_path / "e.csv")},
           "lms": {"type": "moodle", "base_url": "https://m.example", "token_env": "X",
                   "pipeline_depth": depth}}
    if accepted:
        assert config_from_dict(raw, tmp_path / "r.toml").lms.pipeline_depth == depth
        return
    with pytest.raises(ConfigError) as caught:
        config_from_dict(raw, tmp_path / "r.toml")
    assert "pipeline_depth" in str(caught.value)


# -- the last batch's read-back, split across the free streams ----------------------------

@pytest.mark.parametrize(("count", "streams", "parts"), [
    (49, 2, 1),  # one short of two parts of READ_PART_MIN: one call
    (50, 2, 2),  # exactly two parts' worth
    (51, 2, 2),  # one more: still two (never more parts than streams)
    (100, 1, 1),  # one stream: one call, whatever the size
    (74, 3, 2),  # three streams, but only two parts' worth
    (75, 3, 3),
    (0, 2, 1),
])
def test_read_parts_never_go_below_the_minimum_nor_above_the_streams(count, streams, parts):
    assert read_parts(count, streams) == parts == max(1, min(streams, count // READ_PART_MIN))


def test_divided_keeps_every_id_once_in_order_in_near_equal_runs():
    ids = list(range(101))
    runs = divided(ids, 2)
    assert [len(r) for r in runs] == [51, 50]
    assert [i for run in runs for i in run] == ids
    assert [len(r) for r in divided(list(range(75)), 3)] == [25, 25, 25]


@pytest.mark.parametrize(("people", "reads"), [(49, 1), (50, 2)])
def test_a_read_back_nothing_waits_behind_is_split_across_the_streams(tmp_path, lms, people,
                                                                     reads):
    engine, world = _engine(tmp_path, lms, people, "batch_size = 100\nconcurrency = 2\n"
                                                   "pipeline_depth = 2")
    # The first read-back part is answered only once another has come: split parts are
    # out at once, on the two workers a site with concurrency = 2 has.
    lms.faults.hold(READ, until=READ, limit=1.0 if reads == 1 else 30.0)
    report = _sync(engine)
    assert report.status == "succeeded", report.message
    assert _calls(lms, CREATE) == 1 and _calls(lms, READ) == reads
    assert lms.faults.held == [reads == 2]
    _assert_matches_hr(lms, world)
    assert {o["status"] for o in _ops(engine).values()} == {"succeeded"}


@pytest.mark.parametrize(("settings", "reads"), [
    ("concurrency = 2\npipeline_depth = 2", 3),  # batch 1 alone (a write waits), batch 2 split
    ("concurrency = 1\npipeline_depth = 1", 2),  # one stream: never split
])
def test_only_the_draining_read_back_is_split(tmp_path, lms, settings, reads):
    engine, world = _engine(tmp_path, lms, 100, "batch_size = 50\n" + settings)
    assert _sync(engine).status == "succeeded"
    assert _calls(lms, CREATE) == 2 and _calls(lms, READ) == reads
    _assert_matches_hr(lms, world)


def test_a_failed_part_of_a_split_read_back_leaves_the_batch_unconfirmed(tmp_path, lms):
    engine, world = _engine(tmp_path, lms, 50, "batch_size = 100\nconcurrency = 2\n"
                                               "pipeline_depth = 2\nmax_attempts = 1")
    engine.config.guards.breaker_min_ops = 100  # the subject is one batch, not the breaker
    lms.faults.replace_next(READ, {"exception": "dml_read_exception",
                                   "errorcode": "dmlreadexception",
                                   "message": "Error reading from database"})
    _sync(engine)
    assert _calls(lms, READ) == 2  # split: one part failed, the other was answered
    ops = _ops(engine)
    # One part's failure leaves the whole batch to be read again before anything is resent.
    assert "succeeded" not in {o["status"] for o in ops.values()}
    assert {o["error_class"] for o in ops.values()} == {"transient"}
    engine.clock.advance(hours=2)
    again = asyncio.run(engine.apply_due(trigger="test"))
    assert again.counts["applied"].get("succeeded") == 50
    assert _calls(lms, CREATE) == 1  # found by a lookup, never sent again
    _assert_matches_hr(lms, world)
