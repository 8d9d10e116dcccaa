"""[console.keys]: the operator moves an action to another key; the console's one keymap
(footer, help screen, key checks) follows, dangerous actions still ask first, and every
mistake in the section is one sentence naming the setting and the key, at load."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from rich.console import Console
from textual.geometry import Region
from textual.widgets import Static

from rostersync.console import keymap
from rostersync.console.app import ConsoleApp
from rostersync.console.cli import main
from rostersync.console.keys_config import problems, resolve
from rostersync.console.screens.confirm import ConfirmModal
from rostersync.console.screens.help import HelpScreen
from rostersync.console.screens.person import PersonScreen
from rostersync.console.widgets.match_panel import side_by_side
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import ConfigError
from tests.console_harness import ACTOR, SIZE, VIEWED_AT, fresh_db, settle

pytestmark = pytest.mark.anyio
EXIT_CONFIG = 2  # docs/cli.md: usage or config error


def _app(seeded, folder, keys: dict[str, str]) -> ConsoleApp:
    db = fresh_db(seeded, folder)
    config = seeded.config_for(db)
    config.console.keys = keys
    return ConsoleApp(config, Store(db), clock=FrozenClock(VIEWED_AT), engine=None,
                      run_scheduler=False, live=False, actor=ACTOR)


def _bound(app) -> dict[str, str]:
    """Key -> action, as the footer and the key dispatch see them on the screen now."""
    return {key: b.binding.action for key, b in app.active_bindings.items()}


# -- in the console -------------------------------------------------------------------

async def test_a_moved_key_runs_the_action_and_the_old_key_no_longer_does(seeded, tmp_path):
    app = _app(seeded, tmp_path, {"retry": "R"})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_person("E00005")  # a failed operation: retry applies
        await settle(pilot)
        assert isinstance(app.screen, PersonScreen)
        bound = _bound(app)
        assert bound["R"] == "retry" and "r" not in bound
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, PersonScreen)  # nothing asked, nothing done
        # The palette's key panel ("Keys") lists the active bindings: the new key.
        app.action_show_help_panel()
        await settle(pilot)
        panel = app.screen.query_one("KeyPanel BindingsTable")
        width, height = panel.outer_size
        shown = [s.text.split() for s in panel.render_lines(Region(0, 0, width, height))]
        assert [words for words in shown if "Retry" in words] == [["R", "Retry"]]
        app.action_hide_help_panel()
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)
        # Still a dangerous action: it asks first.
        assert isinstance(app.screen, ConfirmModal)


async def test_the_help_screen_shows_the_operators_key(seeded, tmp_path):
    app = _app(seeded, tmp_path, {"retry": "R", "help": "f1"})
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot)
        app.open_person("E00005")
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert not isinstance(app.screen, HelpScreen)  # ? was moved to f1
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one(Static)
        width, height = table.outer_size
        lines = [s.text for s in table.render_lines(Region(0, 0, width, height))]
    retry = next(line for line in lines if "retry this person's" in line).split()
    assert retry[retry.index("retry") - 1] == "R"
    help_line = next(line for line in lines if "this help, generated" in line).split()
    assert help_line[help_line.index("this") - 1] == "f1"


def test_the_match_panel_names_the_operators_keys():
    match = {"kind": "disputed", "employee_id": "E00001", "candidates": [], "record": {},
             "desired": {}}
    out = Console(width=200, record=True)
    out.print(side_by_side(match, resolve({"link_match": "ctrl+l", "ignore_match": "I"})))
    assert "press ctrl+l to link it, n for a new account, I to ignore" in out.export_text()


# -- the checks, one sentence per mistake ---------------------------------------------

def test_the_keymap_as_shipped_has_no_clash():
    assert problems({}) == []


def test_an_unknown_action_is_named_with_a_guess_when_one_is_close():
    assert problems({"retyr": "R"}) == [
        "key 'console.keys.retyr': the console has no action called 'retyr' (did you mean "
        "'retry'?)"]
    assert problems({"launch_rocket": "R"}) == [
        "key 'console.keys.launch_rocket': the console has no action called "
        "'launch_rocket'"]


@pytest.mark.parametrize("key", ["ctl+r", "", "ab", " ", "ctrl+", "f99", "hyper+shift+",
                                 "r,", "\x1b"])
def test_a_key_no_terminal_sends_is_named(key):
    (sentence,) = problems({"retry": key})
    assert sentence.startswith(f"key 'console.keys.retry': {key!r} is not a key the console "
                               "can bind")


@pytest.mark.parametrize(("key", "textual"), [
    ("R", "R"), ("?", "question_mark"), ("/", "slash"), ("f5", "f5"), ("F5", "f5"),
    ("ctrl+r", "ctrl+r"), ("Ctrl+R", "ctrl+r"), ("escape", "escape"),
    ("question_mark", "question_mark"), ("h,?", "h,question_mark"), ("ä", "ä")])
def test_keys_a_terminal_sends_are_taken_as_textual_names_them(key, textual):
    # help and back move away, so that ? and escape are free on the person screen.
    moved = resolve({"help": "f12", "back": "backspace", "retry": key})
    assert moved == {"help": "f12", "back": "backspace", "retry": textual}


def test_two_actions_on_one_key_on_the_same_screen_are_named():
    assert problems({"suppress": "r"}) == [
        "key 'console.keys.suppress': 'r' would run both suppress and retry on the Person "
        "screen; choose another key for one of them"]
    # A key that works anywhere clashes with every screen: said once.
    assert problems({"toggle_banner": "q"}) == [
        "key 'console.keys.toggle_banner': 'q' would run both toggle_banner and quit "
        "anywhere; choose another key for one of them"]
    assert problems({"help": "ctrl+p"}) == [
        "key 'console.keys.help': 'ctrl+p' is taken on every screen (open the command "
        "palette); choose another key"]


def test_one_key_on_different_screens_and_a_swap_are_no_clash():
    # p: the reports' period and the log's pause; never on the person screen.
    assert problems({"retry": "p"}) == []
    # Both keys move: each frees the other's.
    assert problems({"approve": "x", "reject": "a"}) == []
    # The key an action leaves is free for another.
    assert problems({"retry": "R", "suppress": "r"}) == []


def test_the_console_refuses_to_start_on_a_mistake(seeded, tmp_path):
    with pytest.raises(ConfigError, match=r"console\.keys\.retyr"):
        _app(seeded, tmp_path, {"retyr": "R"})


# -- at load, from the command line ---------------------------------------------------

@pytest.fixture
def sample(tmp_path):
    path = tmp_path / "rostersync.toml"
    assert main(["init", str(path)]) == 0
    return path


def _keys(path, body: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + f"\n[console.keys]\n{body}\n",
                    encoding="utf-8")


def test_the_samples_keys_section_is_valid_as_written(sample):
    text = sample.read_text(encoding="utf-8")
    shown = text.split("# [console.keys]\n", 1)[1]
    body = "\n".join(line.removeprefix("# ") for line in shown.splitlines())
    assert resolve(tomllib.loads(body)) == {"retry": "R",
                                                           "help": "f1,question_mark"}


def test_three_mistakes_are_three_sentences_from_doctor_and_sync(sample, capsys):
    _keys(sample, 'retyr = "R"\nsuppress = "ctl+s"\nresync = "r"')
    code = main(["doctor", "--json", "--config", str(sample)])
    report = json.loads(capsys.readouterr().out)
    assert code == EXIT_CONFIG
    detail = report["checks"][0]["detail"]
    assert detail.startswith(f"{sample}: 3 problems: (1) key 'console.keys.retyr'")
    assert "(2) key 'console.keys.suppress': 'ctl+s' is not a key" in detail
    assert "(3) key 'console.keys.resync': 'r' would run both resync and retry" in detail

    assert main(["sync", "--config", str(sample)]) == EXIT_CONFIG
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "console.keys.retyr" in err and "'ctl+s'" in err and "'r' would run" in err


def test_a_key_that_is_not_text_is_named_by_the_config_layer(sample, capsys):
    _keys(sample, "retry = 5")
    assert main(["sync", "--config", str(sample)]) == EXIT_CONFIG
    assert "key 'console.keys.retry'" in capsys.readouterr().err


def test_names_in_the_table_are_what_the_docs_list():
    """docs/console.md lists every action name [console.keys] accepts."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "console.md").read_text(
        encoding="utf-8")
    missing = sorted({k.name for k in keymap.KEYS if f"`{k.name}`" not in doc})
    assert missing == []
