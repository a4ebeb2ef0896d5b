"""The rule designer board: a pipeline's stages as columns, each with its triggers in words and its rules in their
lanes (admins only)."""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.services import designer, pipelines
from web.guard import page
from web.templating import render


@page(admin=True)
async def board(request: Request) -> Response:
    pipeline = await pipelines.get_pipeline(int(request.path_params["pipeline_id"]))
    columns = await designer.board(pipeline.id, actor=request.state.actor)
    return render(request, "board.html", {"pipeline": pipeline, "columns": columns,
                                          "all_pipelines": await pipelines.list_pipelines(),
                                          "hook_base": str(request.base_url).rstrip("/")})


routes = [
    Route("/pipelines/{pipeline_id:int}", board),
]
