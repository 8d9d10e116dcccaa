"""`rostersync report ...`: evidence from recorded history."""

from __future__ import annotations

import argparse


def add_parsers(sub: argparse._SubParsersAction, common) -> None:
    return None
