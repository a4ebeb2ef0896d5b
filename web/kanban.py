"""The kanban board of deals or leads: a pipeline's stages as columns, cards that move by drag or by a menu (the same
move service as the element page), each card refreshing itself while the runs its move started are under way."""

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.errors import NotFound, ValidationFailed
from server.services import elements, kanban, pipelines, users
from web.guard import page
from web.templating import error_map, is_htmx, posted_id, redirect, render


def _type(request: Request) -> str:
    """deal or lead, from /admin/deals/… or /admin/leads/…"""
    return request.url.path.split("/")[2].removesuffix("s")


async def _pipeline(request: Request, element_type: str) -> tuple[Any, list[Any]]:
    """The pipeline asked for (?pipeline=N), else the default one of the kind, else its first."""
    choices = await pipelines.list_pipelines(element_type)
    asked = request.query_params.get("pipeline", "")
    if asked:
        chosen = next((p for p in choices if str(p.id) == asked), None)
        if chosen is None:
            raise NotFound(f"{element_type} pipeline", asked)
        return chosen, choices
    if not choices:
        raise NotFound(f"{element_type} pipeline", "(any)")
    return next((p for p in choices if p.is_default), choices[0]), choices


async def _names(request: Request, cards: list[kanban.Card]) -> dict[int, str]:
    people = await users.users_by_id([c.element.responsible_id for c in cards if c.element.responsible_id],
                                     actor=request.state.actor)
    return {ident: user.name for ident, user in people.items()}


async def _board_context(request: Request, element_type: str, pipeline: Any, choices: list[Any]) -> dict[str, Any]:
    columns = await kanban.columns(pipeline, actor=request.state.actor)
    stages = [c.stage for c in columns]
    return {"element_type": element_type, "pipeline": pipeline, "pipelines": choices, "columns": columns,
            "stages": stages, "names": await _names(request, [card for c in columns for card in c.cards])}


@page()
async def board(request: Request) -> Response:
    element_type = _type(request)
    pipeline, choices = await _pipeline(request, element_type)
    return render(request, "kanban.html", await _board_context(request, element_type, pipeline, choices))


@page()
async def more_cards(request: Request) -> Response:
    """The next cards of one column (newest first after `after`), as a fragment that ends in its own "more" link."""
    element_type = _type(request)
    stage = await pipelines.load_stage(int(request.path_params["stage_id"]))
    after = request.query_params.get("after", "")
    cards, more = await kanban.cards(element_type, stage, after=int(after) if after.isdigit() else None,
                                     actor=request.state.actor)
    stages = await pipelines.list_stages(stage.pipeline_id)
    return render(request, "_kanban_more.html", {
        "element_type": element_type, "stage": stage, "cards": cards, "has_more": more, "stages": stages,
        "names": await _names(request, cards),
    })


@page()
async def card(request: Request) -> Response:
    """One card alone: it polls this while the runs of its stay are under way."""
    element_type = _type(request)
    shown = await kanban.card(element_type, int(request.path_params["element_id"]), actor=request.state.actor)
    stages = await pipelines.list_stages(shown.element.pipeline_id)
    return render(request, "_kanban_card.html", {"element_type": element_type, "card": shown, "stages": stages,
                                                 "names": await _names(request, [shown])})


@page()
async def move(request: Request) -> Response:
    """Move a card (dragged, or chosen in its menu) through the move service; htmx gets the board back."""
    element_type = _type(request)
    element_id = int(request.path_params["element_id"])
    move_error = None
    try:
        moved = await elements.move_element(element_type, element_id, await posted_id(request, "stage_id"),
                                            actor=request.state.actor)
        pipeline_id = moved.pipeline_id
    except ValidationFailed as exc:
        move_error = "; ".join(error_map(exc).values())
        pipeline_id = (await elements.get_element(element_type, element_id, actor=request.state.actor)).pipeline_id
    target = f"/admin/{element_type}s/board?pipeline={pipeline_id}"
    if not is_htmx(request):
        if move_error:
            return render(request, "error.html", {"status": 422, "message": move_error}, status_code=422)
        return redirect(request, target)
    pipeline = await pipelines.get_pipeline(pipeline_id)
    context = await _board_context(request, element_type, pipeline, await pipelines.list_pipelines(element_type))
    return render(request, "_kanban.html", {**context, "moved_id": element_id, "move_error": move_error},
                  status_code=422 if move_error else 200)


routes = [
    route
    for plural in ("deals", "leads")
    for route in (
        Route(f"/{plural}/board", board),
        Route(f"/{plural}/board/stages/{{stage_id:int}}", more_cards),
        Route(f"/{plural}/{{element_id:int}}/card", card),
        Route(f"/{plural}/{{element_id:int}}/board-move", move, methods=["POST"]),
    )
]
