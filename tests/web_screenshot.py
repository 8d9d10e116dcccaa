"""The web console in headless Chromium, saved as screenshots/console_web.png.

    python -m tests.web_screenshot --config PATH [--out screenshots]

`make screenshots` calls ``shoot`` on the demo day's database (tests/screenshots.py):
`rostersync console --web` serves it on a free loopback port and Chromium opens the page
as a person would. Without Chromium this says so and writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from rostersync.storage.db import Store
from rostersync.sync.config import load_config
from rostersync.sync.status import build_status
from tests.chromium import find_browser, headless_chromium
from tests.web_console import web_console

WINDOW = (1600, 1000)  # pixels: about 160 x 50 cells at the page's 16 px font
NAME = "console_web.png"
# The page fades the terminal in; then two animation frames let xterm paint what arrived.
SETTLED = ("Promise.all(document.getAnimations().map(a => a.finished)).then(() => new "
           "Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))))")


def dashboard_phrases(config_path: Path) -> list[str]:
    """Text the dashboard shows once its data is in: the health level and the counts."""
    config = load_config(config_path)
    store = Store(config.database.path)
    try:
        doc = build_status(store, config, datetime.now(UTC))
    finally:
        store.close()
    return ["rostersync — read-only", doc["status"], f"held {doc['ops']['held']}",
            f"total {doc['drift_total']}", "Recent activity"]


async def _shoot(browser: str, config_path: Path, target: Path) -> None:
    phrases = dashboard_phrases(config_path)
    with web_console(config_path) as url:
        async with headless_chromium(browser, WINDOW) as page:
            await page.send("Page.navigate", url=url)
            await page.until(*phrases)
            await page.evaluate(SETTLED)
            target.write_bytes(await page.screenshot())


def shoot(config_path: Path, out: Path) -> Path | None:
    """The screenshot of the read-only web console over this config's database."""
    browser = find_browser()
    if browser is None:
        print("web console screenshot skipped: no Chromium found (apt-get install chromium)")
        return None
    out.mkdir(parents=True, exist_ok=True)
    target = (out / NAME).resolve()
    asyncio.run(_shoot(browser, config_path, target))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    args = parser.parse_args(argv)
    target = shoot(args.config, args.out)
    if target is not None:
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
