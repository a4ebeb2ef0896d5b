"""A websocket connection keeps one context for all its operations: give each operation its own
DataLoaders, so a query sent over a long-lived connection never reads another operation's cache."""

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from server.schema.loaders import Loaders


class FreshLoaders(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if context is not None and hasattr(context, "loaders"):
            context.loaders = Loaders()
        yield
