"""Every console view, as (name, read_only, steps): shared by the snapshot tests and by
`python -m tests.screenshots` so that screenshots and snapshots are the same pictures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.console_harness import settle


def _keys(*keys: str) -> Callable[..., Awaitable[None]]:
    async def run(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run


def _call(fn: Callable[..., None], *args) -> Callable[..., Awaitable[None]]:
    async def run(pilot) -> None:
        await settle(pilot)
        fn(pilot.app, *args)
        await settle(pilot)

    return run


VIEWS: dict[str, tuple[bool, Callable[..., Awaitable[None]]]] = {
    "dashboard": (False, _keys()),
    "drift": (False, _keys("2")),
    "drift_filtered": (False, _keys("2", "slash", *"invalid")),
    "ops": (False, _keys("3")),
    "terminations": (False, _keys("4")),
    "runs": (False, _keys("5")),
    "audit": (False, _keys("6")),
    "held": (False, _keys("7")),
    "person": (False, _call(lambda app, e: app.open_person(e), "E00005")),
    "person_invalid": (False, _call(lambda app, e: app.open_person(e), "E00007")),
    "run": (False, _call(lambda app, r: app.open_run(r), 2)),
    "confirm": (False, _keys("7", "a")),
    "suppress_form": (False, _call(lambda app, e: (app.open_person(e),), "E00010")),
    "help": (False, _keys("question_mark")),
    "read_only_dashboard": (True, _keys()),
    "read_only_help": (True, _keys("question_mark")),
}


async def _suppress_form(pilot) -> None:
    await VIEWS["person"][1](pilot)
    await pilot.press("s")
    await settle(pilot)
    await pilot.press(*"legal hold")
    await settle(pilot)


VIEWS["suppress_form"] = (False, _suppress_form)
