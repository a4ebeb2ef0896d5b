"""Pipelines and their stages: the list, and the forms that add, rename, reorder and re-type them (admins only)."""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.errors import ValidationFailed
from server.i18n import N_
from server.services import pipelines
from web.guard import page
from web.templating import error_map, redirect, render

# How pipelines.html shows a stage's semantic (`_(s|replace('_', ' '))`), marked for the catalogue.
SEMANTIC_NAMES = (N_("in progress"), N_("success"), N_("failure"))


async def _pipelines_page(request: Request, *, errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    rows = []
    for pipeline in await pipelines.list_pipelines():
        rows.append((pipeline, await pipelines.list_stages(pipeline.id)))
    return render(request, "pipelines.html", {"rows": rows, "errors": errors or {},
                                              "semantics": pipelines.SEMANTICS, "failed": request.query_params},
                  status_code=status_code)


@page(admin=True)
async def pipeline_list(request: Request) -> Response:
    if request.method == "GET":
        return await _pipelines_page(request)
    form = await request.form()
    try:
        pipeline = await pipelines.create_pipeline(str(form.get("name") or ""), str(form.get("entity_type") or ""),
                                                   actor=request.state.actor)
    except ValidationFailed as exc:
        return await _pipelines_page(request, errors={f"new.{k}": v for k, v in error_map(exc).items()}, status_code=422)
    return redirect(request, f"/admin/pipelines#pipeline-{pipeline.id}")


@page(admin=True)
async def pipeline_rename(request: Request) -> Response:
    pipeline_id = int(request.path_params["pipeline_id"])
    form = await request.form()
    try:
        await pipelines.rename_pipeline(pipeline_id, str(form.get("name") or ""), actor=request.state.actor)
    except ValidationFailed as exc:
        return await _pipelines_page(request, errors={f"pipeline-{pipeline_id}.{k}": v for k, v in error_map(exc).items()},
                                     status_code=422)
    return redirect(request, f"/admin/pipelines#pipeline-{pipeline_id}")


@page(admin=True)
async def stage_create(request: Request) -> Response:
    pipeline_id = int(request.path_params["pipeline_id"])
    form = await request.form()
    try:
        await pipelines.create_stage(pipeline_id, str(form.get("name") or ""),
                                     semantic=str(form.get("semantic") or "in_progress"), actor=request.state.actor)
    except ValidationFailed as exc:
        return await _pipelines_page(request, errors={f"new-stage-{pipeline_id}.{k}": v for k, v in error_map(exc).items()},
                                     status_code=422)
    return redirect(request, f"/admin/pipelines#pipeline-{pipeline_id}")


@page(admin=True)
async def stage_update(request: Request) -> Response:
    stage_id = int(request.path_params["stage_id"])
    form = await request.form()
    try:
        stage = await pipelines.update_stage(stage_id, name=str(form.get("name") or ""),
                                             semantic=str(form.get("semantic") or ""), actor=request.state.actor)
    except ValidationFailed as exc:
        return await _pipelines_page(request, errors={f"stage-{stage_id}.{k}": v for k, v in error_map(exc).items()},
                                     status_code=422)
    return redirect(request, f"/admin/pipelines#stage-{stage.id}")


@page(admin=True)
async def stage_move(request: Request) -> Response:
    stage_id = int(request.path_params["stage_id"])
    form = await request.form()
    await pipelines.move_stage(stage_id, -1 if form.get("direction") == "up" else 1, actor=request.state.actor)
    return redirect(request, f"/admin/pipelines#stage-{stage_id}")


routes = [
    Route("/pipelines", pipeline_list, methods=["GET", "POST"]),
    Route("/pipelines/{pipeline_id:int}/rename", pipeline_rename, methods=["POST"]),
    Route("/pipelines/{pipeline_id:int}/stages", stage_create, methods=["POST"]),
    Route("/stages/{stage_id:int}", stage_update, methods=["POST"]),
    Route("/stages/{stage_id:int}/move", stage_move, methods=["POST"]),
]
