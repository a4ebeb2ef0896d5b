"""Live subscriptions over graphql-transport-ws against a running uvicorn: the `gql` client for the
user's view, a raw websocket for protocol edge cases."""

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from server.actor import SYSTEM
from server.services.elements import create_element
from tests.support import add_rule, make_pipeline, make_token, wait_until
from tests.support.api import comment

pytestmark = pytest.mark.production_backend

STREAM = """subscription($after: String) { activityStream(after: $after) {
  cursor kind elementType elementId data } }"""
RUNS = """subscription($id: ID!) { ruleRuns(elementType: "deal", elementId: $id) {
  cursor runId ruleKey status outputs } }"""



def ws_client(served: str, token: str) -> Client:
    transport = WebsocketsTransport(
        url=f"ws://{served}/graphql", init_payload={"authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    return Client(transport=transport)


async def next_event(stream: Any, timeout_s: float = 10) -> dict[str, Any]:
    return await asyncio.wait_for(anext(stream), timeout_s)


async def subscribed(stream: Any) -> "asyncio.Future[dict[str, Any]]":
    """gql sends the subscribe message on first iteration: start it, and wait until the server (in this
    process) has registered the subscription with its live hub, so no event is sent before it listens."""
    from server.live import hub

    before = len(hub.subscriptions)
    pending = asyncio.ensure_future(next_event(stream))

    async def registered() -> bool:
        return len(hub.subscriptions) > before

    await wait_until(registered, timeout_s=10, what="the subscription to be registered")
    return pending


async def test_a_reconnecting_subscriber_gets_what_it_missed_then_live_events_none_twice(served: str) -> None:
    await make_pipeline()
    _, token = await make_token("admin")
    deal = await create_element("deal", {"title": "Followed"}, actor=SYSTEM)

    async with ws_client(served, token) as session:
        stream = session.subscribe(GraphQLRequest(STREAM))
        pending = await subscribed(stream)
        await comment(served, token, deal.id, "one")
        first = (await pending)["activityStream"]
        assert first["kind"] == "timeline" and first["data"]["text"] == "one"
        await stream.aclose()

    for text in ("two", "three", "four"):  # missed while disconnected
        await comment(served, token, deal.id, text)

    async with ws_client(served, token) as session:
        stream = session.subscribe(GraphQLRequest(STREAM, variable_values={"after": first["cursor"]}))
        received = [(await next_event(stream))["activityStream"] for _ in range(3)]
        await comment(served, token, deal.id, "five")
        received.append((await next_event(stream))["activityStream"])
        with pytest.raises(asyncio.TimeoutError):
            await next_event(stream, timeout_s=0.5)  # nothing more, in particular no repeat
        await stream.aclose()

    assert [e["data"]["text"] for e in received] == ["two", "three", "four", "five"]
    cursors = [int(first["cursor"])] + [int(e["cursor"]) for e in received]
    assert cursors == sorted(set(cursors))
    assert {e["elementId"] for e in received} == {str(deal.id)}


@pytest.mark.production_only  # SQLite writers take turns: there a stalled writer holds up the others by design
async def test_a_writer_stalled_before_commit_holds_up_no_other_and_its_event_comes_after_theirs(served: str) -> None:
    from server import db, events

    await make_pipeline()
    _, token = await make_token("admin")
    deal = await create_element("deal", {"title": "Stalled"}, actor=SYSTEM)
    stalled, release = asyncio.Event(), asyncio.Event()

    async def hold(_: list[None]) -> None:  # after its events are written, before its commit: a paused host
        stalled.set()
        await asyncio.wait_for(release.wait(), 30)

    async def stalled_writer() -> None:
        async with db.transaction():
            await events.emit("timeline", {"text": "late"}, element_type="deal", element_id=deal.id)
            db.before_commit_batch("stalled", [None], hold)

    async with ws_client(served, token) as session:
        stream = session.subscribe(GraphQLRequest(STREAM))
        pending = await subscribed(stream)
        writer = asyncio.ensure_future(stalled_writer())
        await asyncio.wait_for(stalled.wait(), 10)
        await asyncio.wait_for(comment(served, token, deal.id, "early"), 5)  # commits without waiting for it
        first = (await pending)["activityStream"]
        release.set()
        await writer
        second = (await next_event(stream))["activityStream"]
        await stream.aclose()
    assert [first["data"]["text"], second["data"]["text"]] == ["early", "late"]  # commit order, not insert order

    async with ws_client(served, token) as session:  # resuming after "early" still finds "late": no gap
        stream = session.subscribe(GraphQLRequest(STREAM, variable_values={"after": first["cursor"]}))
        resumed = (await next_event(stream))["activityStream"]
        await stream.aclose()
    assert (resumed["data"]["text"], resumed["cursor"]) == ("late", second["cursor"])


async def test_rule_run_status_changes_arrive_live_in_order(served: str) -> None:
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "generate_code", {"length": 8}, key="promo")
    _, token = await make_token("admin")
    deal = await create_element("deal", {"title": "Runs"}, actor=SYSTEM)

    async with ws_client(served, token) as session:
        stream = session.subscribe(GraphQLRequest(RUNS, variable_values={"id": str(deal.id)}))
        pending = await subscribed(stream)
        async with httpx.AsyncClient(base_url=f"http://{served}", headers={"Authorization": f"Bearer {token}"}) as c:
            await c.post("/graphql", json={"query": "mutation($id: ID!, $s: ID!) { moveDeal(id: $id, stageId: $s) "
                                                    "{ __typename } }",
                                           "variables": {"id": str(deal.id), "s": str(stages["offer"].id)}})
        events = [(await pending)["ruleRuns"]]
        while not events or events[-1]["status"] != "succeeded":
            events.append((await next_event(stream))["ruleRuns"])
        await stream.aclose()

    assert [e["status"] for e in events] == ["scheduled", "running", "succeeded"]
    assert {e["ruleKey"] for e in events} == {"promo"}
    assert len(events[-1]["outputs"]["code"]) == 8

    finished_only = """subscription($id: ID!, $after: String) { ruleRuns(elementType: "deal", elementId: $id,
      status: ["succeeded", "failed"], after: $after) { status } }"""
    async with ws_client(served, token) as session:
        stream = session.subscribe(GraphQLRequest(finished_only, variable_values={"id": str(deal.id), "after": "0"}))
        assert [(await next_event(stream))["ruleRuns"]["status"]] == ["succeeded"]
        with pytest.raises(asyncio.TimeoutError):
            await next_event(stream, timeout_s=0.5)
        await stream.aclose()


async def test_employees_receive_only_events_of_their_own_deals(served: str) -> None:
    await make_pipeline()
    maria, maria_token = await make_token("employee", "Maria")
    tom, _ = await make_token("employee", "Tom")
    _, admin = await make_token("admin")
    toms = await create_element("deal", {"title": "Tom's", "responsible": tom.id}, actor=SYSTEM)
    marias = await create_element("deal", {"title": "Maria's", "responsible": maria.id}, actor=SYSTEM)

    async with ws_client(served, maria_token) as session:
        stream = session.subscribe(GraphQLRequest(STREAM))
        pending = await subscribed(stream)
        await comment(served, admin, toms.id, "about Tom's deal")
        await comment(served, admin, marias.id, "about Maria's deal")
        got = (await pending)["activityStream"]
        await stream.aclose()
    assert got["data"]["text"] == "about Maria's deal"


# ------------------------------------------------------------------ the protocol, raw


async def raw(served: str, **kwargs: Any) -> Any:
    return await websockets.connect(f"ws://{served}/graphql", subprotocols=["graphql-transport-ws"], **kwargs)


async def closed_with(socket: Any) -> tuple[int, str]:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(socket.recv(), 5)
    return socket.close_code, socket.close_reason


async def test_malformed_and_unauthenticated_messages_close_the_connection(served: str) -> None:
    _, token = await make_token("admin")
    socket = await raw(served)
    await socket.send("this is not json")
    assert (await closed_with(socket))[0] == 4400

    socket = await raw(served)
    await socket.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": STREAM}}))
    assert await closed_with(socket) == (4401, "Unauthorized")

    socket = await raw(served)
    await socket.send(json.dumps({"type": "connection_init", "payload": {"authorization": "Bearer pw_wrong"}}))
    assert await closed_with(socket) == (4403, "Forbidden")

    socket = await raw(served)
    await socket.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
    ack = json.loads(await socket.recv())
    assert ack["type"] == "connection_ack" and ack["payload"]["role"] == "admin"
    await socket.close()


async def test_a_connection_may_hold_only_so_many_subscriptions(served: str) -> None:
    from server.config import settings

    _, token = await make_token("admin")
    limit = settings().max_subscriptions
    socket = await raw(served)
    await socket.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    for n in range(limit + 1):
        await socket.send(json.dumps({"type": "subscribe", "id": str(n), "payload": {"query": STREAM}}))
    refusal = json.loads(await asyncio.wait_for(socket.recv(), 5))
    assert refusal == {"id": str(limit), "type": "error", "payload": [{"message": "Subscription limit reached"}]}
    await socket.close()


async def test_pages_from_other_origins_may_not_open_a_websocket(served: str) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await raw(served, origin="https://evil.example")
    assert refused.value.response.status_code == 403


async def test_events_past_the_retention_are_pruned(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from server import clock, config, events
    from server.models import Event

    await make_pipeline()
    deal = await create_element("deal", {"title": "Old news"}, actor=SYSTEM)
    await Event.filter(element_id=deal.id).update(created_at=clock.utcnow() - timedelta(hours=200))
    fresh = await create_element("deal", {"title": "Fresh"}, actor=SYSTEM)
    monkeypatch.setenv("PIPEWRIGHT_EVENT_RETENTION_H", "168")
    config.reload()
    await events.prune()  # the embedded scheduler's sweep may have pruned the old one first: either way it is gone
    assert not await Event.filter(element_id=deal.id).exists()
    assert await Event.filter(element_id=fresh.id).exists()


async def test_queries_over_one_websocket_do_not_share_a_cache(served: str) -> None:
    _, stages = await make_pipeline()
    _, token = await make_token("admin")
    deal = await create_element("deal", {"title": "Cached?"}, actor=SYSTEM)
    read = GraphQLRequest("query($id: ID!) { deal(id: $id) { ... on Deal { stage { name } } } }",
                          variable_values={"id": str(deal.id)})
    async with ws_client(served, token) as session:
        assert (await session.execute(read))["deal"]["stage"]["name"] == "New"
        renamed = await session.execute(GraphQLRequest(
            'mutation($id: ID!) { updateStage(id: $id, name: "Fresh leads") { __typename } }',
            variable_values={"id": str(stages["new"].id)}))
        assert renamed["updateStage"]["__typename"] == "Stage"
        assert (await session.execute(read))["deal"]["stage"]["name"] == "Fresh leads"
