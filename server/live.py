"""Live events to subscribers: one hub per process, fed in-process (embedded) or by Redis pub/sub.

A committed event is published once (`publish`). Embedded, the hub gets it directly; in
production every process PUBLISHes to one Redis channel and each web process holds one
subscription and fans out inside. Subscribers see events in the order of their `position`, which
is their cursor. On SQLite the position is given at insert (writers take turns). On PostgreSQL
writers take no lock, so ids do not follow commit order; a hub that hears of new events (or has
heard nothing for a second: Redis pub/sub is fire and forget) first numbers every committed event
that has no position yet, in id order (`sequence`), then reads the table past its last position.
A transaction committing late gets the next position when it commits, so nothing is skipped, and
two changes of one element keep the order they committed in (the second one waited for the first's
row lock, so its events were inserted later and have higher ids). Subscribers resume after a
disconnect from their cursor by reading the table, then switch to live events, skipping positions
they already had.

The hub also knows this process's open websockets (`Connection`), per user (`Viewer`): it limits
how many a user and a token may hold, routes each event only to subscriptions of users who may
see it, and applies access events (a token revoked, a user deactivated or given another role) in
event order: the sockets close, or the new role filters every event committed after the change.
"""

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from tortoise.connection import get_connection

from server.actor import Actor
from server.config import settings
from server.events import ACCESS, set_publisher
from server.models import Event

log = logging.getLogger(__name__)
T = TypeVar("T")

CHANNEL = "pipewright:events"
QUEUE_LIMIT = 5_000  # a subscriber this far behind is dropped; it resumes with its cursor
REPLAY_PAGE = 500
SEQUENCE_BATCH = 10_000  # events numbered by one statement
SEQUENCER_BUSY_RETRIES = 20  # another hub is numbering: try again this often, SEQUENCER_BUSY_S apart
SEQUENCER_BUSY_S = 0.01
IDLE_CATCH_UP_S = 1.0  # production: with no message for this long, the hub reads the table for lost publishes
REVOKED = 4403  # the close code of a socket whose token or user lost access (the protocol's "Forbidden")
TOO_MANY = 4429  # the close code of a socket over the per-user or per-token limit


@dataclass(frozen=True)
class LiveEvent:
    id: int
    position: int | None  # None: published before the hub numbered it (PostgreSQL)
    kind: str
    element_type: str | None
    element_id: int | None
    responsible_id: int | None
    audience: list[int] | None
    payload: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, row: Event) -> "LiveEvent":
        return cls(row.id, row.position, row.kind, row.element_type, row.element_id, row.responsible_id, row.audience,
                   row.payload, row.created_at)

    @property
    def cursor(self) -> int:
        """Where a subscriber that has had this event resumes from."""
        assert self.position is not None, "only numbered events reach subscribers"
        return self.position

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


class TooManySockets(Exception):
    """A user or token already holds as many open websockets in this process as allowed."""


@dataclass(eq=False)
class Viewer:
    """A user as this process's websockets see them: `actor` is replaced when their role changes, so
    every running subscription filters with the role as it is now, not as it was at subscribe time."""

    actor: Actor
    connections: set["Connection"] = field(default_factory=set)


@dataclass(eq=False)
class Connection:
    """One open websocket. `close(code, reason)` starts closing it and must not block the hub."""

    close: Callable[[int, str], None]
    token_id: int | None = None
    viewer: Viewer | None = None  # None until accepted, and again once closed

    @property
    def actor(self) -> Actor | None:
        return self.viewer.actor if self.viewer is not None else None


