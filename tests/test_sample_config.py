"""The sample `rostersync init` writes explains every setting of the sections it shows:
a setting added to the model without a line in the sample fails here, so the commented
sample cannot drift away from what the config accepts."""

from __future__ import annotations

import re
import tomllib

from rostersync.sync.config import Config, config_from_dict
from rostersync.sync.config_errors import _models_in
from rostersync.sync.sample import SAMPLE_CONFIG

# The sample shows one source and one target; the others have their own examples
# (examples/*.toml) and docs.
SHOWN_TYPES = {"hris": "csv", "lms": "scim"}
HEADER = re.compile(r"^#?\s*\[\[?([a-z_.]+)\]\]?.*$", re.M)
KEY = re.compile(r"^#?\s*([a-z_]+)\s*=", re.M)


def _sections(text: str) -> dict[str, str]:
    """Section name -> its text (commented-out lines included)."""
    parts = HEADER.split(text)
    out: dict[str, str] = {}
    for i in range(1, len(parts), 2):
        out[parts[i]] = out.get(parts[i], "") + parts[i + 1]
    return out


def _unexplained(text: str) -> list[str]:
    sections = _sections(text)
    missing: list[str] = []
    for name, field in Config.model_fields.items():
        if field.exclude:
            continue
        for model in _models_in(field.annotation):
            if name in SHOWN_TYPES and model.model_fields["type"].default != SHOWN_TYPES[name]:
                continue
            body = sections.get(name, "")
            named = set(KEY.findall(body)) | {s[len(name) + 1:].split(".")[0] for s in sections
                                              if s.startswith(name + ".")}
            missing += [f"{name}.{k}" for k, f in model.model_fields.items()
                        if not f.exclude and k not in named]
    return missing


def test_every_setting_of_the_shown_sections_is_explained():
    assert _unexplained(SAMPLE_CONFIG) == []


def test_a_setting_missing_from_the_sample_is_named():
    text = re.sub(r"^lease_seconds = 120 .*\n", "", SAMPLE_CONFIG, flags=re.M)
    assert _unexplained(text) == ["guards.lease_seconds"]


def test_the_sample_loads_and_its_commented_audience_is_valid():
    config_from_dict(tomllib.loads(SAMPLE_CONFIG))
    uncommented = re.sub(r"^# ((?:\[\[audiences\]\])|(?:[a-z_]+ = .*))$", r"\1",
                         SAMPLE_CONFIG.split("# Audiences:")[1].split("[retention]")[0],
                         flags=re.M)
    audience = tomllib.loads(uncommented.split("#", 1)[1].split("\n", 1)[1])
    config = tomllib.loads(SAMPLE_CONFIG)
    config["audiences"] = audience["audiences"]
    assert config_from_dict(config).audiences[0].id == "sales-onboarding"
