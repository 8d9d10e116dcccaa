"""The base of every data screen: a refresh loop that cannot overlap, queries in thread
workers, the banner, and key checks driven by the keymap.

Refreshing: a load runs in a thread worker (a sqlite connection may not cross threads;
Store gives each thread its own). The next load is scheduled only when the last one has
been shown, so a slow query set can never pile up; a screen that is not on top skips its
turn and reloads when it is shown again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import ComposeResult
from textual.events import Key
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header

from rostersync.console import keymap
from rostersync.console.leader_status import leader_status
from rostersync.console.messages import DataChanged, Loaded
from rostersync.console.widgets.banner import Banner
from rostersync.console.widgets.leader_line import LeaderLine
from rostersync.console.widgets.notice_bar import NoticeBar
from rostersync.storage import console_queries as q
from rostersync.storage import lease as lease_store
from rostersync.sync.leadership import LEADER

if TYPE_CHECKING:
    from textual import getters

    from rostersync.console.app import ConsoleApp


class DataScreen(Screen):
    scope = "list"
    refresh_seconds = 2.0

    if TYPE_CHECKING:
        # Every data screen runs in the console app: its store, clock and actions, typed.
        app = getters.app(ConsoleApp)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._loading = False
        self._again = False
        self._timer: Timer | None = None
        self.data: Any = None
        self._keys_seen: dict[str, bool] | None = None  # which keys applied at the last load

    # -- layout ---------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        line = LeaderLine(id="leader-line")
        line.show(self.app.leader, self.app.clock.now())
        yield line
        yield Banner(id="banner")
        yield from self.compose_body()
        yield NoticeBar(id="notice-bar")
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    # -- the refresh loop --------------------------------------------------------------

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        if self._loading:
            self._again = True  # one more load when this one lands, never two at once
            return
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._loading = True
        self._load()

    @work(thread=True, group="load")
    def _load(self) -> None:
        try:
            data = self.query_data()
            banner = q.banner_figures(self.app.store)
            ha = self.app.config.ha
            leader = leader_status(lease_store.last(self.app.store, LEADER),
                                   self.app.clock.now(), ha_enabled=ha.enabled, node=ha.node)
        except Exception as exc:  # shown as a notification, never a traceback
            self.post_message(Loaded(None, exc))
            return
        self.post_message(Loaded((banner, leader, data)))

    def on_loaded(self, message: Loaded) -> None:
        message.stop()
        self._loading = False
        if message.error is not None:
            self.notify(f"could not read the database: {message.error}", severity="error",
                        timeout=8)
        else:
            banner, leader, self.data = message.data
            self.app.show_leader(leader)
            self.query_one(Banner).show_status(banner, self.app.scheduler_paused,
                                               read_only=self.app.read_only,
                                               expanded=self.app.banner_expanded)
            self.show_data(self.data)
            # Which keys apply (a highlighted row, a next page) may have changed with the
            # data: the footer redraws them now, not at the next focus change, and only
            # when they did change (a redraw rebuilds the footer; loads come every tick).
            keys = {key: b.enabled for key, b in self.active_bindings.items()}
            if keys != self._keys_seen:
                self._keys_seen = keys
                self.refresh_bindings()
        if self._again:
            self._again = False
            self.reload()
        elif self.app.live:
            self._timer = self.set_timer(self.refresh_seconds, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self.is_current:
            self.reload()
        # else: on_screen_resume reloads when the screen is shown again

    def on_data_changed(self, message: DataChanged) -> None:
        message.stop()
        self.reload()

    def query_data(self) -> Any:
        """Runs in a thread worker: every database read of one refresh."""
        return None

    def show_data(self, data: Any) -> None:
        """Runs on the event loop: put the data on screen."""

    # -- keys ---------------------------------------------------------------------------

    def why_not(self, action: str) -> str | None:
        """Why an action does not apply right now (None: it applies)."""
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if keymap.is_dangerous(action) and self.app.read_only:
            return False  # read-only: dangerous keys vanish from footer and help
        if keymap.is_dangerous(action) and self.app.leader_refusal(action) is not None:
            return None  # refused by who leads (console/leader_status.py): on_key says why
        if self.why_not(action) is not None:
            return None  # shown disabled; on_key says why
        return True

    def on_key(self, event: Key) -> None:
        # A disabled binding does not run; tell the operator why, as lazygit does.
        for k in keymap.KEYS:
            if k.scope == self.scope and event.key in keymap.keys_of(k, self.app.key_overrides):
                if keymap.is_dangerous(k.action) and self.app.read_only:
                    self.notify(f"'{k.label}' is not available in read-only mode",
                                severity="warning")
                    event.stop()
                    return
                why = (self.app.leader_refusal(k.action) if keymap.is_dangerous(k.action)
                       else None) or self.why_not(k.action)
                if why is not None:
                    self.notify(why, title=k.label, severity="warning")
                    event.stop()
                return
