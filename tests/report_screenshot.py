"""Render the HTML reports in headless Chromium and save PNGs under screenshots/.

    python -m tests.report_screenshot [--out screenshots]

The history is tests/report_world.py's (the real engine against a real SCIM sandbox on
127.0.0.1, with terminations on time, held, failed and suppressed). Each report is
written as one HTML file and opened from disk with networking disabled, which also
shows that it needs nothing from the network. Without Chromium this says so and exits 0.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome")
SHOTS = {"terminations": (1200, 1500), "drift": (1200, 1700), "operator": (1200, 900)}


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    args = parser.parse_args(argv)
    browser = find_browser()
    if browser is None:
        print("report screenshots skipped: no Chromium found (apt-get install chromium)")
        return 0
    from rostersync.console.cli import main as cli
    from rostersync.sandbox.scim_server import ScimSandbox
    from tests.report_world import SINCE, UNTIL, live

    args.out.mkdir(parents=True, exist_ok=True)
    token = "report-screenshot-token"
    with tempfile.TemporaryDirectory() as tmp, ScimSandbox(token=token) as lms:
        folder = Path(tmp)
        history = live(folder, lms, token)
        for name, (width, height) in SHOTS.items():
            page = folder / f"{name}.html"
            code = cli(["report", name, "--since", SINCE, "--until", UNTIL, "--format", "html",
                        "--output", str(page), "--config", str(history.config_path)])
            if code not in (0,):
                print(f"report {name} exited {code}", file=sys.stderr)
                return 1
            target = (args.out / f"report_{name}.png").resolve()
            subprocess.run(
                [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                 f"--window-size={width},{height}", f"--screenshot={target}",
                 page.resolve().as_uri()],
                check=True, capture_output=True, timeout=120)
            print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
