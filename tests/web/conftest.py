"""Fixtures of the admin's tests: `pipewright serve` as a child process, a headless Chromium, an admin.

Module-scoped ones are per test module: each module gets its own server, browser and admin.
"""

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.admin import CHROMIUM, CHROMIUM_ARGS, Admin, Server, start_server, stop_server
from tests.support.servers import missing


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> AsyncIterator[Server]:
    """`pipewright serve` with the demo data, shared by the module's tests."""
    running = await start_server(tmp_path_factory.mktemp("admin"), demo=True, template=sqlite_template)
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture
async def empty_server(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Server]:
    """A server of the test's own, without demo data or any admin: it offers the first-admin setup."""
    running = await start_server(tmp_path, demo=False, template=sqlite_template)
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    if not os.path.exists(CHROMIUM):
        missing("chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture(scope="module")
def admin(server: Server) -> Admin:
    return server.create_admin("anna@pipewright.example", "Anna Schmidt")
