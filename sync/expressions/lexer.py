r"""Expression text -> tokens, each with its 1-based column (pure).

Tokens: text in double or single quotes (escapes \\ \" \' \n \t \uXXXX), numbers (12, 1.5),
names (a field, a function, or the words true false null and or not), and the operators
( ) , + - == != < <= > >=.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Longer than any sensible attribute mapping; bounds the work a config can ask for.
MAX_LENGTH = 4_000
# Digits in a number literal (either side of the point): plenty for any real constant.
MAX_DIGITS = 18

KEYWORDS = frozenset({"true", "false", "null", "and", "or", "not"})

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_NUMBER = re.compile(r"[0-9]+(?:[A-Za-z_.][A-Za-z0-9_.]*)?")
_SPACE = re.compile(r"\s+")
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "(", ")", ",", "+", "-")
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t"}
# Characters people bring from other products, with what to write instead.
_HINTS = {
    "[": "field names are written without brackets, e.g. first_name",
    "]": "field names are written without brackets, e.g. first_name",
    "&": "use '+' to join texts",
    "=": "use '==' to compare",
    "!": "use '!=' or not(...)",
    "|": "use 'or'",
    "?": "use if(condition, then, else)",
    ".": "a name cannot start with '.'",
}


class LexError(Exception):
    def __init__(self, column: int, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # name, string, number, op, end
    value: Any
    column: int  # 1-based

    def shown(self) -> str:
        if self.kind == "end":
            return "the end of the expression"
        if self.kind == "string":
            return "a text in quotes"
        return repr(str(self.value))


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH:
        raise LexError(MAX_LENGTH + 1, f"the expression is longer than {MAX_LENGTH} "
                       "characters")
    tokens: list[Token] = []
    pos, end = 0, len(text)
    while pos < end:
        char = text[pos]
        if char.isspace():
            match = _SPACE.match(text, pos)
            pos = match.end() if match else pos + 1
            continue
        if char in "\"'":
            value, after = _string(text, pos)
            tokens.append(Token("string", value, pos + 1))
            pos = after
            continue
        if "0" <= char <= "9":
            match = _NUMBER.match(text, pos)
            assert match is not None
            word = match.group()
            whole, dot, fraction = word.partition(".")
            if not whole.isdigit() or (dot and not fraction.isdigit()):
                raise LexError(pos + 1, f"{word!r} is not a number (names start with a "
                               "letter)")
            if len(whole) > MAX_DIGITS or len(fraction) > MAX_DIGITS:
                raise LexError(pos + 1, f"a number has more than {MAX_DIGITS} digits")
            tokens.append(Token("number", float(word) if dot else int(whole), pos + 1))
            pos = match.end()
            continue
        match = _NAME.match(text, pos)
        if match:
            tokens.append(Token("name", match.group(), pos + 1))
            pos = match.end()
            if pos < end and text[pos] == ".":
                raise LexError(pos + 1, "a name cannot end with '.'")
            continue
        for op in _OPERATORS:
            if text.startswith(op, pos):
                tokens.append(Token("op", op, pos + 1))
                pos += len(op)
                break
        else:
            hint = _HINTS.get(char)
            shown = repr(char) if char.isprintable() else f"U+{ord(char):04X}"
            raise LexError(pos + 1, f"unexpected character {shown}"
                           + (f" ({hint})" if hint else ""))
    tokens.append(Token("end", None, end + 1))
    return tokens


def _string(text: str, start: int) -> tuple[str, int]:
    """The quoted text starting at ``start``; returns its value and the index after it."""
    quote = text[start]
    parts: list[str] = []
    pos = start + 1
    while True:
        close = text.find(quote, pos)
        escape = text.find("\\", pos)
        if close < 0:
            raise LexError(start + 1, "a text in quotes is not closed")
        if escape < 0 or close < escape:
            parts.append(text[pos:close])
            return "".join(parts), close + 1
        parts.append(text[pos:escape])
        code = text[escape + 1:escape + 2]
        if code in _ESCAPES:
            parts.append(_ESCAPES[code])
            pos = escape + 2
        elif code == "u":
            digits = text[escape + 2:escape + 6]
            if not re.fullmatch(r"[0-9A-Fa-f]{4}", digits):
                raise LexError(escape + 1, "\\u needs four hexadecimal digits")
            point = int(digits, 16)
            if 0xD800 <= point <= 0xDFFF:
                raise LexError(escape + 1, f"\\u{digits} is not a character")
            parts.append(chr(point))
            pos = escape + 6
        else:
            shown = repr(code) if code else "the end"
            raise LexError(escape + 1, f"unknown escape '\\' followed by {shown} (use \\\\ "
                           "for a backslash)")
