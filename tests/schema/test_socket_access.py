"""Open websockets keep to the access their token has now: revoked tokens and deactivated users are
closed without waiting for the client, each new operation re-reads the token, a demoted user stops
seeing what the new role hides, and a user or token may hold only so many sockets."""

import asyncio
import json
import os
from typing import Any

import httpx
import pytest
import websockets

from server import clock, config
from server.models import ApiToken, User
from server.services import tokens, users
from server.services.access import SYSTEM, Actor
from server.services.elements import create_element
from tests.support.live_server import running_app
from tests.support.serve import serve, stop, wait_ready
from tests.support.servers import free_port
from tests.support.api import comment
from tests.support import make_pipeline, make_token, wait_until

pytestmark = pytest.mark.production_backend

STREAM = "subscription { activityStream { kind data } }"
TOKENS = "query { apiTokens { id } }"



async def opened(served: str, token: str, **kwargs: Any) -> Any:
    """A graphql-transport-ws socket past connection_init (asserting the ack)."""
    socket = await websockets.connect(f"ws://{served}/graphql", subprotocols=["graphql-transport-ws"], **kwargs)
    await socket.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
    ack = json.loads(await asyncio.wait_for(socket.recv(), 5))
    assert ack["type"] == "connection_ack", ack
    return socket


async def refused(served: str, token: str) -> tuple[int, str]:
    socket = await websockets.connect(f"ws://{served}/graphql", subprotocols=["graphql-transport-ws"])
    await socket.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
    return await closed_with(socket)


async def closed_with(socket: Any, timeout_s: float = 5) -> tuple[int, str]:
    """Reads until the server closes the socket (the client sends nothing meanwhile)."""
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(socket.recv(), timeout_s)
    return socket.close_code, socket.close_reason


async def subscribe(socket: Any, op_id: str, query: str) -> None:
    """Starts a subscription and waits until this process's hub has registered it."""
    from server.live import hub

    before = len(hub.subscriptions)
    await socket.send(json.dumps({"type": "subscribe", "id": op_id, "payload": {"query": query}}))

    async def registered() -> bool:
        return len(hub.subscriptions) > before

    await wait_until(registered, timeout_s=10, what="the subscription to be registered")


async def answer(socket: Any, op_id: str, query: str) -> dict[str, Any]:
    await socket.send(json.dumps({"type": "subscribe", "id": op_id, "payload": {"query": query}}))
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 5))
        if message.get("id") == op_id and message["type"] in ("next", "error"):
            return message


async def texts_until(socket: Any, last: str) -> list[str]:
    """Comment texts of the activity stream up to and including `last`."""
    seen = []
    while not seen or seen[-1] != last:
        message = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert message["type"] == "next", message
        seen.append(message["payload"]["data"]["activityStream"]["data"]["text"])
    return seen


async def api(served: str, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"http://{served}", headers={"Authorization": f"Bearer {token}"}) as client:
        body = (await client.post("/graphql", json={"query": query, "variables": variables})).json()
    assert "errors" not in body, body
    return body["data"]


async def token_id_of(user: User) -> int:
    return (await ApiToken.get(user_id=user.id)).id


# ------------------------------------------------------------------ revocation reaches open sockets


async def test_revoking_a_token_closes_its_open_websockets_at_once(served: str) -> None:
    await make_pipeline()
    admin, admin_token = await make_token("admin")
    employee, token = await make_token("employee", "Eve")
    idle, subscribed = await opened(served, token), await opened(served, token)
    await subscribe(subscribed, "1", STREAM)

    revoked = await api(served, admin_token, "mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }",
                        {"id": str(await token_id_of(employee))})
    assert revoked["revokeApiToken"]["__typename"] == "ApiToken"

    assert await closed_with(idle) == (4403, "the API token was revoked")
    assert await closed_with(subscribed) == (4403, "the API token was revoked")
    assert await refused(served, token) == (4403, "Forbidden")


async def test_deactivating_a_user_closes_every_websocket_of_theirs(served: str) -> None:
    admin, _ = await make_token("admin")
    employee, token = await make_token("employee", "Eve")
    _, other_token = await tokens.create_token(SYSTEM, user_id=employee.id, name="second integration")
    colleague, colleague_token = await make_token("employee", "Colin")
    sockets = [await opened(served, token), await opened(served, other_token)]
    bystander = await opened(served, colleague_token)

    await users.update_user(employee.id, users.UserInput(active=False), actor=Actor(admin.id, "admin"))

    for socket in sockets:
        assert await closed_with(socket) == (4403, "the user was deactivated")
    assert (await answer(bystander, "1", "query { me { name } }"))["payload"]["data"]["me"]["name"] == "Colin"
    await bystander.close()


async def test_each_operation_on_a_socket_checks_the_token_again(served: str) -> None:
    """A change the hub never heard of (made straight in the database) is still seen by the next operation."""
    admin, token = await make_token("admin")
    socket = await opened(served, token)
    assert "data" in (await answer(socket, "1", TOKENS))["payload"]

    await User.filter(id=admin.id).update(role="employee")
    refused_now = await answer(socket, "2", TOKENS)
    assert refused_now["payload"]["data"] is None
    assert "only admins" in refused_now["payload"]["errors"][0]["message"]

    await ApiToken.filter(user_id=admin.id).update(revoked_at=clock.utcnow())
    await socket.send(json.dumps({"type": "subscribe", "id": "3", "payload": {"query": STREAM}}))
    assert await closed_with(socket) == (4403, "the API token was revoked or its user deactivated")


