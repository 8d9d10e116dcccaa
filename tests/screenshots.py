"""`make screenshots`: regenerate screenshots/*.svg with the snapshot tests' harness.

    python -m tests.screenshots [--out screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from sandbox.scim_server import ScimSandbox
from tests.console_harness import SIZE, TOKEN, make_app, seed
from tests.console_views import VIEWS


async def _shoot(seeded, folder: Path, out: Path, name: str) -> None:
    read_only, steps = VIEWS[name]
    app = make_app(seeded, folder / name, read_only=read_only)
    async with app.run_test(size=SIZE) as pilot:
        await steps(pilot)
        app.save_screenshot(f"{name}.svg", path=str(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, ScimSandbox(token=TOKEN) as lms:
        seeded = seed(Path(tmp) / "world", lms)
        for name in VIEWS:
            asyncio.run(_shoot(seeded, Path(tmp), args.out, name))
            print(args.out / f"{name}.svg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
