"""Config mistakes that used to show only later (a crash at `serve`, every row invalid, a
traceback) are one sentence at load: from `doctor`, `sync` and `serve` alike, exit 2."""

from __future__ import annotations

import json

import pytest

from rostersync.console.cli import main
from rostersync.sync.config import ConfigError, load_config

EXIT_CONFIG = 2  # docs/cli.md: usage or config error


@pytest.fixture
def sample(tmp_path):
    path = tmp_path / "rostersync.toml"
    assert main(["init", str(path)]) == 0
    return path


def edit(path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def one_sentence(err: str) -> str:
    err = err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


def config_check(capsys, path) -> str:
    """`doctor --json` on that config: the detail of its `config` check, which must fail."""
    code = main(["doctor", "--json", "--config", str(path)])
    report = json.loads(capsys.readouterr().out)
    assert code == EXIT_CONFIG and report["exit_code"] == EXIT_CONFIG
    check = report["checks"][0]
    assert check["check"] == "config" and check["result"] == "error", report
    return one_sentence(check["detail"])


MISTAKES = [
    # (what the sample says, what the mistake writes, words the sentence must hold)
    ('timezone = "UTC"                  # IANA name; the cron',
     'timezone = "Mars/Olympus"  # the cron', ["schedule.timezone", "'Mars/Olympus'",
                                               "IANA"]),
    ('full_cron = "0 2 * * *"', 'full_cron = "0 25 * * *"',
     ["schedule.full_cron", "'0 25 * * *'", "cron"]),
    ('full_cron = "0 2 * * *"', 'full_cron = "daily"', ["schedule.full_cron", "'daily'"]),
    ('date_formats = ["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y"]',
     'date_formats = ["%Y-%m-%d", "%Q/%d"]', ["hris.date_formats", "'%Q/%d'", "directive"]),
    ('date_formats = ["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y"]',
     'date_formats = ["YYYY-MM-DD"]', ["hris.date_formats", "'YYYY-MM-DD'", "whole date"]),
    ('date_formats = ["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y"]',
     'date_formats = ["%Y-%m"]', ["hris.date_formats", "'%Y-%m'"]),
    ('date_formats = ["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y"]', "date_formats = []",
     ["hris.date_formats", "at least one"]),
    ('default_timezone = "UTC"', 'default_timezone = "Berlin"',
     ["mapping.default_timezone", "'Berlin'"]),
]


@pytest.mark.parametrize(("old", "new", "words"), MISTAKES,
                         ids=[m[1].split("#")[0].strip() for m in MISTAKES])
def test_mistake_is_one_sentence_from_doctor_and_sync(sample, capsys, old, new, words):
    edit(sample, old, new)
    detail = config_check(capsys, sample)
    assert str(sample) in detail
    for word in words:
        assert word in detail, detail

    assert main(["sync", "--config", str(sample)]) == EXIT_CONFIG
    err = one_sentence(capsys.readouterr().err)
    assert all(word in err for word in words), err
    with pytest.raises(ConfigError):
        load_config(sample)


def test_bad_timezone_stops_serve_at_load_not_in_the_scheduler(sample, capsys):
    edit(sample, 'timezone = "UTC"                  # IANA', 'timezone = "Mars/Olympus" # IANA')
    assert main(["serve", "--config", str(sample)]) == EXIT_CONFIG
    err = one_sentence(capsys.readouterr().err)
    assert "schedule.timezone" in err and "Mars/Olympus" in err


@pytest.mark.parametrize("fmt", ["%d.%m.%y", "%Y%m%d", "%b %d, %Y", "%Y-%m-%dT%H:%M:%S"])
def test_every_usable_date_format_and_zone_and_cron_is_accepted(sample, fmt):
    edit(sample, '"%d.%m.%Y"]', f'"{fmt}"]')
    edit(sample, 'full_cron = "0 2 * * *"', 'full_cron = "*/30 1-5 * * mon-fri"')
    edit(sample, 'timezone = "UTC"                  # IANA', 'timezone = "America/New_York" #')
    config = load_config(sample)
    assert config.hris.date_formats[-1] == fmt
    assert config.schedule.timezone == "America/New_York"


def test_config_file_that_is_not_utf8_names_the_line(sample, capsys):
    lines = sample.read_bytes().split(b"\n")
    lines[2] = "# owned by the Café team".encode("latin-1")  # 0xE9, not UTF-8
    sample.write_bytes(b"\n".join(lines))
    detail = config_check(capsys, sample)
    assert "not UTF-8" in detail and "0xe9 at line 3, column 19" in detail
    assert main(["status", "--config", str(sample)]) == EXIT_CONFIG
    assert "line 3" in one_sentence(capsys.readouterr().err)


def test_utf8_config_with_non_ascii_text_still_loads(sample):
    lines = sample.read_text(encoding="utf-8").split("\n")
    lines[2] = "# owned by the Café team ✓"
    sample.write_text("\n".join(lines), encoding="utf-8")
    assert load_config(sample).schedule.full_cron == "0 2 * * *"


def test_doctor_shows_the_schedule_it_checked(sample, capsys):
    main(["doctor", "--json", "--config", str(sample)])
    checks = {c["check"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["config"]["result"] == "ok"
    assert checks["schedule"]["detail"] == ("full reconcile at cron '0 2 * * *' (UTC); dates "
                                            "read as %Y-%m-%d, %m/%d/%Y, %d.%m.%Y")


def test_every_mistake_is_reported_at_once_with_suggestions(sample, capsys):
    text = sample.read_text(encoding="utf-8")
    text = text.replace("[guards]", "[guards]\nmass_deactivaton_min = 5", 1)
    text = text.replace("mass_deactivation_percent = 2", "mass_deactivation_percent = \"lots\"", 1)
    text = text.replace("[schedule]", "[schedule]\nfull_cronn = \"0 * * * *\"", 1)
    sample.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(sample)
    message = str(err.value)
    assert message.startswith(f"{sample}: 3 problems: (1) ")
    assert "key 'guards.mass_deactivaton_min' is not a known setting (did you mean " \
           "'guards.mass_deactivation_min'?)" in message
    assert "key 'guards.mass_deactivation_percent': Input should be a valid number" in message
    assert "(3) key 'schedule.full_cronn' is not a known setting (did you mean " \
           "'schedule.full_cron'?)" in message
    assert "\n" not in message


def test_an_unknown_key_far_from_any_setting_gets_no_guess(sample):
    text = sample.read_text(encoding="utf-8").replace("[guards]", "[guards]\nbananas = 1", 1)
    sample.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(sample)
    assert str(err.value) == f"{sample}: key 'guards.bananas' is not a known setting"
