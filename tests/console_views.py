"""Every console view, as (name, read_only, steps), and the terminal size of those not
taken at the harness's SIZE: shared by the snapshot tests and by `python -m
tests.screenshots` so that screenshots and snapshots are the same pictures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.console_harness import settle


def press_keys(*keys: str) -> Callable[..., Awaitable[None]]:
    async def run(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run


def call_app(fn: Callable[..., None], *args) -> Callable[..., Awaitable[None]]:
    async def run(pilot) -> None:
        await settle(pilot)
        fn(pilot.app, *args)
        await settle(pilot)

    return run


VIEWS: dict[str, tuple[bool, Callable[..., Awaitable[None]]]] = {
    "dashboard": (False, press_keys()),
    "drift": (False, press_keys("2")),
    "drift_filtered": (False, press_keys("2", "slash", *"invalid")),
    "ops": (False, press_keys("3")),
    "terminations": (False, press_keys("4")),
    "runs": (False, press_keys("5")),
    "audit": (False, press_keys("6")),
    "held": (False, press_keys("7")),
    "person": (False, call_app(lambda app, e: app.open_person(e), "E00005")),
    "person_invalid": (False, call_app(lambda app, e: app.open_person(e), "E00007")),
    "run": (False, call_app(lambda app, r: app.open_run(r), 2)),
    "held_group": (False, press_keys("7", "enter", "space", "space")),
    "confirm": (False, press_keys("7", "a")),
    "confirm_selection": (False, press_keys("7", "enter", "space", "space", "a")),
    "suppress_form": (False, call_app(lambda app, e: (app.open_person(e),), "E00010")),
    "help": (False, press_keys("question_mark")),
    "read_only_dashboard": (True, press_keys()),
    "read_only_help": (True, press_keys("question_mark")),
}


async def _suppress_form(pilot) -> None:
    await VIEWS["person"][1](pilot)
    await pilot.press("s")
    await settle(pilot)
    await pilot.press(*"legal hold")
    await settle(pilot)


VIEWS["suppress_form"] = (False, _suppress_form)

# The views an operator lives in, also at the smallest terminal the console promises
# (80x24) and a large one (160x48); every other view is taken at the harness's SIZE.
SIZES: dict[str, tuple[int, int]] = {
    f"{name}_{w}x{h}": (w, h) for name in ("dashboard", "ops", "person", "held")
    for w, h in ((80, 24), (160, 48))}
VIEWS.update({view: VIEWS[view.rsplit("_", 1)[0]] for view in SIZES})
