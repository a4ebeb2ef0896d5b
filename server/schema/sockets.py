"""GraphQL websockets (graphql-transport-ws) whose access is checked for as long as they are open.

Every `subscribe` message (a subscription, or a query or mutation sent over the socket) reads the
connection's token again: revoked or its user deactivated, the socket closes (4403); another role,
the operation and the socket's running subscriptions use it. The live hub closes sockets whose
token or user loses access as soon as it reads the access event, without waiting for the client;
and it refuses a socket beyond the per-user and per-token limits (4429).
"""

import asyncio
from contextlib import suppress
from functools import partial
from typing import Any

from starlette.websockets import WebSocketDisconnect
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage, SubscribeMessage

from server import live
from server.schema.context import Context
from server.services import tokens

LOST_ACCESS = "the API token was revoked or its user deactivated"


class AccessCheckedSocket(BaseGraphQLTransportWSHandler[Context, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection = live.Connection(close=self.close_soon)
        self.context.connection = self.connection  # the view's on_ws_connect opens it with the hub
        self._closing: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except live.TooManySockets as refused:
            await self.websocket.close(code=live.TOO_MANY, reason=str(refused))

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        token_id = self.connection.token_id
        if self.connection_acknowledged and token_id is not None and self._would_start(message):
            actor = await live.read_access(partial(tokens.reauthenticate, token_id))
            if actor is None:
                live.hub.close(self.connection)
                await self.close_now(live.REVOKED, LOST_ACCESS)
                return
            live.hub.refresh(self.connection, actor)
        await super().handle_subscribe(message)

    def _would_start(self, message: SubscribeMessage) -> bool:
        """Messages the base handler refuses anyway (a repeated id, over the limit) cost no database read."""
        limit = self.max_subscriptions_per_connection
        return message["id"] not in self.operations and (limit is None or len(self.operations) < limit)

    def close_soon(self, code: int, reason: str) -> None:
        """Called by the hub, which must not wait for a client: the close runs in its own task."""
        if self._closing is None:
            self._closing = asyncio.create_task(self.close_now(code, reason), name="pipewright-socket-close")
            self._closing.add_done_callback(self._task_done)

    async def close_now(self, code: int, reason: str) -> None:
        """Stop every operation first, so none writes to the socket after the close frame."""
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        with suppress(RuntimeError, WebSocketDisconnect):  # the client may have gone meanwhile
            await self.websocket.close(code=code, reason=reason)

    async def shutdown(self) -> None:
        live.hub.close(self.connection)
        await super().shutdown()
