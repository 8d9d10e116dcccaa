"""[console.keys]: the operator's keys for console actions, checked against the one keymap
(console/keymap.py) when the config is loaded, every problem at once, one sentence each
naming the setting and the key: an action that does not exist (with a "did you mean"), a
key a terminal cannot send as written, and two actions on one key on the same screen.

The config layer holds the section as plain text (sync/config_console.py): which actions
exist and which keys Textual can bind are known here.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Mapping

# _character_to_key is how Textual itself names a typed character ("?" -> "question_mark"):
# a configured key must compare equal to the name Textual gives the key event.
from textual.keys import Keys, _character_to_key, format_key, key_to_character

from rostersync.console import keymap
from rostersync.console.keymap import SCOPE_TITLES
from rostersync.sync.config import ConfigError

MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")
# Named keys a terminal sends (Textual's names), beside single characters and the names
# of punctuation ("question_mark", "slash").
NAMED = frozenset(k.value for k in Keys if "+" not in k.value and not k.value.startswith("<"))
# Taken on every screen by Textual itself, not by the keymap.
RESERVED = {"ctrl+p": "open the command palette", "ctrl+q": "quit",
            "ctrl+c": "copy or quit"}


def _normal_key(text: str) -> str | None:
    """One key as Textual names it ("?" -> "question_mark", "Ctrl+R" -> "ctrl+r"), or
    None when no terminal key is called that."""
    *mods, base = text.split("+") if text != "+" else ["+"]
    mods = [m.strip().lower() for m in mods]
    base = base.strip()
    if not base or any(m not in MODIFIERS for m in mods):
        return None
    if len(base) == 1:
        if not base.isprintable() or base.isspace() or base == ",":
            return None
        # A terminal sends a control chord without its case: ctrl+R arrives as ctrl+r.
        base = _character_to_key(base.lower() if mods else base)
    elif base.lower() in NAMED:
        base = base.lower()
    elif key_to_character(base) is None or not _printable_name(base):
        return None
    return "+".join([*mods, base])


def _printable_name(name: str) -> bool:
    char = key_to_character(name)
    return char is not None and char.isprintable() and unicodedata.category(char)[0] in "PS"


def _normal_keys(text: str) -> str | None:
    keys = [_normal_key(part) for part in text.split(",")]
    return None if not keys or None in keys else ",".join(k for k in keys if k)


def _setting(name: str) -> str:
    return f"key 'console.keys.{name}'"


def _clashes(effective: Mapping[str, str]) -> list[str]:
    """Two actions answering one key on the same screen (its own keys and the keys that
    work anywhere), each named once, by the setting that moved a key there."""
    found: dict[tuple[str, str, str], list[str]] = {}
    for scope in sorted({k.scope for k in keymap.KEYS} - {"app"}):
        bound: dict[str, keymap.Key] = {}
        for k in keymap.KEYS:
            if k.scope not in (scope, "app"):
                continue
            for key in effective.get(k.name, k.key).split(","):
                first = bound.setdefault(key, k)
                if first.name == k.name:
                    continue
                mover, rest = (k, first) if k.name in effective else (first, k)
                where = ("anywhere" if mover.scope == rest.scope == "app"
                         else SCOPE_TITLES.get(scope, scope))
                places = found.setdefault((mover.name, key, rest.name), [])
                if where not in places:
                    places.append(where)
    return [f"{_setting(mover)}: {_shown(key)} would run both {mover} and {rest} "
            f"{_where(places)}; choose another key for one of them"
            for (mover, key, rest), places in found.items()]


def _where(places: list[str]) -> str:
    if "anywhere" in places:
        return "anywhere"
    if len(places) == 1:
        return f"on the {places[0]} screen"
    return f"on the {', '.join(places[:-1])} and {places[-1]} screens"


def _shown(key: str) -> str:
    return repr(format_key(key))


def problems(keys: Mapping[str, str]) -> list[str]:
    """Every problem of a [console.keys] section, one sentence each (none: it is good)."""
    names = sorted({k.name for k in keymap.KEYS})
    out: list[str] = []
    effective: dict[str, str] = {}
    for name, text in keys.items():
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append(f"{_setting(name)}: the console has no action called {name!r}{hint}")
            continue
        normal = _normal_keys(text)
        if normal is None:
            out.append(f"{_setting(name)}: {text!r} is not a key the console can bind (write "
                       "a character such as \"R\" or \"?\", a key name such as \"f5\" or "
                       "\"escape\", or modifiers joined with \"+\" as in \"ctrl+r\")")
            continue
        reserved = [k for k in normal.split(",") if k in RESERVED]
        if reserved:
            out.append(f"{_setting(name)}: {reserved[0]!r} is taken on every screen "
                       f"({RESERVED[reserved[0]]}); choose another key")
            continue
        effective[name] = normal
    return out + _clashes(effective)


def resolve(keys: Mapping[str, str]) -> dict[str, str]:
    """The operator's keys as Textual names them (action name -> "key,key"); raises
    ConfigError with every problem when the section has any."""
    found = problems(keys)
    if found:
        raise ConfigError(summary(found))
    return {name: _normal_keys(text) or "" for name, text in keys.items()}


def summary(found: list[str]) -> str:
    """The problems as config_errors words them: one, or numbered."""
    if len(found) == 1:
        return found[0]
    return f"{len(found)} problems: " + "; ".join(f"({i}) {p}" for i, p in enumerate(found, 1))
