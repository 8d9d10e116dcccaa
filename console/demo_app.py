"""The console on the demo world: HR life ticks on a timer and each event is announced,
so a new user sees what happened in HR and, moments later, what the sync made of it;
the demo's on-call operator's actions (a resume, an approval) are announced too.
Once the scheduler listens, the BambooHR sandbox sends its webhooks to the console's
real-time intake, and every alert the command channel writes is announced too."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work

from rostersync.console import messages
from rostersync.console.app import ConsoleApp
from rostersync.storage.db import Store
from rostersync.sync.config import Config, ConfigError

if TYPE_CHECKING:
    from rostersync.sandbox.demo import DemoWorld


class DemoConsole(ConsoleApp):
    def __init__(self, world: DemoWorld, config: Config, store: Store) -> None:
        super().__init__(config, store)
        self.world = world
        self.alerts_seen = 0
        self._hr_life_started = False

    def on_mount(self) -> None:
        # Textual runs ConsoleApp.on_mount first by itself (handlers follow the MRO).
        self.sub_title = "demo: HR life every few seconds"
        self.start_sync("full", source="demo")
        self._connect_intake()

    def on_run_finished(self, _message: messages.RunFinished) -> None:
        # Runs after ConsoleApp's handler (handlers follow the MRO). HR life starts once
        # the first sync is done, so the LMS's faults meet the story, not the first load.
        if not self._hr_life_started:
            self._hr_life_started = True
            from rostersync.sandbox.demo import TICK_SECONDS

            self.set_interval(TICK_SECONDS, self._hr_tick)

    @work(exclusive=True, group="demo-intake")
    async def _connect_intake(self) -> None:
        if self.scheduler is None:
            return
        try:
            await self.scheduler.ready()
        except ConfigError as exc:
            self.notify(str(exc), title="real-time intake is off", severity="error",
                        timeout=15)
            return
        endpoints = self.world.connect(self.scheduler)
        if "metrics" in endpoints:
            self.sub_title = f"demo · metrics at {endpoints['metrics']}"
        self.notify(f"BambooHR sends webhooks to {endpoints.get('webhooks')}; alerts are "
                    f"written to {endpoints['alerts']}", title="real-time intake on",
                    timeout=8)

    @work(thread=True, exclusive=True, group="hr-life")
    def _hr_tick(self) -> None:
        # HR's event, then the demo's on-call operator (their actions are audited under
        # their name, as an operator's in this console would be).
        # Routine lines, no timeout: a timeout holds the notice bar, which is for what an
        # operator did (their "done: ..." must not be replaced a second later by HR news).
        for who, what in self.world.tick(self.store, self.clock.now()):
            self.call_from_thread(self.notify, what, title=who)
        from rostersync.sandbox.alert_file import read_notices

        notices = read_notices(self.world.alerts_path)
        for notice in notices[self.alerts_seen:]:
            firing = notice.get("state") == "firing"
            self.call_from_thread(self.notify, str(notice.get("detail")),
                                  title=f"alert {notice.get('alert')} {notice.get('state')}",
                                  severity="error" if firing else "information", timeout=8)
        self.alerts_seen = len(notices)


def run_demo_console(world: DemoWorld, config: Config, store: Store) -> int:
    DemoConsole(world, config, store).run()
    return 0
