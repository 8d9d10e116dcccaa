"""Build connectors from their config sections (the one place that knows them all)."""

from __future__ import annotations

from sync.connectors.base import HrisSource, LmsTarget


def make_source(config) -> HrisSource:
    if config.type == "csv":
        from sync.connectors.csv_source import CsvSource

        return CsvSource(config)
    if config.type == "bamboohr":
        from sync.connectors.bamboohr import BambooHRSource

        return BambooHRSource(config)
    raise ValueError(f"unknown HRIS type {config.type!r}")


def make_target(config) -> LmsTarget:
    if config.type == "scim":
        from sync.connectors.scim import ScimTarget

        return ScimTarget(config)
    raise ValueError(f"unknown LMS type {config.type!r}")
