"""Pytest fixture: a real scim2-server on 127.0.0.1 that requires a bearer token.

Import it where needed (``from tests.scim_fixtures import scim_server``) or from conftest.
Function-scoped so every test starts from an empty LMS; a start/stop costs ~0.2 s.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rostersync.sandbox.scim_server import ScimSandbox

SCIM_TOKEN = "test-token"


@pytest.fixture
def scim_server() -> Iterator[ScimSandbox]:
    with ScimSandbox(token=SCIM_TOKEN) as server:
        yield server
