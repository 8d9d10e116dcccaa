"""The console on the demo world: HR life ticks on a timer and each event is announced,
so a new user sees what happened in HR and, moments later, what the sync made of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work

from console.app import ConsoleApp
from storage.db import Store
from sync.config import Config

if TYPE_CHECKING:
    from sandbox.demo import DemoWorld


class DemoConsole(ConsoleApp):
    def __init__(self, world: DemoWorld, config: Config, store: Store) -> None:
        super().__init__(config, store)
        self.world = world

    def on_mount(self) -> None:
        # Textual runs ConsoleApp.on_mount first by itself (handlers follow the MRO).
        self.sub_title = "demo: HR life every few seconds"
        self.do_sync("full")
        from sandbox.demo import TICK_SECONDS

        self.set_interval(TICK_SECONDS, self._hr_tick)

    @work(thread=True, exclusive=True, group="hr-life")
    def _hr_tick(self) -> None:
        what = self.world.tick()
        self.call_from_thread(self.notify, what, title="in HR", timeout=4)


def run_demo_console(world: DemoWorld, config: Config, store: Store) -> int:
    DemoConsole(world, config, store).run()
    return 0