@dataclass(eq=False)
class Subscription:
    accept: Callable[[LiveEvent], bool]  # the subscriber's own filters; who may see what is the hub's job
    connection: Connection
    user_id: int
    kinds: tuple[str, ...]
    queue: asyncio.Queue[LiveEvent | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    dropped: bool = False

    def offer(self, event: LiveEvent) -> None:
        if self.dropped or self.connection.viewer is None or not self.accept(event):
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
        self.viewers: dict[int, Viewer] = {}  # users with an open websocket in this process
        self._seeing_all: set[int] = set()  # those of them whose role sees every element
        # kind -> user id -> subscriptions: an event is offered only to subscriptions of its kind of
        # users who may see it, not to every subscription of every user.
        self._listening: dict[str, dict[int, set[Subscription]]] = {}
        # Access events applied so far: a reader of a token's access compares it before and after its
        # read and reads again if one came meanwhile (the event may be newer than what it read).
        self.access_changes = 0
        self.last_position: int | None = None
        self._lock = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Remember where the log ends; in production, listen to the Redis channel."""
        await sequence()
        latest = await Event.filter(position__not_isnull=True).order_by("-position").first()
        self.last_position = latest.position if latest is not None and latest.position is not None else 0
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

    def open(self, connection: Connection, *, token_id: int, actor: Actor) -> None:
        """Accept a websocket authenticated as `actor` with token `token_id`, within the limits."""
        config = settings()
        viewer = self.viewers.get(actor.user_id) or Viewer(actor)
        if len(viewer.connections) >= config.max_sockets_per_user:
            raise TooManySockets(f"too many open websockets: at most {config.max_sockets_per_user} per user "
                                 "(PIPEWRIGHT_MAX_SOCKETS_PER_USER); close one first")
        if sum(1 for c in viewer.connections if c.token_id == token_id) >= config.max_sockets_per_token:
            raise TooManySockets(f"too many open websockets: at most {config.max_sockets_per_token} per API token "
                                 "(PIPEWRIGHT_MAX_SOCKETS_PER_TOKEN); close one first")
        viewer.connections.add(connection)
        self.viewers[actor.user_id] = viewer
        self._set_actor(viewer, actor)  # just read from the database: the freshest we have
        connection.token_id, connection.viewer = token_id, viewer

    def refresh(self, connection: Connection, actor: Actor) -> None:
        """The user's role as the database has it now (read again for each operation on a socket)."""
        if connection.viewer is not None:
            self._set_actor(connection.viewer, actor)

    def _set_actor(self, viewer: Viewer, actor: Actor) -> None:
        viewer.actor = actor
        if actor.sees_all_elements:
            self._seeing_all.add(actor.user_id)
        else:
            self._seeing_all.discard(actor.user_id)

    def close(self, connection: Connection) -> None:
        """Forget a websocket: its subscriptions are offered nothing more."""
        viewer, connection.viewer = connection.viewer, None
        if viewer is None:
            return
        viewer.connections.discard(connection)
        if not viewer.connections and self.viewers.get(viewer.actor.user_id) is viewer:
            del self.viewers[viewer.actor.user_id]
            self._seeing_all.discard(viewer.actor.user_id)

    def subscribe(
        self, connection: Connection, accept: Callable[[LiveEvent], bool], kinds: tuple[str, ...]
    ) -> Subscription | None:
        """None when the connection has closed meanwhile."""
        if connection.viewer is None:
            return None
        subscription = Subscription(accept, connection, connection.viewer.actor.user_id, kinds)
        self.subscriptions.add(subscription)
        for kind in kinds:
            self._listening.setdefault(kind, {}).setdefault(subscription.user_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscriptions.discard(subscription)
        for kind in subscription.kinds:
            by_user = self._listening.get(kind, {})
            mine = by_user.get(subscription.user_id)
            if mine is not None:
                mine.discard(subscription)
                if not mine:
                    del by_user[subscription.user_id]

    def _fan_out(self, event: LiveEvent) -> None:
        """Offer `event` to the subscriptions of the users who may see it, and to no others: the
        audience, or everyone for an event without element, or managers, admins and the responsible."""
        by_user = self._listening.get(event.kind)
        if not by_user:
            return
        for user_id in self._who_may_see(event, by_user):
            subscriptions = by_user.get(user_id)
            viewer = self.viewers.get(user_id)
            if subscriptions and viewer is not None and visible(viewer.actor, event):
                for subscription in list(subscriptions):
                    subscription.offer(event)

    def _who_may_see(self, event: LiveEvent, listening: dict[int, set[Subscription]]) -> Iterable[int]:
        if event.audience is not None:
            return event.audience
        if event.element_type is None:
            return list(listening)
        if event.responsible_id is None or event.responsible_id in self._seeing_all:
            return list(self._seeing_all)
        return [*self._seeing_all, event.responsible_id]

    def _apply_access(self, event: LiveEvent) -> None:
        """A token revoked or a user deactivated: close their sockets. A new role: it applies from here on."""
        self.access_changes += 1
        change = event.payload
        viewer = self.viewers.get(change.get("user_id", 0))
        if viewer is None:
            return
        if "token_id" in change:
            doomed = [c for c in viewer.connections if c.token_id == change["token_id"]]
            reason = "the API token was revoked"
        elif not change.get("active", True):
            doomed, reason = list(viewer.connections), "the user was deactivated"
        else:
            self._set_actor(viewer, dataclasses.replace(viewer.actor, role=change["role"]))
            return
        for connection in doomed:
            self.close(connection)
            connection.close(REVOKED, reason)

    async def deliver(self, events: list[LiveEvent]) -> None:
        """Fan out `events` in position order. Events not numbered yet, or a gap before them: number
        what has committed and read the table instead."""
        async with self._lock:
            if self.last_position is None:
                return  # not started: nobody listens in this process
            last = self.last_position
            if any(e.position is None for e in events):
                await self._read_table()
                return
            fresh = sorted((e for e in events if e.cursor > last), key=lambda e: e.cursor)
            if not fresh:
                return
            if fresh[0].cursor != last + 1:
                await self._read_table()
                return
            self._fan_out_all(fresh)

    async def catch_up(self) -> None:
        """Deliver whatever the table has past `last_position` (after a Redis reconnect, and when Redis is quiet)."""
        async with self._lock:
            if self.last_position is not None:
                await self._read_table()

    async def _read_table(self) -> None:
        await sequence()
        rows = await Event.filter(position__gt=self.last_position).order_by("position").limit(10_000)
        self._fan_out_all([LiveEvent.of(r) for r in rows])

    def _fan_out_all(self, events: list[LiveEvent]) -> None:
        for event in events:
            if event.kind == ACCESS:
                self._apply_access(event)
            else:
                self._fan_out(event)
        if events:
            self.last_position = events[-1].cursor

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        delay = 0.2
        while True:
            # Connect and health-check timeouts only: the reads below bound their own wait (IDLE_CATCH_UP_S).
            options = settings().redis_options
            client = aioredis.Redis.from_url(settings().broker_url, socket_connect_timeout=options[
                "socket_connect_timeout"], health_check_interval=options["health_check_interval"])
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    await self.catch_up()
                    delay = 0.2
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=IDLE_CATCH_UP_S)
                        if message is None:
                            # Quiet for a while: read the table in case a publish was lost (a revoked
                            # token's access event, say, with nothing after it to reveal the gap).
                            await self.catch_up()
                        elif message["type"] == "message":
                            events = [LiveEvent.from_json(line) for line in message["data"].splitlines()]
                            # Publishes that came meanwhile: one read of the table for all of them.
                            while (more := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0)):
                                if more["type"] == "message":
                                    events += [LiveEvent.from_json(line) for line in more["data"].splitlines()]
                            await self.deliver(events)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live events: Redis subscription lost; reconnecting in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                await client.aclose()


