"""Membership changes cancelled mid-request (a console quitting during an apply) leave no
"Future exception was never retrieved" behind, against a real scim2-server.

The first PATCH of a Group is held inside the LMS until every caller has been cancelled:
the sender's own change and those waiting behind it all get an outcome that nobody will
read, which asyncio reports when the futures are collected unless they were read.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.sync.config import ScimTargetConfig
from rostersync.sync.config_audiences import AudienceConfig
from rostersync.sync.connectors.scim import ScimTarget

TOKEN = "group-cancel-token"
AUDIENCE = AudienceConfig(id="sales-compliance", rule='department == "Sales"')


class HeldPatch:
    """Holds members PATCHes until released; says when the first one has arrived."""

    wants_body = False

    def __init__(self) -> None:
        self.holding = False
        self.arrived = threading.Event()
        self.release = threading.Event()

    def __call__(self, method: str, path: str, body: bytes = b""):
        if self.holding and method == "PATCH" and path.startswith("/v2/Groups/"):
            self.arrived.set()
            self.release.wait(10)
        return None


async def cancel_mid_request(server: ScimSandbox, hold: HeldPatch,
                             seen: list[dict[str, Any]]) -> list[Any]:
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    config = ScimTargetConfig(base_url=server.base_url, token_env="UNUSED_TOKEN_ENV")
    async with ScimTarget(config, token=TOKEN) as target:
        await target.add_to_audience(AUDIENCE, "user-0")  # the Group exists
        hold.holding = True
        tasks = [asyncio.ensure_future(target.add_to_audience(AUDIENCE, f"user-{i}"))
                 for i in range(1, 21)]
        await asyncio.to_thread(hold.arrived.wait, 10)  # one PATCH is in the LMS
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        hold.release.set()
    return outcomes


def test_cancelled_membership_changes_leave_no_unread_outcome():
    hold = HeldPatch()
    server = ScimSandbox(token=TOKEN, fault=hold).start()
    seen: list[dict[str, Any]] = []
    try:
        outcomes = asyncio.run(cancel_mid_request(server, hold, seen))
    finally:
        hold.release.set()
        server.stop()
    gc.collect()  # where asyncio reports an exception no one read
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)
    assert [ctx.get("message") for ctx in seen] == []
