"""The admin's live timeline: Server-Sent Events under /admin for one lead or deal, fed by the same hub as the
API's subscriptions (server/live.py), authenticated by the admin session.

Each event is a bare `timeline` notice (no entry text): the page fetches the timeline fragment again, so what it
shows is always rendered by the view with the viewer's rights. Bounded like a websocket: the hub's per-user limit
counts these streams, a subscriber that falls QUEUE_LIMIT events behind is dropped (EventSource reconnects), and
a client that goes away ends the stream at its next event or keep-alive, whichever comes first. Streams take
no request slot of AdmissionControl (server/http.py: LIVE_PREFIX), as websockets take none.
"""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from server import live
from server.services import elements
from web.guard import page

KEEP_ALIVE_S = 15.0  # a comment line this often: proxies keep the stream open, a gone client is noticed
SESSION_STREAM = 0  # the token id of a session's streams: the hub's per-token limit then bounds them per user
KINDS = ("timeline",)


_closing: set[asyncio.Task[None]] = set()  # streams being closed after their client went away


def _notices(connection: live.Connection, element_type: str, element_id: int) -> AsyncIterator[bytes]:
    def accept(event: live.LiveEvent) -> bool:
        return event.element_type == element_type and event.element_id == element_id

    async def notices() -> AsyncIterator[bytes]:
        events = live.stream(connection, accept, after=None, kinds=KINDS)
        pending = asyncio.ensure_future(anext(events))
        try:
            yield b"retry: 2000\n: connected\n\n"
            while True:
                done, _ = await asyncio.wait({pending}, timeout=KEEP_ALIVE_S)
                if not done:
                    yield b": keep-alive\n\n"
                    continue
                try:
                    event = pending.result()
                except (StopAsyncIteration, live.SubscriberTooSlow):
                    return  # the hub stopped, or this client fell too far behind: EventSource comes back
                pending = asyncio.ensure_future(anext(events))
                yield f"event: timeline\nid: {event.cursor}\ndata: {event.payload.get('id', '')}\n\n".encode()
        finally:
            # No await here: the client is gone and this task is being cancelled. A read still waiting is cancelled
            # (the hub's stream unsubscribes as the cancellation reaches it); a stream paused at a yield is closed
            # in a task of its own.
            live.hub.close(connection)
            if not pending.done():
                pending.cancel()
            elif isinstance(events, AsyncGenerator):
                closing = asyncio.ensure_future(events.aclose())
                _closing.add(closing)
                closing.add_done_callback(_closing.discard)

    return notices()


@page()
async def timeline_stream(request: Request) -> Response:
    if request.path_params["plural"] not in ("leads", "deals"):
        return Response("no such live stream", status_code=404, media_type="text/plain")
    element_type = request.path_params["plural"].removesuffix("s")
    element_id = int(request.path_params["element_id"])
    actor = request.state.actor
    await elements.require_visible(actor, element_type, element_id)
    connection = live.Connection(close=lambda code, reason: None)
    try:
        live.hub.open(connection, token_id=SESSION_STREAM, actor=actor)
    except live.TooManySockets as exc:
        return Response(str(exc), status_code=429, media_type="text/plain")
    return StreamingResponse(_notices(connection, element_type, element_id), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
