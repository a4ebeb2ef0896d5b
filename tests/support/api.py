"""GraphQL over the app in-process (httpx ASGITransport), as a user with an API token sees it."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from server.app import create_app


@asynccontextmanager
async def api(token: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


async def answer(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    """The whole answer (data and errors) of a request that reached GraphQL."""
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()


async def data(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    body = await answer(client, query, **variables)
    assert "errors" not in body, body["errors"]
    return body["data"]


def refused_fields(result: dict[str, Any]) -> dict[str, str]:
    """field → message of a ValidationError result."""
    assert result["__typename"] == "ValidationError", result
    return {e["field"]: e["message"] for e in result["errors"]}


class Api:
    """The app in-process for a test that speaks as several token holders, and anonymously."""

    def __init__(self, transport: httpx.ASGITransport) -> None:
        self.transport = transport

    async def as_(self, token: str, query: str, **variables: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(transport=self.transport, base_url="http://crm.test",
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            body = (await client.post("/graphql", json={"query": query, "variables": variables})).json()
        assert "errors" not in body, body
        return body["data"]

    async def get(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=self.transport, base_url="http://crm.test") as client:
            return await client.get(path)


async def comment(served: str, token: str, deal_id: int, text: str) -> None:
    """A comment on a deal through the served API, as a client would post it."""
    async with httpx.AsyncClient(base_url=f"http://{served}", headers={"Authorization": f"Bearer {token}"}) as client:
        response = await client.post("/graphql", json={
            "query": "mutation($id: ID!, $t: String!) { addComment(elementType: \"deal\", elementId: $id, text: $t) "
                     "{ __typename } }",
            "variables": {"id": str(deal_id), "t": text}})
    assert response.json()["data"]["addComment"]["__typename"] == "TimelineEntry", response.text
