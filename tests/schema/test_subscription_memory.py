"""A long-lived subscription does not grow with every event it delivers (a graphql-core 3.3.2 memo
leak found with bench.api; server.schema.schema.PerEventExecutionContext works around it)."""

import gc
from collections.abc import AsyncGenerator

import strawberry

from server.schema.schema import PerEventExecutionContext


@strawberry.type
class Item:
    number: int
    text: str


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self, count: int) -> AsyncGenerator[Item, None]:
        for n in range(count):
            yield Item(number=n, text="x")


async def objects_gained(execution_context_class: type | None) -> int:
    schema = strawberry.Schema(query=Query, subscription=Subscription, execution_context_class=execution_context_class)
    stream = await schema.subscribe("subscription { ticks(count: 1500) { number text } }")
    counts = {}
    seen = 0
    async for result in stream:
        assert result.errors is None
        seen += 1
        if seen in (500, 1500):
            gc.collect()
            counts[seen] = len(gc.get_objects())
    return counts[1500] - counts[500]


async def test_events_of_a_long_subscription_are_not_kept() -> None:
    assert await objects_gained(None) > 5_000  # the leak is real in the library as pinned
    assert await objects_gained(PerEventExecutionContext) < 100
