"""Leads and deals: lists, the element page with its timeline, live automation tab and trigger activations, moves."""

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.errors import ValidationFailed
from server.i18n import money
from server.services import designer, documents, elements, messages, outputs, pipelines, runs, triggers, users
from web.guard import page
from web.templating import error_map, is_htmx, redirect, render, when


MESSAGES_SHOWN = 50  # the element page's message log: the newest ones (GraphQL pages through all)
ACTIVATIONS_SHOWN = 20  # the newest trigger activations


def _type(request: Request) -> str:
    """deal or lead, from /admin/deals/… or /admin/leads/…"""
    return request.url.path.split("/")[2].removesuffix("s")


@page()
async def element_list(request: Request) -> Response:
    element_type = _type(request)
    actor = request.state.actor
    pipeline_id = request.query_params.get("pipeline")
    pipeline_list = await pipelines.list_pipelines(element_type)
    chosen = int(pipeline_id) if pipeline_id and pipeline_id.isdigit() else None
    items = (await elements.list_elements(element_type, pipeline_id=chosen, search=request.query_params.get("q"),
                                          first=100, actor=actor)).items
    stages = await pipelines.stages_by_id(pipeline_ids=[p.id for p in pipeline_list])
    return render(request, "element_list.html", {
        "element_type": element_type, "items": items, "stages": stages, "pipelines": pipeline_list,
        "chosen": chosen, "q": request.query_params.get("q") or "", "errors": {},
    })


@page()
async def element_create(request: Request) -> Response:
    element_type = _type(request)
    form = await request.form()
    stage_id = form.get("stage_id")
    fields: dict[str, Any] = {"title": str(form.get("title") or "")}
    if form.get("amount"):
        fields["amount"] = str(form.get("amount"))
    try:
        element = await elements.create_element(
            element_type, fields, stage_id=int(stage_id) if isinstance(stage_id, str) and stage_id.isdigit() else None,
            actor=request.state.actor,
        )
    except ValidationFailed as exc:
        pipeline_list = await pipelines.list_pipelines(element_type)
        stages = await pipelines.stages_by_id(pipeline_ids=[p.id for p in pipeline_list])
        items = (await elements.list_elements(element_type, first=100, actor=request.state.actor)).items
        return render(request, "element_list.html", {
            "element_type": element_type, "items": items, "stages": stages, "pipelines": pipeline_list,
            "chosen": None, "q": "", "errors": error_map(exc), "values": fields,
        }, status_code=422)
    return redirect(request, f"/admin/{element_type}s/{element.id}")


async def _runs_context(request: Request, element_type: str, element_id: int) -> dict[str, Any]:
    actor = request.state.actor
    rule_runs = await elements.rule_runs(element_type, element_id, actor=actor)
    stage_runs = await elements.stage_runs(element_type, element_id, actor=actor)
    stages = await pipelines.stages_by_id(stage_ids=[sr.stage_id for sr in stage_runs])
    stage_names = {stage_id: stage.name for stage_id, stage in stages.items()}
    pipeline_stages = await pipelines.stages_by_id(pipeline_ids={stage.pipeline_id for stage in stages.values()})
    shown = await outputs.readable_outputs(rule_runs, stages=pipeline_stages.values(), actor=actor)
    by_stage: dict[int, list[Any]] = {}
    for run in rule_runs:
        by_stage.setdefault(run.stage_run_id, []).append(run)
    groups = [
        (sr, stage_names.get(sr.stage_id, f"stage {sr.stage_id}"), by_stage.get(sr.id, []))
        for sr in reversed(stage_runs)
    ]
    pending = any(run.status in runs.UNFINISHED for run in rule_runs)
    return {"element_type": element_type, "element_id": element_id, "groups": groups, "pending": pending,
            "outputs": shown}


def _fields(element_type: str, element: Any, responsible: Any) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [("Title", element.title)]
    amount = element.amount
    if amount is not None:
        rows.append(("Amount", money(amount, element.currency)))
    rows.append(("Responsible", responsible.name if responsible else "—"))
    if element_type == "deal":
        rows.append(("Close date", element.close_date or "—"))
    else:
        rows.append(("Source", element.source or "—"))
    rows.append(("Waiting for the customer", "yes" if element.waiting_for_customer else "no"))
    for name, value in sorted((element.custom or {}).items()):
        rows.append((name.replace("_", " ").capitalize(), value))
    rows.append(("Created", when(element.created_at)))
    return rows


async def _page_context(request: Request, element_type: str, element_id: int) -> dict[str, Any]:
    actor = request.state.actor
    element = await elements.get_element(element_type, element_id, actor=actor)
    pipeline = await pipelines.get_pipeline(element.pipeline_id)
    timeline = await elements.timeline(element_type, element_id, actor=actor)
    people = await users.users_by_id([t.author_id for t in timeline if t.author_id] +
                                     ([element.responsible_id] if element.responsible_id else []), actor=actor)
    responsible = people.get(element.responsible_id) if element.responsible_id else None
    authors = {ident: user.name for ident, user in people.items()}
    message_log = await messages.element_messages(element_type, element_id, actor=actor, first=MESSAGES_SHOWN)
    activations = await triggers.activations(element_type, element_id, actor=actor, first=ACTIVATIONS_SHOWN)
    made = await documents.element_documents(element_type, element_id, actor=actor)
    return {
        **await _runs_context(request, element_type, element_id),
        "element": element, "pipeline": pipeline, "stages": await pipelines.list_stages(pipeline.id),
        "fields": _fields(element_type, element, responsible), "timeline": list(reversed(timeline)),
        "authors": authors, "messages": message_log.items, "messages_more": message_log.has_next,
        "messages_total": message_log.total, "activations": await designer.explain_activations(activations),
        "documents": made, "document_links": {d.id: documents.link_of(d) for d in made},
    }


@page()
async def element_page(request: Request) -> Response:
    element_type = _type(request)
    context = await _page_context(request, element_type, int(request.path_params["element_id"]))
    return render(request, "element.html", context)


@page()
async def element_runs(request: Request) -> Response:
    """The automation tab alone: htmx polls it while runs are pending."""
    element_type = _type(request)
    context = await _runs_context(request, element_type, int(request.path_params["element_id"]))
    return render(request, "_runs.html", context)


@page()
async def element_move(request: Request) -> Response:
    """Move to a stage; htmx gets the element part of the page back (its runs then poll), a plain form a redirect."""
    element_type = _type(request)
    element_id = int(request.path_params["element_id"])
    form = await request.form()
    stage_id = form.get("stage_id")
    move_error = None
    try:
        await elements.move_element(element_type, element_id,
                                    int(stage_id) if isinstance(stage_id, str) and stage_id.isdigit() else 0,
                                    actor=request.state.actor)
    except ValidationFailed as exc:
        move_error = "; ".join(error_map(exc).values())
    if not is_htmx(request):
        if move_error:
            return render(request, "error.html", {"status": 422, "message": move_error}, status_code=422)
        return redirect(request, f"/admin/{element_type}s/{element_id}#automation")
    context = await _page_context(request, element_type, element_id)
    return render(request, "_element.html", {**context, "move_error": move_error},
                  status_code=422 if move_error else 200)


routes = [
    route
    for plural in ("deals", "leads")
    for route in (
        Route(f"/{plural}", element_list, methods=["GET"]),
        Route(f"/{plural}", element_create, methods=["POST"]),
        Route(f"/{plural}/{{element_id:int}}", element_page),
        Route(f"/{plural}/{{element_id:int}}/runs", element_runs),
        Route(f"/{plural}/{{element_id:int}}/move", element_move, methods=["POST"]),
    )
]
