"""The series selectors in a PromQL expression: metric names with their label matchers.

Enough of PromQL for the dashboard's and the alert rules' queries: strings, range and
subquery brackets, label matchers, grouping clauses (`by (kind)`), function calls,
aggregations and binary operators. Grafana's `label_values(metric, label)` is understood
too. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<range>\[[^\]]*\])
  | (?P<matchers>\{[^}]*\})
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+\b)
  | (?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?)
  | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<variable>\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)
  | (?P<other>.)
""", re.VERBOSE)
MATCHER = re.compile(r"""\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*
                         ("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*,?""", re.VERBOSE)
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
# Words followed by a parenthesised list of label names, not of expressions.
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.+?)\s*,\s*([A-Za-z_]\w*)\s*\)\s*$")


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value)


class PromqlError(ValueError):
    pass


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def matchers_of(block: str) -> tuple[tuple[str, str, str], ...]:
    body, out, pos = block[1:-1], [], 0
    while pos < len(body.rstrip()):
        m = MATCHER.match(body, pos)
        if m is None:
            raise PromqlError(f"cannot read the label matchers {block!r} at {body[pos:]!r}")
        out.append((m.group(1), m.group(2), _unquote(m.group(3))))
        pos = m.end()
    return tuple(out)


def selectors(expr: str) -> list[Selector]:
    """Every series selector in ``expr``; a name followed by `(` is a function."""
    found = LABEL_VALUES.match(expr)
    if found:  # Grafana's variable query: the selector, then a label name
        return selectors(found.group(1))
    tokens = [(m.lastgroup, m.group()) for m in TOKEN.finditer(expr)
              if m.lastgroup != "space"]
    out: list[Selector] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else (None, "")
        if kind == "name" and text in GROUPING:
            if nxt[1] != "(":
                raise PromqlError(f"{text} without its label list in {expr!r}")
            i = next(j for j in range(i + 1, len(tokens)) if tokens[j][1] == ")") + 1
            continue
        if kind == "name" and text not in KEYWORDS and text not in AGGREGATIONS \
                and nxt[1] != "(":
            matchers = matchers_of(nxt[1]) if nxt[0] == "matchers" else ()
            out.append(Selector(text, matchers))
        elif kind == "matchers" and (i == 0 or tokens[i - 1][0] != "name"):
            raise PromqlError(f"a selector without a metric name in {expr!r}")
        i += 1
    return out


def matches(labels: dict[str, str], matchers: tuple[tuple[str, str, str], ...],
            ignore: frozenset[str] = frozenset()) -> bool:
    """Whether a sample's labels satisfy the matchers (those on ``ignore`` labels, such
    as the target labels Prometheus adds, are left out)."""
    for label, op, value in matchers:
        if label in ignore:
            continue
        have = labels.get(label, "")
        ok = {"=": have == value, "!=": have != value,
              "=~": re.fullmatch(value, have) is not None,
              "!~": re.fullmatch(value, have) is None}[op]
        if not ok:
            return False
    return True
