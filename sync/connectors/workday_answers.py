"""A RaaS answer read whole (pure; docs/workday.md §2.1): the rows of a JSON report, and
the reason in an error body."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from rostersync.sync.connectors.base import FeedError

ENTRIES = "Report_Entry"
_FAULT_TEXT = re.compile(r"<(?:[\w.-]+:)?(faultstring|Message)\b[^>]*>(.*?)</", re.S)


def parse_report(body: bytes, content_type: str, where: str) -> list[Any]:
    """The rows of a RaaS JSON answer; FeedError naming the URL and what is wrong."""
    what = f"Workday GET {where}"
    if not body.strip():
        raise FeedError(f"{what}: the answer is empty")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedError(f"{what}: the answer is not UTF-8 (byte {exc.start})") from None
    try:
        answer = json.loads(text)
    except json.JSONDecodeError as exc:
        size = len(body)
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            raise FeedError(f"{what}: the JSON answer ends early after {size} bytes "
                            f"(truncated: {exc.msg})") from None
        kind = content_type.split(";")[0].strip() or "no Content-Type"
        raise FeedError(f"{what}: the answer is not valid JSON ({kind}, {size} bytes): "
                        f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(answer, dict):
        raise FeedError(f"{what}: the answer is a JSON {type(answer).__name__}, not an "
                        f"object with {ENTRIES}")
    if ENTRIES not in answer:
        if "error" in answer or "errors" in answer:
            raise FeedError(f"{what}: Workday reported an error: {error_text(body)}")
        if answer:
            raise FeedError(f"{what}: the answer has no {ENTRIES} (keys: "
                            f"{', '.join(sorted(answer)[:5])})")
        return []  # an empty object: a report with no rows (inferred)
    rows = answer[ENTRIES]
    if isinstance(rows, dict):
        return [rows]  # one row written as an object, not a list (inferred)
    if not isinstance(rows, list):
        raise FeedError(f"{what}: {ENTRIES} is a JSON {type(rows).__name__}, not a list")
    return rows


def error_text(body: bytes) -> str:
    """The reason in a Workday error body: a SOAP Fault's faultstring (or a wd:Message),
    or the JSON error/errors shape (inferred); short, one line."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return ""
    found: str | None = None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            parts = [str(data["error"])] if data.get("error") else []
            for item in data.get("errors") or []:
                if isinstance(item, dict) and item.get("error"):
                    parts.append(str(item["error"]))
            found = "; ".join(dict.fromkeys(parts)) or None
    elif text.startswith("<"):
        match = _FAULT_TEXT.search(text)
        found = html.unescape(match.group(2)) if match else None
    found = " ".join((found or "").split())
    return found[:300]
