"""Trust the automation in the admin: "Try this stage with…" (a dry run of a stage for an element the admin picks,
in sentences) and the element page's explain panel (why each rule did what it did). Both only read."""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.errors import NotFound, ValidationFailed
from server.services import dry_runs, elements, explain, pipelines
from web.guard import page
from web.templating import error_map, is_htmx, render

CANDIDATES_SHOWN = 100  # elements offered to try the stage with (the search narrows them)


@page(admin=True)
async def dry_run_page(request: Request) -> Response:
    actor = request.state.actor
    stage = await pipelines.get_stage(int(request.path_params["stage_id"]))
    if stage is None:
        raise NotFound("stage", request.path_params["stage_id"])
    pipeline = await pipelines.get_pipeline(stage.pipeline_id)
    search = request.query_params.get("q") or ""
    candidates = (await elements.list_elements(pipeline.entity_type, pipeline_id=pipeline.id, search=search or None,
                                               first=CANDIDATES_SHOWN, actor=actor)).items
    chosen = request.query_params.get("element") or ""
    result, errors = None, {}
    if chosen.isdigit():
        try:
            result = await dry_runs.dry_run(int(chosen), stage.id, actor=actor)
        except ValidationFailed as exc:
            errors = error_map(exc)
        except NotFound as exc:
            errors = {"element": str(exc)}
    elif chosen:
        errors = {"element": f"'{chosen[:40]}' is not an element id"}
    return render(request, "dry_run.html", {
        "stage": stage, "pipeline": pipeline, "candidates": candidates, "q": search, "chosen": chosen,
        "result": result, "errors": errors,
    }, status_code=422 if errors else 200)


@page()
async def explain_panel(request: Request) -> Response:
    """The element page's explain panel: the fragment alone to htmx, a page of its own otherwise."""
    element_type = request.url.path.split("/")[2].removesuffix("s")
    element_id = int(request.path_params["element_id"])
    explanation = await explain.explain(element_type, element_id, actor=request.state.actor)
    context = {"explanation": explanation, "element_type": element_type, "element_id": element_id}
    return render(request, "_explain.html" if is_htmx(request) else "explain.html", context)


routes = [
    Route("/stages/{stage_id:int}/try", dry_run_page),
    Route("/deals/{element_id:int}/explain", explain_panel),
    Route("/leads/{element_id:int}/explain", explain_panel),
]
