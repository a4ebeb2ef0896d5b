"""What resolvers get per request: the acting user and the request's DataLoaders."""

from dataclasses import dataclass, field
from typing import Any

from strawberry.types import Info

from server.schema.loaders import Loaders

CONTEXT_KEY = "pipewright"


@dataclass
class Context:
    actor_id: int | None = None  # None until authentication exists
    loaders: Loaders = field(default_factory=Loaders)


def context_of(info: Info[Any, Any]) -> Context:
    """The request's Context. Strawberry's default context is a dict: the Context is made on first use."""
    context = info.context
    if isinstance(context, Context):
        return context
    found = context.get(CONTEXT_KEY)
    if found is None:
        found = context[CONTEXT_KEY] = Context()
    return found


def actor_id(info: Info[Any, Any]) -> int | None:
    return context_of(info).actor_id
