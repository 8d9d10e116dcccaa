"""Reading ids and other text out of JSON answers without trusting their types.

Wire formats carry ids as strings (or, for LMS record ids, numbers). A server that sends
an object or a list where an id belongs must not have the Python text of it (``"{'a': 1}"``)
taken as somebody's key: that would create or link an account for a person who does not
exist. These pure helpers say which value is unfit, so each connector can refuse the
record or the answer with one sentence naming the field and the value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any


def json_kind(value: Any) -> str:
    """The JSON name of a value's type, as an operator would say it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else type(value).__name__


def shown(value: Any, limit: int = 80) -> str:
    """A value as JSON, cut to ``limit`` characters, for a message."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:  # a circular structure cannot come from json.loads, but be safe
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def is_text_id(value: Any) -> bool:
    """A string or a whole number (not a boolean): what an id may arrive as."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def unfit_text(record: Mapping[str, Any], fields: Iterable[str]) -> tuple[str, Any] | None:
    """The first of ``fields`` whose value is present but is an object, a list or a
    boolean (none of which is the text of an id or a name), as (field, value)."""
    for field in fields:
        value = record.get(field)
        if value is not None and isinstance(value, dict | list | bool):
            return field, value
    return None


def unfit_sentence(field: str, value: Any) -> str:
    return f"{field} is a JSON {json_kind(value)} ({shown(value)}), not text"


def other_person(ids: Mapping[str, tuple[str | None, str | None]]) -> str | None:
    """Which id of an answer names someone other than asked: field -> (asked, answered).
    Ids are compared exactly, except a login or e-mail (any case); an id the answer
    leaves out names nobody else. None when all agree."""
    for field, (asked, answered) in ids.items():
        if not asked or answered is None:
            continue
        caseless = field.lower() in ("username", "user_name", "email", "login_id")
        if (answered.casefold() != asked.casefold()) if caseless else answered != asked:
            return f"{field} {shown(answered)}, not {shown(asked)}"
    return None
