"""The LMS target contract for every target kind (tests/contract/target_suite.py); one
server per kind. ``pytest tests/contract -k moodle`` runs one kind."""

from __future__ import annotations

from tests.contract.target_rigs import CanvasRig, MoodleRig, ScimRig
from tests.contract.target_suite import target_suite

TestScimTargetContract = target_suite(ScimRig)
TestMoodleTargetContract = target_suite(MoodleRig)
TestCanvasTargetContract = target_suite(CanvasRig)
