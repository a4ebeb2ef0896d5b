"""GraphiQL on the development server runs from our own files: with every request to anywhere but the server
blocked, the page loads, takes the API token under Headers and answers a query.
"""

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from unittest import mock

import httpx
import pytest

from tests.support.admin import Server, new_page, start_server, stop_server

DEMO_TOKEN = re.compile(r"demo API token for Anna Schmidt \(admin\), shown once: (\S+)")


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> AsyncIterator[Server]:
    """`pipewright serve` in development (GraphiQL on) with the demo data."""
    with mock.patch.dict(os.environ, {"PIPEWRIGHT_ENV": "development"}):
        running = await start_server(tmp_path_factory.mktemp("ide"), demo=True, template=sqlite_template)
    try:
        yield running
    finally:
        stop_server(running)


def demo_token(server: Server) -> str:
    found = DEMO_TOKEN.search(server.log.read_text())
    assert found, server.log.read_text()[-2000:]
    return found.group(1)


async def test_graphiql_page_loads_only_our_own_files_under_a_self_only_policy(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200 and "GraphiQL" in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "style-src 'self';" in policy and "connect-src 'self';" in policy
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and all(s.startswith("/graphql/ide/") or s.startswith("data:") for s in sources), sources
        assert "<script>" not in page.text  # no inline script: the policy would refuse it
        for source in sources:
            if source.startswith("/"):
                asset = await http.get(source)
                assert asset.status_code == 200, source
        licence = await http.get("/graphql/ide/graphiql.LICENSE")
        assert licence.status_code == 200 and "MIT" in licence.text


async def test_graphiql_runs_a_query_with_every_other_host_blocked(browser, server: Server) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import expect

    page = await new_page(browser, server)
    blocked: list[str] = []
    refused: list[str] = []

    async def only_the_server(route) -> None:  # type: ignore[no-untyped-def]
        if route.request.url.startswith(server.url + "/"):
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort()

    await page.context.route("**/*", only_the_server)
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)

    await page.goto("/graphql")
    query_editor = page.locator(".graphiql-query-editor .CodeMirror")
    await expect(query_editor).to_be_visible()

    await page.get_by_role("button", name="Headers", exact=True).click()
    await page.locator(".graphiql-editor-tool .CodeMirror:visible").click()
    await page.keyboard.insert_text('{"Authorization": "Bearer %s"}' % demo_token(server))

    await query_editor.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.insert_text("{ me { name role } }")
    await page.get_by_role("button", name=re.compile("Execute query")).click()

    result = page.locator(".graphiql-response")
    await expect(result).to_contain_text('"name": "Anna Schmidt"')
    await expect(result).to_contain_text('"role": "admin"')
    assert blocked == [] and refused == []
