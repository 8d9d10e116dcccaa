"""Snapshot tests of every console view (pytest-textual-snapshot): frozen clock, seeded
database, no live timers. Update with `pytest --snapshot-update` after a deliberate change."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rostersync.sandbox.scim_server import ScimSandbox
from tests.console_harness import SIZE, TOKEN, Seeded, make_app, seed
from tests.console_views import SIZES, VIEWS


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Iterator[Seeded]:
    with ScimSandbox(token=TOKEN) as lms:
        yield seed(tmp_path_factory.mktemp("console-snap-world"), lms)


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_view(view, seeded, tmp_path, snap_compare):
    read_only, steps = VIEWS[view]
    app = make_app(seeded, tmp_path, read_only=read_only)
    assert snap_compare(app, terminal_size=SIZES.get(view, SIZE), run_before=steps)
