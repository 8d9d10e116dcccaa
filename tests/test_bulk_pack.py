"""Packing operations into batches (sync.bulk): the LMS's limits at their edges, managers
before their reports, and a report's manager referenced in its own batch or waited for
in an earlier one."""

from __future__ import annotations

import pytest

from rostersync.sync.bulk import BatchItem, BatchLimits, managers_first, pack, split
from rostersync.sync.models import Account


def _items(n: int) -> list[BatchItem]:
    return [BatchItem(str(i), "create", account=Account(f"E{i}", f"u{i}")) for i in range(n)]


@pytest.mark.parametrize(("n", "sizes"), [(9, [9]), (10, [10]), (11, [10, 1])])
def test_at_most_max_items_per_batch(n, sizes):
    batches = pack(_items(n), BatchLimits(max_items=10), lambda _i: 100)
    assert [len(b.items) for b in batches] == sizes


@pytest.mark.parametrize(("budget", "sizes"), [(5 * 101 + 50, [5, 5]),  # exactly five fit
                                               (5 * 101 + 49, [4, 4, 2]),  # one byte short
                                               (5 * 101 + 51, [5, 5])])
def test_at_most_max_bytes_per_batch_envelope_included(budget, sizes):
    # Each item costs 100 bytes plus its comma; the request's own 50 bytes count too.
    batches = pack(_items(10), BatchLimits(max_items=100, max_bytes=budget),
                   lambda _i: 100, envelope=50)
    assert [len(b.items) for b in batches] == sizes


def test_an_item_larger_than_the_budget_goes_alone():
    items = _items(3)
    batches = pack(items, BatchLimits(max_items=10, max_bytes=250),
                   lambda i: 1000 if i.ref == "1" else 100)
    assert [[i.ref for i in b.items] for b in batches] == [["0"], ["1"], ["2"]]


def test_managers_come_first_and_their_reports_follow_them():
    manager_of = {"c1": "m", "m": "top", "c2": "m", "x": None, "top": None, "o": "elsewhere"}
    order = managers_first(["c1", "x", "c2", "m", "top", "o"], manager_of)
    assert order.index("top") < order.index("m") < order.index("c1") < order.index("c2")
    assert order[order.index("m") + 1:order.index("m") + 3] == ["c1", "c2"]  # together
    assert sorted(order) == sorted(manager_of)


def test_a_loop_of_managers_still_yields_everyone_once():
    order = managers_first(["a", "b", "c"], {"a": "b", "b": "a", "c": "a"})
    assert sorted(order) == ["a", "b", "c"]


def test_a_manager_in_the_same_batch_is_referenced_in_an_earlier_one_awaited():
    items = _items(5)
    manager_ref_of = {"1": "0", "4": "1"}  # 1 reports to 0, 4 reports to 1
    batches = pack(items, BatchLimits(max_items=3, references=True), lambda _i: 10,
                   manager_ref_of)
    assert [[i.ref for i in b.items] for b in batches] == [["0", "1", "2"], ["3", "4"]]
    assert items[1].manager_ref == "0"  # same request: bulkId
    assert items[4].manager_ref is None and batches[1].after == {0}  # waits for batch 0
    # A target without references never gets one.
    fresh = _items(2)
    pack(fresh, BatchLimits(max_items=3), lambda _i: 10, {"1": "0"})
    assert fresh[1].manager_ref is None


def test_split_halves():
    assert split([1, 2, 3]) == ([1], [2, 3])
    assert split([1, 2]) == ([1], [2])
