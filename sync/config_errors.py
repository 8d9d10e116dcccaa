"""Config validation errors as sentences a person can act on: every problem at once (a
config with three mistakes needs one round trip, not three), each naming its key, and a
"did you mean" for a key that is not a setting but is close to one."""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

# The section types' discriminator values: pydantic puts them in an error's location
# ("hris.csv.path"), a person writes "hris.path".
DISCRIMINATORS = ("csv", "bamboohr", "workday", "successfactors", "scim", "moodle", "canvas")


def key_of(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p in DISCRIMINATORS))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models a field's annotation can hold (through Optional, unions, Annotated,
    lists and dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = get_origin(annotation)
    if origin is Annotated:
        return _models_in(get_args(annotation)[0])
    if origin in (Union, types.UnionType, list, dict, tuple):
        return [m for arg in get_args(annotation) for m in _models_in(arg)]
    return []


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model that holds the last key of ``loc`` (list indexes and dict keys skipped;
    a discriminator value picks the union member it names)."""
    candidates = [root]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if isinstance(part, str) and part in DISCRIMINATORS:
            tagged = [m for m in candidates
                      if getattr(m.model_fields.get("type"), "default", None) == part]
            candidates = tagged or candidates
            continue
        nxt: list[type[BaseModel]] = []
        for model in candidates:
            field = model.model_fields.get(str(part))
            if field is not None:
                nxt.extend(_models_in(field.annotation))
        if not nxt:
            return None
        candidates = nxt
    return candidates[0] if len(candidates) == 1 else None


def suggestion(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """' (did you mean "x"?)' for an unknown key close to a known one, else ''."""
    model = _model_at(root, loc)
    if model is None or not loc:
        return ""
    known = [name for name, f in model.model_fields.items() if not f.exclude]
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.75)
    if not close:
        return ""
    parent = key_of(loc[:-1])
    return f" (did you mean {(parent + '.' if parent else '') + close[0]!r}?)"


_NOT_ECHOED = {"database.url"}


def describe(err: ErrorDetails, root: type[BaseModel]) -> str:
    """One problem, as a clause naming its key."""
    key = key_of(err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        return f"key {key!r} is required but missing"
    if err["type"] == "extra_forbidden":
        return f"key {key!r} is not a known setting{suggestion(root, err['loc'])}"
    if not key:  # a rule across sections names its keys itself
        return msg
    shown = err.get("input")
    # A database URL may hold the password the message refuses: never echoed.
    value = "" if isinstance(shown, dict | list) or key in _NOT_ECHOED else f" (got {shown!r})"
    return f"key {key!r}: {msg}{value}"


def summarise(errors: list[ErrorDetails], root: type[BaseModel]) -> str:
    """Every problem, in the order found, each once; numbered when there are several."""
    problems = list(dict.fromkeys(describe(e, root) for e in errors))
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems: " + "; ".join(
        f"({i}) {p}" for i, p in enumerate(problems, 1))
