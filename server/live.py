"""Live events to subscribers: one hub per process, fed in-process (embedded) or by Redis pub/sub.

A committed event is published once (`publish`). Embedded, the hub gets it directly; in
production every process PUBLISHes to one Redis channel and each web process holds one
subscription and fans out inside. Publishes from several processes may arrive out of order
or not at all (Redis pub/sub is fire and forget): event ids follow commit order, so when the
hub sees a gap it reads the missing events from the table. Subscribers resume after a
disconnect from their cursor by reading the table, then switch to live events, skipping ids
they already had.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.config import settings
from server.models import Event
from server.services.access import Actor

log = logging.getLogger(__name__)

CHANNEL = "pipewright:events"
QUEUE_LIMIT = 5_000  # a subscriber this far behind is dropped; it resumes with its cursor
REPLAY_PAGE = 500


@dataclass(frozen=True)
class LiveEvent:
    id: int
    kind: str
    element_type: str | None
    element_id: int | None
    responsible_id: int | None
    audience: list[int] | None
    payload: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, row: Event) -> "LiveEvent":
        return cls(row.id, row.kind, row.element_type, row.element_id, row.responsible_id, row.audience,
                   row.payload, row.created_at)

    def to_json(self) -> str:
        return json.dumps({**self.__dict__, "created_at": self.created_at.isoformat()})

    @classmethod
    def from_json(cls, text: str | bytes) -> "LiveEvent":
        data = json.loads(text)
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        return cls(**data)


def visible(actor: Actor, event: LiveEvent) -> bool:
    """The permission matrix applied to one event."""
    if event.audience is not None:
        return actor.user_id in event.audience
    if event.element_type is None:
        return True
    return actor.sees_all_elements or event.responsible_id == actor.user_id


class SubscriberTooSlow(Exception):
    pass


@dataclass(eq=False)
class Subscription:
    accept: Callable[[LiveEvent], bool]
    queue: asyncio.Queue[LiveEvent | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    dropped: bool = False

    def offer(self, event: LiveEvent) -> None:
        if self.dropped or not self.accept(event):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped = True
            self.queue.get_nowait()
            self.queue.put_nowait(None)


class Hub:
    def __init__(self) -> None:
        self.subscriptions: set[Subscription] = set()
        self.last_id: int | None = None
        self._lock = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Remember where the log ends; in production, listen to the Redis channel."""
        latest = await Event.all().order_by("-id").first()
        self.last_id = latest.id if latest else 0
        if not settings().embedded_broker:
            self._listener = asyncio.create_task(self._listen(), name="pipewright-live-listener")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except asyncio.CancelledError:
                pass
            self._listener = None
        for subscription in list(self.subscriptions):
            subscription.queue.put_nowait(None)

    def subscribe(self, accept: Callable[[LiveEvent], bool]) -> Subscription:
        subscription = Subscription(accept)
        self.subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscriptions.discard(subscription)

    async def deliver(self, events: list[LiveEvent]) -> None:
        """Fan out `events` in id order, reading any gap before them from the table."""
        async with self._lock:
            if self.last_id is None:
                return  # not started: nobody listens in this process
            fresh = sorted((e for e in events if e.id > self.last_id), key=lambda e: e.id)
            if not fresh:
                return
            if fresh[0].id != self.last_id + 1:
                known = {e.id for e in fresh}
                rows = await Event.filter(id__gt=self.last_id, id__lte=fresh[-1].id).order_by("id")
                fresh = sorted([*fresh, *(LiveEvent.of(r) for r in rows if r.id not in known)], key=lambda e: e.id)
            for event in fresh:
                for subscription in list(self.subscriptions):
                    subscription.offer(event)
            self.last_id = fresh[-1].id

    async def catch_up(self) -> None:
        """Deliver whatever the table has past `last_id` (after a Redis reconnect)."""
        if self.last_id is None:
            return
        rows = await Event.filter(id__gt=self.last_id).order_by("id").limit(10_000)
        await self.deliver([LiveEvent.of(r) for r in rows])

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        delay = 0.2
        while True:
            client = aioredis.Redis.from_url(settings().broker_url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    await self.catch_up()
                    delay = 0.2
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            await self.deliver([LiveEvent.from_json(line) for line in message["data"].splitlines()])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live events: Redis subscription lost; reconnecting in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                await client.aclose()


hub = Hub()
_publishers: dict[int, Any] = {}  # one Redis client per event loop (dramatiq workers run their own)


async def publish(rows: list[Event]) -> None:
    """After commit: tell live subscribers. Losing this only delays them until the next event."""
    events = [LiveEvent.of(r) for r in rows]
    if settings().embedded_broker:
        await hub.deliver(events)
        return
    import redis.asyncio as aioredis

    loop_id = id(asyncio.get_running_loop())
    client = _publishers.get(loop_id)
    if client is None:
        client = _publishers[loop_id] = aioredis.Redis.from_url(settings().broker_url)
    await client.publish(CHANNEL, "\n".join(e.to_json() for e in events))


async def stream(
    accept: Callable[[LiveEvent], bool], *, after: int | None, kinds: tuple[str, ...]
) -> AsyncIterator[LiveEvent]:
    """What a subscriber receives: events past `after` from the table, then live ones, none twice."""
    subscription = hub.subscribe(accept)
    try:
        last = after
        if after is not None:
            while True:
                rows = await Event.filter(id__gt=last, kind__in=list(kinds)).order_by("id").limit(REPLAY_PAGE)
                for row in rows:
                    last = row.id
                    event = LiveEvent.of(row)
                    if accept(event):
                        yield event
                if len(rows) < REPLAY_PAGE:
                    break
        while True:
            event = await subscription.queue.get()
            if event is None:
                if subscription.dropped:
                    raise SubscriberTooSlow(
                        f"this subscriber fell {QUEUE_LIMIT} events behind; resubscribe with after: \"{last}\""
                    )
                return
            if last is not None and event.id <= last:
                continue
            last = event.id
            yield event
    finally:
        hub.unsubscribe(subscription)
