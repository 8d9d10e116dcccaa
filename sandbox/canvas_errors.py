"""The Canvas sandbox's refusals, shaped as Canvas answers them (docs/canvas.md §7.2)."""

from __future__ import annotations

from typing import Any

MAX_NAME = 255  # names of users and groups (Canvas's string columns)


class Invalid(Exception):
    """A refused write: the HTTP status and Canvas's ``{"errors": ...}`` body."""

    def __init__(self, status: int, errors: Any) -> None:
        super().__init__(str(errors))
        self.status = status
        self.body = {"errors": errors}


class NotFound(Exception):
    pass


def field_error(status: int, obj: str | None, attribute: str, kind: str,
                message: str) -> Invalid:
    """A validation refusal: ``{attribute: [...]}``, nested under ``obj`` when given."""
    detail = {attribute: [{"attribute": attribute, "type": kind, "message": message}]}
    return Invalid(status, {obj: detail} if obj else detail)
