"""Properties of the mapping language: any text compiles to an expression or fails with
one ExpressionError (never another exception, never a hang), and any compiled expression
evaluated over any values gives a value, an EvaluationError or an UnknownValue.

Hypothesis's per-example deadline is the hang detector: the length and nesting limits
(MAX_LENGTH, MAX_DEPTH) and the text-size limit (MAX_TEXT) keep every example fast.
"""

from __future__ import annotations

import string
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rostersync.sync.expressions import (
    FUNCTIONS,
    HR_FIELDS,
    MAX_DEPTH,
    MAX_LENGTH,
    EvaluationError,
    ExpressionError,
    UnknownValue,
    compile_expression,
)

TODAY = date(2026, 12, 5)
TABLES = {"department": {"SLS": "Sales", "": "empty"}, "country": {"Oslo": "NO"}}
FIELDS = [*sorted(HR_FIELDS), "attributes.country", "attributes.level"]
SETTINGS = settings(max_examples=400, deadline=1000,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def compiles_or_one_error(text: str) -> object:
    try:
        expression = compile_expression(text, name="attr")
    except ExpressionError as error:
        assert error.name == "attr"
        assert 1 <= error.column <= max(len(text), MAX_LENGTH) + 1
        assert str(error) == f"attr: column {error.column}: {error.message}"
        assert "\n" not in error.message and "Traceback" not in error.message
        return None
    assert expression.inputs <= set(HR_FIELDS) | {i for i in expression.inputs
                                                   if i.startswith("attributes.")}
    return expression


# --- texts of every shape -----------------------------------------------------------

@SETTINGS
@given(st.text(max_size=300))
def test_any_text_compiles_or_fails_with_one_expression_error(text):
    compiles_or_one_error(text)


TOKENS = st.sampled_from([
    "(", ")", ",", "+", "-", "==", "!=", "<", "<=", ">", ">=", "=", "&", "[", "]", ".",
    "'", '"', "\\", "and", "or", "not", "true", "false", "null", "0", "12", "1.5", "1.",
    "99999999999999999999", '"x"', "'y'", '"\\u00e9"', '"\\q"', "\n", " ", "\t",
    *FIELDS, *FUNCTIONS, "attributes.", "attributes.a.b", "Lower", "_x", "é",
])


@SETTINGS
@given(st.lists(TOKENS, max_size=60).map(" ".join))
def test_any_token_soup_compiles_or_fails_with_one_expression_error(text):
    compiles_or_one_error(text)


@SETTINGS
@given(st.lists(TOKENS, max_size=60).map("".join))
def test_any_glued_token_soup_compiles_or_fails_with_one_expression_error(text):
    compiles_or_one_error(text)


def test_huge_and_deep_inputs_fail_fast_with_one_error():
    for text in ["(" * 100_000, "-" * 100_000 + "1", "not " * 50_000 + "true",
                 "lower(" * (MAX_DEPTH + 1) + "'x'" + ")" * (MAX_DEPTH + 1),
                 '"' + "\\" * 10_000, "a" * (MAX_LENGTH + 1)]:
        try:
            compile_expression(text, name="attr")
        except ExpressionError:
            continue
        raise AssertionError(f"{text[:20]!r}... compiled")


# --- well-formed expressions over any values ---------------------------------------

TEXTS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "true", "FALSE", "12", "-3", "1.5", "2024-05-01",
                     "2024-02-30", "31.01.2025", "SLS", "Oslo", "%Y-%m-%d", "%d.%m.%Y", "/",
                     "%", "a/b/c", "Jürgen Groß", "\x00", "9" * 30]),
)
VALUES = st.one_of(
    st.none(), TEXTS, st.integers(), st.floats(), st.booleans(), st.dates(),
    st.datetimes(),
)


def literal(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() or c == " " else " " for c in text) + '"'


BASE = st.one_of(
    st.sampled_from(FIELDS),
    st.builds(literal, st.one_of(st.none(), st.booleans(), st.integers(-400, 400), TEXTS)),
    st.just("today()"),
)


def _call(draw_args: list[str], name: str) -> str:
    function = FUNCTIONS[name]
    if name in ("lookup", "lookup_strict"):
        table = '"department"' if len(draw_args[0]) % 3 else '"country"'
        if len(draw_args[0]) % 7 == 0:
            table = '"missing"'
        args = [table, *draw_args[1:]]
    else:
        args = draw_args
    most = len(args) if function.max_args is None else function.max_args
    count = max(function.min_args, min(len(args), most))
    if name == "switch" and count % 2:
        count += 1
    while len(args) < count:
        args.append("null")
    return f"{name}({', '.join(args[:count])})"


def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(_call, st.lists(inner, min_size=1, max_size=6),
                  st.sampled_from(sorted(FUNCTIONS))),
        st.builds(lambda a, op, b: f"({a} {op} {b})", inner,
                  st.sampled_from(["+", "-", "==", "!=", "<", "<=", ">", ">=", "and", "or"]),
                  inner),
        st.builds(lambda a: f"not {a}", inner),
        st.builds(lambda a: f"-{a}", inner),
        st.builds(lambda a: f"({a})", inner),
    )


EXPRESSIONS = st.recursive(BASE, extend, max_leaves=25)


@SETTINGS
@given(EXPRESSIONS, st.fixed_dictionaries({}, optional={f: VALUES for f in FIELDS}),
       st.booleans())
def test_any_compiled_expression_gives_a_value_or_one_evaluation_error(text, values, tables):
    expression = compiles_or_one_error(text)
    if expression is None:
        return
    try:
        result = expression.evaluate(values, today=TODAY, tables=TABLES if tables else None)
    except EvaluationError as error:
        assert error.name == "attr" and error.function
        assert str(error).startswith(f"attr: {error.function}: ")
        assert "\n" not in str(error)
        # Every error is one a function foresaw, not the catch-all for a Python exception.
        assert "cannot be used (" not in error.reason, error
        return
    except UnknownValue as unknown:
        assert unknown.table in TABLES and unknown.name == "attr"
        return
    assert result is None or isinstance(result, str | int | float | bool | date)


@SETTINGS
@given(EXPRESSIONS)
def test_generated_expressions_mostly_compile(text):
    # The generator writes well-formed expressions; only the limits may refuse one.
    try:
        compile_expression(text, name="attr")
    except ExpressionError as error:
        assert "nests deeper" in error.message or "longer than" in error.message, error


ALPHABET = string.ascii_letters + string.digits + "_.(),+-<>=!'\" \\"


@SETTINGS
@given(st.text(alphabet=ALPHABET, max_size=200))
def test_any_text_of_the_languages_own_characters_compiles_or_fails_cleanly(text):
    compiles_or_one_error(text)