async def test_a_demoted_manager_stops_receiving_events_of_deals_they_are_not_responsible_for(served: str) -> None:
    await make_pipeline()
    _, admin_token = await make_token("admin")
    manager, token = await make_token("manager", "Mona")
    employee, _ = await make_token("employee", "Tom")
    toms = await create_element("deal", {"title": "Tom's", "responsible": employee.id}, actor=SYSTEM)
    monas = await create_element("deal", {"title": "Mona's", "responsible": manager.id}, actor=SYSTEM)
    socket = await opened(served, token)
    await subscribe(socket, "1", STREAM)

    await comment(served, admin_token, toms.id, "seen as a manager")
    assert await texts_until(socket, "seen as a manager") == ["seen as a manager"]

    demoted = await api(served, admin_token, 'mutation($id: ID!) { updateUser(id: $id, input: {role: "employee"}) '
                                           "{ __typename } }", {"id": str(manager.id)})
    assert demoted["updateUser"]["__typename"] == "User"
    await comment(served, admin_token, toms.id, "hidden from an employee")
    await comment(served, admin_token, monas.id, "about her own deal")
    assert await texts_until(socket, "about her own deal") == ["about her own deal"]
    await socket.close()


async def test_the_legacy_graphql_ws_protocol_is_refused(served: str) -> None:
    """It would run operations without the checks above."""
    socket = await websockets.connect(f"ws://{served}/graphql", subprotocols=["graphql-ws"])
    assert await closed_with(socket) == (4406, "Subprotocol not acceptable")


# ------------------------------------------------------------------ how many sockets


async def test_a_user_and_a_token_may_hold_only_so_many_websockets(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPEWRIGHT_MAX_SOCKETS_PER_USER", "3")
    monkeypatch.setenv("PIPEWRIGHT_MAX_SOCKETS_PER_TOKEN", "2")
    config.reload()
    employee, first = await make_token("employee", "Eve")
    _, second = await tokens.create_token(SYSTEM, user_id=employee.id, name="second integration")
    async with running_app() as served:
        held = [await opened(served, first), await opened(served, first)]
        code, reason = await refused(served, first)
        assert (code, reason) == (4429, "too many open websockets: at most 2 per API token "
                                        "(PIPEWRIGHT_MAX_SOCKETS_PER_TOKEN); close one first")
        held.append(await opened(served, second))
        code, reason = await refused(served, second)
        assert code == 4429 and "at most 3 per user (PIPEWRIGHT_MAX_SOCKETS_PER_USER)" in reason

        await held.pop().close()  # only open sockets count
        from server.live import hub

        async def forgotten() -> bool:
            return len(hub.viewers[employee.id].connections) == 2

        await wait_until(forgotten, timeout_s=5, what="the server to forget the closed socket")
        held.append(await opened(served, second))
        for socket in held:
            await socket.close()


# ------------------------------------------------------------------ across processes, and the message size


@pytest.mark.production_only
async def test_a_revocation_in_one_process_closes_sockets_held_by_another(db: Any, tmp_path: Any) -> None:
    """The socket lives in a `pipewright serve` child; the revocation happens in this process."""
    admin, _ = await make_token("admin")
    employee, token = await make_token("employee", "Eve")
    manager, manager_token = await make_token("manager", "Mona")
    port = free_port()
    server = serve(db.database_url, port, tmp_path / "serve.log", broker_url=db.redis.url)
    try:
        await wait_ready(port, server)
        served = f"127.0.0.1:{port}"
        socket, managers = await opened(served, token), await opened(served, manager_token)
        await tokens.revoke_token(Actor(admin.id, "admin"), await token_id_of(employee))
        assert await closed_with(socket) == (4403, "the API token was revoked")
        await users.update_user(manager.id, users.UserInput(active=False), actor=Actor(admin.id, "admin"))
        assert await closed_with(managers) == (4403, "the user was deactivated")
    finally:
        stop(server)


@pytest.mark.production_only
async def test_a_revocation_whose_publish_was_lost_still_closes_the_socket(
    db: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis pub/sub is fire and forget: the serving process finds the access event in the table."""
    from server import events

    admin, _ = await make_token("admin")
    employee, token = await make_token("employee", "Eve")
    port = free_port()
    server = serve(db.database_url, port, tmp_path / "serve.log", broker_url=db.redis.url)
    try:
        await wait_ready(port, server)
        socket = await opened(f"127.0.0.1:{port}", token)

        async def lost(rows: Any) -> None:
            pass

        monkeypatch.setattr(events, "publisher", lost)
        await tokens.revoke_token(Actor(admin.id, "admin"), await token_id_of(employee))
        assert await closed_with(socket) == (4403, "the API token was revoked")
    finally:
        stop(server)


async def test_a_websocket_message_larger_than_the_body_limit_closes_the_socket(
    db: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through `pipewright serve`, which sets uvicorn's ws_max_size (the default would be 16 MiB)."""
    _, token = await make_token("admin")
    monkeypatch.setenv("PIPEWRIGHT_MAX_BODY_BYTES", "100000")
    port = free_port()
    broker = db.redis.url if db.kind == "postgres" else None
    server = serve(os.environ["PIPEWRIGHT_DATABASE_URL"], port, tmp_path / "serve.log", broker_url=broker)
    try:
        await wait_ready(port, server)
        served = f"127.0.0.1:{port}"
        socket = await opened(served, token)
        padded = "query { me { name } }" + " " * 90_000
        assert "data" in (await answer(socket, "1", padded))["payload"]
        await socket.send(json.dumps({"type": "subscribe", "id": "2", "payload": {"query": padded + " " * 20_000}}))
        code, _ = await closed_with(socket)
        assert code == 1009  # message too big
    finally:
        stop(server)
