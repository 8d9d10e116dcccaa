"""`rostersync audiences ...`: the audience rules and why a person is in an audience."""

from __future__ import annotations

import argparse


def add_parsers(sub: argparse._SubParsersAction, common) -> None:
    return None