hub = Hub()


async def sequence() -> None:
    """PostgreSQL: give every committed event without a position the next positions, in id order, in
    one statement of `pipewright_sequence_events` (migration 0010), one hub at a time. Writers never
    wait on it, nor it on them; an uncommitted event is numbered by a later call, once it commits."""
    connection = get_connection("default")
    if connection.capabilities.dialect != "postgres":
        return  # positions given at insert
    for _ in range(SEQUENCER_BUSY_RETRIES):
        _, rows = await connection.execute_query("SELECT pipewright_sequence_events($1) AS done", [SEQUENCE_BATCH])
        done = rows[0]["done"]
        if done == SEQUENCE_BATCH:
            continue  # more waiting
        if done >= 0:
            return
        await asyncio.sleep(SEQUENCER_BUSY_S)  # another hub is numbering: what it numbers is read anyway
    log.warning("live events: another process kept numbering events for %.1f s; reading what is numbered",
                SEQUENCER_BUSY_RETRIES * SEQUENCER_BUSY_S)


ACCESS_READS = 3  # a steady stream of access events must not keep one handshake reading


async def read_access(read: Callable[[], Awaitable[T]]) -> T:
    """`read()` a token's access from the database, again if an access event reached the hub meanwhile:
    else a read that began before a demotion committed could undo the new role the event just set. After
    ACCESS_READS reads the last one stands; the next operation on the socket reads again."""
    for _ in range(ACCESS_READS - 1):
        seen = hub.access_changes
        found = await read()
        if hub.access_changes == seen:
            return found
    return await read()


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
        options = settings().redis_options
        client = _publishers[loop_id] = aioredis.Redis.from_url(
            settings().broker_url, socket_timeout=options["socket_timeout"],
            socket_connect_timeout=options["socket_connect_timeout"],
            health_check_interval=options["health_check_interval"])
    # The transaction has committed: a Redis that hangs must not hold the request (the hubs catch up from the table).
    await asyncio.wait_for(client.publish(CHANNEL, "\n".join(e.to_json() for e in events)),
                           settings().broker_send_wait_ms / 1000)


def install_publisher() -> None:
    """This process tells subscribers about the events it commits: called where a process starts serving or
    running rules (the hub's start, a worker process's boot, the scheduler), so events.py needs no live hub."""
    set_publisher(publish)


async def stream(
    connection: Connection, accept: Callable[[LiveEvent], bool], *, after: int | None, kinds: tuple[str, ...]
) -> AsyncIterator[LiveEvent]:
    """What a subscriber on `connection` receives: events past position `after` from the table, then live ones,
    none twice; each one its user may see with the role they have when it is sent."""
    subscription = hub.subscribe(connection, accept, kinds)
    if subscription is None:
        return
    try:
        last = after
        if after is not None:
            while True:
                rows = await Event.filter(position__gt=last, kind__in=list(kinds)).order_by("position").limit(REPLAY_PAGE)
                for row in rows:
                    event = LiveEvent.of(row)
                    last = event.cursor
                    actor = connection.actor
                    if actor is None:
                        return
                    if visible(actor, event) and accept(event):
                        yield event
                if len(rows) < REPLAY_PAGE:
                    break
        while True:
            queued = await subscription.queue.get()
            if queued is None:
                if subscription.dropped:
                    raise SubscriberTooSlow(
                        f"this subscriber fell {QUEUE_LIMIT} events behind; resubscribe with after: \"{last}\""
                    )
                return
            if last is not None and queued.cursor <= last:
                continue
            last = queued.cursor
            yield queued
    finally:
        hub.unsubscribe(subscription)
