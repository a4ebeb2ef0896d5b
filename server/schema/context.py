"""What resolvers get per request (or per websocket connection): the acting user and DataLoaders."""

from dataclasses import dataclass, field
from typing import Any

from strawberry.types import Info

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
    loaders: Loaders = field(default_factory=Loaders)


def context_of(info: Info[Any, Any]) -> Context:
    return info.context


def actor_of(info: Info[Any, Any]) -> Actor:
    """The authenticated user. Every resolver asks: nothing is anonymous."""
    actor = info.context.actor
    if actor is None:
        raise NotAuthenticated("authentication required: send Authorization: Bearer <API token>")
    return actor
