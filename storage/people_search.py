"""Finding people by what an operator remembers of them: part of a name, an e-mail or an
id. The lists' filters and the command palette both ask here; so does the palette for a
run or an operation named by its id.

A person's name and e-mail live only inside ``people.record`` (the Person JSON), so a
match reads that JSON. Parsing JSON is the expensive part (about 1 µs a record, against
0.2 µs for a plain LIKE over the same text), so every match first runs a plain LIKE over
the raw record and parses only the records that contain the word somewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rostersync.storage.db import Store
from rostersync.storage.people import chunks

# One json_extract with several paths parses the record once and returns the fields as a
# JSON array: a word matches when it is a substring of any of them.
_NAME_AND_EMAIL = ("json_extract({t}.record, '$.first_name', '$.last_name', "
                   "'$.preferred_name', '$.email')")
_FIELDS = ("json_extract(record, '$.first_name') AS first_name, "
           "json_extract(record, '$.last_name') AS last_name, "
           "json_extract(record, '$.preferred_name') AS preferred_name, "
           "json_extract(record, '$.email') AS email")
_WILDCARDS = ("\\", "%", "_")


def like_pattern(word: str) -> str:
    """``%word%`` with LIKE's wildcards taken literally: `pending_termination` must not
    match `pendingXtermination`, nor `E_0001` match `E00001` (see ``like``)."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def like(word: str) -> str:
    """The LIKE operator for ``like_pattern(word)``: with an ESCAPE clause only when the
    word has something to escape, as the clause costs a fifth more per comparison."""
    return "LIKE ? ESCAPE '\\'" if any(c in word for c in _WILDCARDS) else "LIKE ?"


def may_name_a_person(word: str) -> bool:
    """Whether a list's filter matches ``word`` against names and e-mails, the costly part
    of a filter. Names hold no digits, so a word with a digit (an id, a count, an HTTP
    status) is matched against the e-mail only when it looks like one (has an @): the
    common id filter ("E00012") reads no record. One letter (the first keystroke of every
    filter) is in nearly every name: it narrows nothing, so it is not looked for there."""
    if len(word) < 2:
        return False
    return "@" in word or not any(ch.isdigit() for ch in word)


def name_match(table: str, word: str) -> tuple[str, list[Any]]:
    """SQL that is true when ``table``'s record has ``word`` in a name or the e-mail."""
    pattern, op = like_pattern(word), like(word)
    if '"' in word or "\\" in word:
        # JSON escapes these in the raw text, so the raw LIKE cannot pre-screen.
        return f"{_NAME_AND_EMAIL.format(t=table)} {op}", [pattern]
    return (f"({table}.record {op} AND {_NAME_AND_EMAIL.format(t=table)} {op})",
            [pattern, pattern])


def person_match(person_column: str, word: str) -> tuple[str, list[Any]]:
    """SQL for a list's filter: the row's person (``person_column``, qualified by its
    table, e.g. ``ops.employee_id``) has ``word`` in a name or the e-mail.

    Correlated on purpose: its cost follows the list, not the people table. It runs for
    each row no cheaper column matched: a primary-key lookup and a LIKE over the raw
    record (1-2 µs; 0.1-0.2 s per 100,000 rows, counted and paged: twice a keystroke),
    plus a JSON parse where the raw text has the word. An ``IN (SELECT ...)`` would read
    every person's record instead (about 1 s at a million people) on each keystroke. The
    screen never queues loads (a keystroke during a load asks for one more, not one each),
    so a slow filter lags the typing but never piles up."""
    condition, params = name_match("p", word)
    return (f"EXISTS (SELECT 1 FROM people p WHERE p.employee_id = {person_column} "
            f"AND {condition})", params)


@dataclass(frozen=True)
class PersonHit:
    employee_id: str
    name: str
    email: str | None


def display_name(row: dict[str, Any]) -> str:
    """As sync.models.Person.display_name: the preferred name, else the first."""
    first = row.get("preferred_name") or row.get("first_name") or ""
    return f"{first} {row.get('last_name') or ''}".strip()


def search(store: Store, text: str, limit: int = 20) -> list[PersonHit]:
    """People whose id, name or e-mail contains every word of ``text`` (any case).

    One statement, stopping at ``limit`` hits. Cost at a million people: a word many
    share ("an") stops within a few thousand rows; a word nobody has reads every record
    once (about 0.2 s, plus 1 µs for each record that contains it somewhere), in a
    thread, so the palette stays responsive while it runs."""
    words = text.split()
    if not words:
        return []
    clauses: list[str] = []
    params: list[Any] = []
    for word in words:
        condition, extra = name_match("people", word)
        clauses.append(f"(people.employee_id {like(word)} OR {condition})")
        params += [like_pattern(word), *extra]
    rows = store.rows(f"SELECT employee_id, {_FIELDS} FROM people WHERE "
                      + " AND ".join(clauses) + " LIMIT ?", (*params, limit))
    return [PersonHit(r["employee_id"], display_name(r), r["email"]) for r in rows]


def names_for(store: Store, employee_ids: list[str]) -> dict[str, str]:
    """employee_id -> display name, for one page of a list (primary-key lookups)."""
    out: dict[str, str] = {}
    for part in chunks(sorted({e for e in employee_ids if e})):
        marks = ",".join("?" * len(part))
        for r in store.rows(f"SELECT employee_id, {_FIELDS} FROM people "
                            f"WHERE employee_id IN ({marks})", part):
            name = display_name(r)
            if name:
                out[r["employee_id"]] = name
    return out


# -- entities by id, for the palette -----------------------------------------------------

def run_by_id(store: Store, run_id: int) -> dict[str, Any] | None:
    rows = store.rows("SELECT id, kind, trigger, status, started_at FROM runs WHERE id = ?",
                      (run_id,))
    return rows[0] if rows else None


def op_by_id(store: Store, op_id: int) -> dict[str, Any] | None:
    rows = store.rows("SELECT id, employee_id, kind, status FROM ops WHERE id = ?", (op_id,))
    return rows[0] if rows else None
