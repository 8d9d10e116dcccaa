"""Build connectors from their config sections (the one place that knows them all)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rostersync.sync.connectors.base import HrisSource, LmsTarget

if TYPE_CHECKING:
    from rostersync.sync.config import HrisConfig, LmsConfig


def make_source(config: HrisConfig) -> HrisSource:
    if config.type == "csv":
        from rostersync.sync.connectors.csv_source import CsvSource

        return CsvSource(config)
    if config.type == "bamboohr":
        from rostersync.sync.connectors.bamboohr import BambooHRSource

        return BambooHRSource(config)
    if config.type == "workday":
        from rostersync.sync.connectors.workday import WorkdaySource

        return WorkdaySource(config)
    if config.type == "successfactors":
        from rostersync.sync.connectors.successfactors import SuccessFactorsSource

        return SuccessFactorsSource(config)
    raise ValueError(f"unknown HRIS type {config.type!r}")


def make_target(config: LmsConfig) -> LmsTarget:
    if config.type == "scim":
        from rostersync.sync.connectors.scim import ScimTarget

        return ScimTarget(config)
    if config.type == "moodle":
        from rostersync.sync.connectors.moodle import MoodleTarget

        return MoodleTarget(config)
    if config.type == "canvas":
        from rostersync.sync.connectors.canvas import CanvasTarget

        return CanvasTarget(config)
    raise ValueError(f"unknown LMS type {config.type!r}")
