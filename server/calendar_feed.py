"""The iCalendar feed face: GET /calendar/{token}.ics, for calendar clients that poll a secret URL."""

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from server.errors import NotFound
from server.services import activities


async def calendar_feed(request: Request) -> Response:
    try:
        body = await activities.calendar_feed(request.path_params["token"])
    except NotFound:
        return PlainTextResponse("no calendar at this address", status_code=404)
    return Response(
        body, media_type="text/calendar; charset=utf-8",
        headers={"Cache-Control": "private, no-cache", "Content-Disposition": 'inline; filename="pipewright.ics"'},
    )
