"""Relay-style connections: `edges { cursor node }`, `pageInfo`, `totalCount`; cursors are opaque."""

import base64
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import strawberry

from server.errors import ValidationFailed
from server.rules.elements import ID_MAX
from server.services.paging import Slice

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int

    @strawberry.field
    def nodes(self) -> list[T]:
        return [edge.node for edge in self.edges]


def encode(ident: int) -> str:
    return base64.urlsafe_b64encode(f"c:{ident}".encode()).decode().rstrip("=")


def decode(cursor: str | None, field: str = "after") -> int | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, ident = text.partition(":")
        if kind == "c" and ident.isdigit() and int(ident) <= ID_MAX:
            return int(ident)
    except (ValueError, UnicodeDecodeError):
        pass
    raise ValidationFailed.one(field, "is not a cursor this API gave out")


def connection(page: Slice, present: Callable[[Any], T], *, after: str | None) -> Connection[T]:
    edges = [Edge(cursor=encode(row.id), node=present(row)) for row in page.items]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next, has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None, end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=page.total,
    )


# Global ids: "<Type>:<id>" made opaque, for `node(id)`. Each type's own `id` stays its number, as clients use it.

NODE_PREFIX = "n:"


def encode_node(type_name: str, ident: int) -> str:
    return base64.urlsafe_b64encode(f"{NODE_PREFIX}{type_name}:{ident}".encode()).decode().rstrip("=")


def decode_node(node_id: str, field: str = "id") -> tuple[str, int]:
    """(type name, id) of a global id; anything else is a ValidationFailed naming `field`."""
    try:
        text = base64.urlsafe_b64decode(node_id + "=" * (-len(node_id) % 4)).decode()
        type_name, _, ident = text.removeprefix(NODE_PREFIX).partition(":")
        if text.startswith(NODE_PREFIX) and type_name and ident.isdigit() and int(ident) <= ID_MAX:
            return type_name, int(ident)
    except (ValueError, UnicodeDecodeError):
        pass
    raise ValidationFailed.one(field, "is not a node id this API gave out (read `nodeId` of an object)")


@strawberry.interface(description="An object `node(id)` finds again by its `nodeId`.")
class Node:
    id: strawberry.ID

    @strawberry.field(description="The global id of this object, for `node(id)`: opaque, unique across types.")
    def node_id(self) -> strawberry.ID:
        definition = getattr(type(self), "__strawberry_definition__")
        return strawberry.ID(encode_node(definition.name, int(self.id)))
