"""The tracking face: GET /t/{uid}/open.gif (the open pixel) and GET /t/{uid}/click (a signed redirect), both
fetched anonymously by the mail readers of our outbound emails."""

import base64

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from server.errors import ValidationFailed
from server.services import tracking

# A 1x1 transparent GIF (43 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


async def open_pixel(request: Request) -> Response:
    """The pixel, whatever the uid: the answer tells nobody which messages exist. Never cached, so each time a
    reader opens the email the pixel is fetched again (only the first fetch writes anything)."""
    await tracking.record_open(request.path_params["uid"])
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store, max-age=0"})


async def click(request: Request) -> Response:
    """302 to the link's target when we signed it for this message; 400 saying why otherwise."""
    try:
        target = await tracking.record_click(request.path_params["uid"], request.query_params.get("u", ""),
                                             request.query_params.get("s", ""))
    except ValidationFailed as exc:
        return PlainTextResponse(f"This tracking link is not valid, so it leads nowhere. {exc}", status_code=400,
                                 headers={"Cache-Control": "no-store"})
    return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})


def routes() -> list[Route]:
    return [
        Route("/t/{uid}/open.gif", open_pixel, methods=["GET"]),
        Route("/t/{uid}/click", click, methods=["GET"]),
    ]
