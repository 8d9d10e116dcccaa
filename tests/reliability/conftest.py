"""The reliability suites: every test here carries the `reliability` marker, trial counts
come from ``figures.scale`` (ROSTERSYNC_RELIABILITY=full for the full runs), and the
figures they measured are printed when the session ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability import figures

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.reliability)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    counts = figures.snapshot()
    if not counts:
        return
    mode = "full" if figures.FULL else "fast (CI subset)"
    terminalreporter.section(f"reliability figures, {mode}")
    for name, value in counts.items():
        terminalreporter.write_line(f"{name:<52} {value:>8}")
