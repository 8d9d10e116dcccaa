"""Schema drift: configured source columns that the export no longer offers (pure).

HR renames report columns without telling anyone. A configured column that is simply
absent would read as empty for everyone: the field silently stops being managed (and a
missing termination date hides every future-dated termination). So a configured column
missing from the source rejects the whole feed, naming the column and the config key,
unless the config lists it in ``optional_columns``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MissingColumn:
    column: str  # as the source names it: a CSV header, a BambooHR field id
    key: str  # the config key that names it, e.g. "hris.columns.department"


def missing_columns(configured: Iterable[tuple[str, str]], present: Collection[str],
                    optional: Iterable[str] = ()) -> list[MissingColumn]:
    """Configured columns, as (config key, source column) pairs, absent from ``present``,
    in config order, leaving out those marked optional; each column named once."""
    skip = set(optional)
    out: list[MissingColumn] = []
    for key, column in configured:
        if column not in present and column not in skip:
            skip.add(column)  # two keys naming one column: the first is enough
            out.append(MissingColumn(column, key))
    return out


def describe(missing: list[MissingColumn], where: str, noun: str = "column") -> str:
    """One sentence for a rejected feed: what is missing, which key names it, the way out."""
    listed = ", ".join(f"{m.column!r} (named by {m.key})" for m in missing)
    if len(missing) == 1:
        what = f"the configured {noun} {listed} is missing from {where}"
    else:
        what = f"the configured {noun}s {listed} are missing from {where}"
    return (f"{what}; restore it in the export, or correct the config, or list it in "
            "hris.optional_columns if the feed may lack it")


def column_keys(columns: Mapping[str, str], attributes: Mapping[str, str],
                section: str = "hris") -> list[tuple[str, str]]:
    """(config key, source column) for a source mapped by ``columns`` and ``attributes``."""
    return ([(f"{section}.columns.{field}", column) for field, column in columns.items()]
            + [(f"{section}.attributes.{name}", column) for name, column in attributes.items()])


def column_changes(before: list[str] | None,
                   after: list[str] | None) -> dict[str, dict[str, list[str]]]:
    """Columns that appeared or disappeared since the last accepted feed, as a run count
    (``{"columns": {"appeared": [...], "disappeared": [...]}}``); empty when either side
    is unknown or nothing changed. A configured column that disappears never gets here
    (the feed is rejected): this shows the rest, optional and unmapped columns."""
    if before is None or after is None:
        return {}
    old, new = set(before), set(after)
    changes = {"appeared": [c for c in after if c not in old],
               "disappeared": [c for c in before if c not in new]}
    changes = {k: v for k, v in changes.items() if v}
    return {"columns": changes} if changes else {}
