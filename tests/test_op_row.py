"""The executor's typed operation record names exactly the columns of the ops table, so
the type checker's view of an operation cannot drift from the database's."""

from __future__ import annotations

from datetime import UTC, datetime

from rostersync.storage import ops as op_store
from rostersync.storage.db import Store
from rostersync.storage.op_row import OpRow
from rostersync.sync.models import OpKind
from rostersync.sync.plan import NewOp


def _columns(store: Store) -> set[str]:
    return {row["name"] for row in store.rows("SELECT name FROM pragma_table_info('ops')")}


def test_the_record_names_every_column_and_only_the_executor_notes_beside_them(tmp_path):
    store = Store(tmp_path / "ops.db")
    required, optional = OpRow.__required_keys__, OpRow.__optional_keys__
    assert set(required) == _columns(store)
    assert set(optional) == {"attempt", "member_lms_id", "unfit", "cached", "found"}


def test_a_due_operation_has_every_required_key(tmp_path):
    store = Store(tmp_path / "ops.db")
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with store.tx() as conn:
        op_store.insert_ops(conn, now, None, [NewOp(
            employee_id="E1", kind=OpKind.update, payload={"changes": {"title": "Lead"}},
            idem_key="E1:update:1", reason="changed in HR", lms_id="L1", not_before=None)],
            max_attempts=6)
    [due] = op_store.due_ops(store, now)
    assert set(due) == set(OpRow.__required_keys__)
    assert due["payload"] == {"changes": {"title": "Lead"}}  # decoded
