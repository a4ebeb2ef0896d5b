"""What resolvers get per request (or per websocket connection): the acting user and DataLoaders.

On a websocket the acting user is the connection's: the live hub replaces it when the user's role
changes and forgets it when the token is revoked, so an operation always runs with access as it is now.
"""

from dataclasses import dataclass, field
from typing import Any

from strawberry.types import Info

from server import live
from server.errors import Forbidden
from server.schema.loaders import Loaders
from server.services.access import Actor


class NotAuthenticated(Forbidden):
    """No valid token: the view answers 401 before any resolver runs; this guards the rest."""


@dataclass
class Context:
    actor: Actor | None = None
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = None
    connection: live.Connection | None = None  # set on websockets
    loaders: Loaders = field(default_factory=Loaders)


def context_of(info: Info[Context, Any]) -> Context:
    return info.context


def actor_of(info: Info[Any, Any]) -> Actor:
    """The authenticated user. Every resolver asks: nothing is anonymous."""
    context: Context = info.context
    actor = context.connection.actor if context.connection is not None else context.actor
    if actor is None:
        raise NotAuthenticated("authentication required: send Authorization: Bearer <API token>")
    return actor


def connection_of(info: Info[Context, Any]) -> live.Connection:
    """The websocket a subscription runs on (subscriptions exist only on websockets)."""
    actor_of(info)
    connection = info.context.connection
    if connection is None:
        raise NotAuthenticated("subscriptions need a websocket (graphql-transport-ws)")
    return connection
