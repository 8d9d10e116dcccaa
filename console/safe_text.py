"""Text from HR and from operators, made safe to print on a terminal.

An actor name or an HR value can hold ESC (which drives the terminal: colours, cursor
moves, a rewritten screen), BEL, a lone carriage return (which overwrites the line), or
bidirectional overrides and isolates (which make text read as something it is not). Shown
escaped (\\x1b, \\u202e), they are visible for what they are and do nothing.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

# C0 controls, DEL and C1 controls; the bidirectional marks, embeddings, overrides and
# isolates (U+061C, U+200E/F, U+202A-E, U+2066-9); the line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                     "\u2066-\u2069]")
# Whole output keeps its line structure: newlines, tabs and CR LF line ends (CSV's).
_UNSAFE_IN_OUTPUT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f"
                               "\u2028\u2029\u202a-\u202e\u2066-\u2069]|\r(?!\n)")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(value: Any) -> str:
    """One value (an actor, an HR field) for a single-line display: every control and
    bidirectional character escaped, newlines and tabs included."""
    return _UNSAFE.sub(_escape, "" if value is None else str(value))


def escape_output(text: str) -> str:
    """A whole block of output: as escape_controls, but newlines, tabs and CR LF stay."""
    return _UNSAFE_IN_OUTPUT.sub(_escape, text)


class _EscapingStream:
    """stdout with every write escaped; everything else passes to the real stream."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        self._inner.write(escape_output(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# Commands that own the terminal (Textual) or stream their own JSON lines.
_RAW = frozenset({"console", "serve", "demo"})


@contextmanager
def escaped_stdout(command: str | None) -> Iterator[None]:
    """While a command runs, what it prints (stdout and stderr) cannot drive the
    terminal."""
    if command in _RAW:
        yield
        return
    out, err = sys.stdout, sys.stderr
    sys.stdout = _EscapingStream(out)
    sys.stderr = _EscapingStream(err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err
