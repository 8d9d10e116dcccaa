"""Where each of a person's desired values comes from, for the person screen: the mapping
explained (sync/mapping_explain.py, the same account `rostersync mapping test` gives) for
the recorded HR record and the LMS account as last read, as lines that wrap at any width.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from rich.text import Text

from rostersync.sync.config import Config
from rostersync.sync.mapping_explain import explain_mapping
from rostersync.sync.models import Account, Person


def explain_recorded(config: Config, detail: dict[str, Any], today: date
                     ) -> dict[str, Any] | None:
    """The mapping explained for the person of ``detail`` (storage's person_detail); None
    when no valid HR record was ever read (nothing to map: the invalid drift says why).
    Runs in the screen's loading thread, beside its database reads."""
    if not detail.get("record"):
        return None
    person = Person.model_validate(detail["record"])
    lms = Account(**detail["account"]) if detail.get("account") else None
    desired = detail.get("desired") or {}
    return explain_mapping(person, config.mapping.compiled(), today, lms=lms,
                           assigned_login=desired.get("user_name"))


def shown(value: Any) -> str:
    return "(empty)" if value is None or value == "" else repr(value)


def _lms_line(row: dict[str, Any], has_account: bool) -> Text | None:
    """What the LMS holds beside the result, and what a run does about it, by apply mode."""
    if not has_account:
        return Text("no LMS account yet", style="dim")
    if row["differs"] is None:
        return None if row["outcome"] == "unmanaged" else Text(f"holds {shown(row['lms'])}")
    if not row["differs"]:
        return Text("same", style="green")
    held = Text(f"holds {shown(row['lms'])}: ", style="bold")
    if row["apply"] == "always":
        return held.append("differs, the next run writes the desired value",
                           style="bold red")
    if row["apply"] == "create":
        return held.append("differs; set only when the account is created, never compared",
                           style="yellow")
    if row["lms"] in (None, ""):  # when_empty, and the LMS holds nothing: it is written
        return held.append("empty, the next run writes the desired value", style="bold red")
    return held.append("an LMS edit; kept (apply when_empty)", style="yellow")


def provenance(doc: dict[str, Any] | None, has_account: bool) -> Text:
    """Per target attribute: its desired value, the expression or default it comes from,
    its apply mode, the HR values it read and whether the LMS differs; unmanaged
    attributes labelled as such."""
    if doc is None:
        return Text("no valid HR record: nothing to map", style="yellow")
    out = Text()
    for row in doc["attributes"]:
        if out:
            out.append("\n")
        out.append(row["attribute"], style="bold")
        if row["outcome"] == "unmanaged":
            out.append("  unmanaged", style="dim bold")
            out.append(f" (apply {row['apply']}): neither written nor compared", style="dim")
        elif row["outcome"] == "ok":
            out.append(f" = {shown(row['result'])}")
            out.append(f"  apply {row['apply']}", style="dim")
        else:
            out.append(f"  {row['outcome']}: ", style="bold yellow")
            out.append(" ".join(str(row["message"]).split()), style="yellow")
        origin = "default: " if row["source"] == "default" else "expression: "
        out.append("\n  from ", style="dim")
        out.append(origin, style="dim")
        out.append(" ".join(row["expression"].split()), style="cyan")
        if row["inputs"]:
            out.append("\n  read ", style="dim")
            out.append(", ".join(f"{k}={shown(v)}" for k, v in row["inputs"].items()))
        lms = _lms_line(row, has_account)
        if lms is not None:
            out.append("\n  LMS  ", style="dim")
            out.append_text(lms)
    if doc.get("generated_login"):
        out.append("\nassigned login ", style="bold")
        out.append(f"{shown(doc.get('assigned_login'))} (chosen once among the candidates, "
                   "then kept)")
    return out
