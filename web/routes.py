"""Every admin route, mounted at /admin by server/app.py."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from web import (
    auth, board, bookings, channels, clients, documents, dry_runs, elements, history, kanban, operations, people,
    pipelines, rules, triggers, work,
)
from web.guard import page
from web.templating import HERE


@page()
async def home(request: Request) -> Response:
    return RedirectResponse("/admin/pipelines" if request.state.actor.is_admin else "/admin/deals", status_code=303)


async def root(request: Request) -> Response:
    return RedirectResponse("/admin", status_code=307)


def admin() -> Mount:
    routes: list[BaseRoute] = [
        Route("/", home),
        *auth.routes,
        *pipelines.routes,
        *board.routes,
        *rules.routes,
        *triggers.routes,
        *kanban.routes,
        *history.routes,
        *elements.routes,
        *people.routes,
        *work.routes,
        *clients.routes,
        *channels.routes,
        *documents.routes,
        *bookings.routes,
        *operations.routes,
        *dry_runs.routes,
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="admin-static"),
    ]
    return Mount("/admin", routes=routes)
