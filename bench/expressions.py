"""Evaluations per second of a compiled mapping expression, against plain Python doing
the same in the same run (the baseline).

    python -m bench.expressions --people 20000

The engine evaluates about ten expressions per changed person, so an expression must
cost a few microseconds, not a parse or a tree walk per call. Three expressions are
timed over generated people (names with and without accents, half with a hire date):
a login built from names, a lookup with a default, and a date condition. Each is
checked to give the plain function's answer for every person before it is timed.
"""

from __future__ import annotations

import argparse
import time
import unicodedata
from collections.abc import Callable
from datetime import date

from rostersync.sync.expressions import compile_expression

TODAY = date(2026, 12, 5)
TABLES = {"country": {"Berlin": "DE", "Oslo": "NO", "Paris": "FR"}}
FIRST = ["Jürgen", "Anna", "Øyvind", "François", "Li", "Zoë", "Mary Ann", "Łukasz"]
LAST = ["Groß", "Smith", "Nørgaard", "Dvořák", "O'Brien", "Lee", "Müller", "Kowalski"]
CITIES = ["Berlin", "Oslo", "Paris", "Lisbon", "Remote"]
_LETTERS = str.maketrans({"ß": "ss", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L"})


def people(count: int) -> list[dict[str, object]]:
    return [{"first_name": FIRST[i % len(FIRST)], "last_name": LAST[i * 7 % len(LAST)],
             "location": CITIES[i % len(CITIES)],
             "hire_date": f"20{10 + i % 16}-0{1 + i % 9}-1{i % 10}" if i % 2 else None}
            for i in range(count)]


def _plain_normalize(text: str) -> str:
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def plain_login(p: dict[str, object]) -> object:
    first, last = p.get("first_name"), p.get("last_name")
    if first is None or last is None:
        return None
    return _plain_normalize(first).lower() + "." + last.lower()  # type: ignore[union-attr]


def plain_country(p: dict[str, object]) -> object:
    location = p.get("location")
    return None if location is None else TABLES["country"].get(location, "XX")


def plain_cohort(p: dict[str, object]) -> object:
    hired = p.get("hire_date")
    if not hired:
        return "none"
    return "new" if (TODAY - date.fromisoformat(hired)).days < 90 else "tenured"  # type: ignore[arg-type]


CASES: list[tuple[str, str, Callable[[dict[str, object]], object]]] = [
    ("login", 'lower(normalize_diacritics(first_name)) + "." + lower(last_name)',
     plain_login),
    ("country", 'lookup("country", location, "XX")', plain_country),
    ("cohort", 'if(is_empty(hire_date), "none", if(days_since(hire_date) < 90, "new", '
               '"tenured"))', plain_cohort),
]


def rate(run: Callable[[dict[str, object]], object], rows: list[dict[str, object]],
         repeat: int) -> float:
    """Best of ``repeat`` passes over all rows, in evaluations per second."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for row in rows:
            run(row)
        best = min(best, time.perf_counter() - start)
    return len(rows) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = people(args.people)
    print(f"\nExpression evaluation, {args.people} people, best of {args.repeat}")
    print(f"{'':<10}{'compiled/s':>14}{'plain Python/s':>16}{'ratio':>8}{'us/eval':>10}")
    for name, text, plain in CASES:
        expression = compile_expression(text, name=name)

        def compiled(row: dict[str, object], e=expression) -> object:
            return e.evaluate(row, today=TODAY, tables=TABLES)

        mismatched = [r for r in rows if compiled(r) != plain(r)]
        if mismatched:
            raise SystemExit(f"{name}: the expression and the plain function disagree on "
                             f"{mismatched[0]}")
        fast, base = rate(compiled, rows, args.repeat), rate(plain, rows, args.repeat)
        print(f"{name:<10}{fast:>14,.0f}{base:>16,.0f}{base / fast:>7.1f}x"
              f"{1e6 / fast:>10.2f}")
    start = time.perf_counter()
    for _ in range(1000):
        compile_expression(CASES[0][1], name="login")
    per_compile = (time.perf_counter() - start) / 1000
    print(f"compiling the login expression once: {per_compile * 1000:.3f} ms")


if __name__ == "__main__":
    main()
