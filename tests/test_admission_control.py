"""Under overload the API says so: beyond PIPEWRIGHT_MAX_INFLIGHT_REQUESTS a request waits a bounded time, then
gets 503 with Retry-After before any of it ran; in embedded mode, writes get 503 while the worker is behind."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from server import config
from server.actor import SYSTEM
from server.app import create_app
from server.models import Deal
from server.services.elements import create_element
from tests.support import add_rule, make_pipeline, make_token, wait_until

CREATE_DEAL = 'mutation($title: String!) { createDeal(input: {title: $title}) { __typename ... on Deal { id } } }'
ME = "query { me { name } }"


def _app(monkeypatch: pytest.MonkeyPatch, **settings: str) -> httpx.ASGITransport:
    for name, value in settings.items():
        monkeypatch.setenv(f"PIPEWRIGHT_{name}", value)
    config.reload()
    return httpx.ASGITransport(app=create_app(runtime=False))


class HeldBody:
    """A request body that arrives only when released: its request is admitted and holds its slot meanwhile."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.body = json.dumps(payload).encode()
        self.admitted = asyncio.Event()
        self.release = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.admitted.set()  # the app asked for the body: past admission control
        await asyncio.wait_for(self.release.wait(), 10)
        yield self.body


async def test_requests_beyond_the_bound_get_503_with_retry_after_and_write_nothing(
        db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    await make_pipeline()
    _, secret = await make_token("admin")
    transport = _app(monkeypatch, MAX_INFLIGHT_REQUESTS="2", ADMISSION_WAIT_MS="50", RETRY_AFTER_S="3")
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers={"Authorization": f"Bearer {secret}"}) as client:
        held = [HeldBody({"query": CREATE_DEAL, "variables": {"title": f"Held {n}"}}) for n in range(2)]
        in_flight = [asyncio.create_task(client.post("/graphql", content=body,
                                                      headers={"Content-Type": "application/json"}))
                     for body in held]
        await asyncio.wait_for(asyncio.gather(*(body.admitted.wait() for body in held)), 10)

        refused = await asyncio.gather(*(client.post("/graphql", json={"query": CREATE_DEAL,
                                                                       "variables": {"title": f"Refused {n}"}})
                                         for n in range(3)))
        admin_page = await client.get("/admin")
        health = await client.get("/health")
        for body in held:
            body.release.set()
        served = await asyncio.gather(*in_flight)
        after = await client.post("/graphql", json={"query": CREATE_DEAL, "variables": {"title": "Later"}})

    for response in [*refused, admin_page]:
        assert response.status_code == 503 and response.headers["retry-after"] == "3"
    assert refused[0].json()["errors"][0]["extensions"]["code"] == "OVERLOADED"
    assert "Try again in 3 s" in admin_page.text
    assert health.status_code == 200
    assert [r.json()["data"]["createDeal"]["__typename"] for r in [*served, after]] == ["Deal"] * 3
    assert sorted(await Deal.all().values_list("title", flat=True)) == ["Held 0", "Held 1", "Later"]


@pytest.mark.sqlite_only  # the run backlog gate is the embedded worker's
async def test_writes_get_503_while_the_embedded_worker_is_behind_and_reads_are_served(
        db: Any, monkeypatch: pytest.MonkeyPatch, worker_paused: None) -> None:
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "generate_code", {"length": 6}, key="code")
    for n in range(3):  # three due runs that no worker takes while it is paused
        await create_element("deal", {"title": f"Waiting {n}"}, actor=SYSTEM)
    _, secret = await make_token("admin")
    transport = _app(monkeypatch, MAX_RUN_BACKLOG="2", RETRY_AFTER_S="2")
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers={"Authorization": f"Bearer {secret}"}) as client:
        write = await client.post("/graphql", json={"query": CREATE_DEAL, "variables": {"title": "Too soon"}})
        read = await client.post("/graphql", json={"query": ME})

    assert write.status_code == 503 and write.headers["retry-after"] == "2"
    assert "behind with rule runs" in write.json()["errors"][0]["message"]
    assert read.status_code == 200 and "errors" not in read.json()
    assert not await Deal.filter(title="Too soon").exists()


async def test_a_write_is_served_once_the_worker_has_caught_up(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "generate_code", {"length": 6}, key="code")
    await create_element("deal", {"title": "Done soon"}, actor=SYSTEM)
    _, secret = await make_token("admin")
    transport = _app(monkeypatch, MAX_RUN_BACKLOG="1")
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers={"Authorization": f"Bearer {secret}"}) as client:

        async def created() -> bool:
            response = await client.post("/graphql", json={"query": CREATE_DEAL, "variables": {"title": "Next"}})
            return response.status_code == 200

        await wait_until(created, timeout_s=10, what="createDeal under the backlog bound")
    assert await Deal.filter(title="Next").count() == 1
