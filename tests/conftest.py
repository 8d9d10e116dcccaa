from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.storage.db import Store
from rostersync.storage.store_factory import make_store
from rostersync.sync.config import load_config
from tests.console_harness import TOKEN, Seeded, make_app, seed
from tests.pg_server import pg_database, pg_server, pg_url  # noqa: F401 - fixtures
from tests.scim_fixtures import SCIM_TOKEN, scim_server  # noqa: F401 - a fixture
from tests.support import World, set_token_env, write_config

# The BambooHR sandbox fixtures (`clock`, `hris`) for the modules that use them; a module
# defining its own fixture of that name keeps its own.
pytest_plugins = ["tests.bamboo_fixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    # The configs tests write (tests.support.write_config) name a fresh PostgreSQL
    # database instead of a SQLite file: `pytest --database=pg tests/test_end_to_end.py`.
    parser.addoption("--database", choices=("sqlite", "pg"), default="sqlite",
                     help="the store the tests' configs name")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--database") == "pg":
        os.environ["ROSTERSYNC_TEST_DATABASE"] = "pg"


@pytest.fixture
def lms_token() -> Iterator[str]:
    set_token_env(SCIM_TOKEN)
    yield SCIM_TOKEN


@pytest.fixture
def workspace(tmp_path: Path, scim_server: ScimSandbox, lms_token: str):  # noqa: F811
    """A folder with a 500-person HRIS CSV and a config pointing at a fresh SCIM server."""

    class Workspace:
        folder = tmp_path
        lms = scim_server
        token = lms_token
        world = World.generate(500)
        csv_path = tmp_path / "employees.csv"

        def __init__(self) -> None:
            self.world.write(self.csv_path)
            self.config_path = write_config(tmp_path, scim_server.base_url, self.csv_path)

        def reconfigure(self, **sections) -> None:
            self.config_path = write_config(tmp_path, scim_server.base_url, self.csv_path,
                                            **sections)

        def args(self, *argv: str) -> list[str]:
            return [*argv, "--config", str(self.config_path)]

        def store(self) -> Store:
            """The store the config names (SQLite here, PostgreSQL under --database=pg)."""
            return make_store(load_config(self.config_path).database)

    return Workspace()


# -- the console's tests: one seeded world per test module (seeding runs the real engine
# twice against a real SCIM sandbox), and a console over a private copy of it ----------

@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # anyio's pytest plugin (anyio comes with httpx) runs them on asyncio


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Iterator[Seeded]:
    with ScimSandbox(token=TOKEN) as lms:
        yield seed(tmp_path_factory.mktemp("console-world"), lms)


@pytest.fixture
def app(seeded, tmp_path):
    return make_app(seeded, tmp_path)
