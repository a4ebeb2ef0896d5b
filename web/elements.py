"""Leads and deals: lists, the element page with its fields edited in place, tasks and activities, contacts and
company, comments and a live timeline, live automation tab and trigger activations, moves."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.errors import ValidationFailed
from server.i18n import N_, money
from server.services import (
    activities, clients, designer, documents, elements, messages, outputs, pipelines, runs, triggers, users,
)
from web.guard import page
from web.templating import error_map, is_htmx, posted_id, redirect, render, when


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


# The labels of the built-in fields (the fields form's, `code.replace("_", " ").capitalize()`, and _fields'), which
# the templates translate as `_(label)`; marked here for the catalogue.
FIELD_LABELS = (N_("Title"), N_("Amount"), N_("Currency"), N_("Source"), N_("Is repeat"), N_("Responsible"),
                N_("Contact"), N_("Company"), N_("Close date"), N_("Waiting for the customer"), N_("Created"))


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
    contacts, company = await clients.element_clients(element_type, element, actor=actor)
    return {
        **await _fields_context(request, element_type, element),
        **await _work_context(request, element_type, element_id),
        **_timeline_context(element_type, element_id, timeline, authors),
        "contacts": contacts, "company": company,
        **await _runs_context(request, element_type, element_id),
        "element": element, "pipeline": pipeline, "stages": await pipelines.list_stages(pipeline.id),
        "fields": _fields(element_type, element, responsible), "messages": message_log.items, "messages_more": message_log.has_next,
        "messages_total": message_log.total, "activations": await designer.explain_activations(activations),
        "documents": made, "document_links": {d.id: documents.link_of(d) for d in made},
    }

# ---------------------------------------------------------------- fields edited in place


def input_value(kind: str, value: Any, zone: str | None) -> str:
    """A stored value as its form input shows it (money as 1234.50, a date as 2026-12-01, a time in the viewer's zone)."""
    if value is None:
        return ""
    if kind == "bool":
        return "on" if value else ""
    if kind == "datetime":
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return moment.astimezone(activities.zone_named(zone)).strftime("%Y-%m-%dT%H:%M")
    if kind in ("date",) and isinstance(value, date):
        return value.isoformat()
    if kind in ("money", "number"):
        return format(Decimal(str(value)), "f")
    return str(value)


def current_values(fields: list[elements.EditableField], element: Any, zone: str | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for field in fields:
        if field.custom:
            value = (element.custom or {}).get(field.code)
        elif field.code in ("responsible", "contact", "company"):
            value = getattr(element, f"{field.code}_id")
        else:
            value = getattr(element, field.code)
        values[field.code] = input_value(field.type, value, zone)
    return values


def submitted_changes(fields: list[elements.EditableField], form: Any, before: dict[str, str],
                      zone: str | None) -> tuple[dict[str, str], dict[str, Any]]:
    """What the form shows now (to give back on an error) and the changes to save: only fields on the form whose
    input differs from the value they have now, an empty input clearing the field."""
    shown: dict[str, str] = dict(before)
    changes: dict[str, Any] = {}
    for field in fields:
        if field.type == "bool":
            if f"b.{field.code}" not in form:  # not on the form that was sent (a checkbox is absent when off)
                continue
            text = "on" if form.get(f"f.{field.code}") else ""
        elif f"f.{field.code}" not in form:
            continue
        else:
            text = str(form.get(f"f.{field.code}") or "").strip()
        shown[field.code] = text
        if text == before.get(field.code, ""):
            continue
        if field.type == "bool":
            changes[field.code] = bool(text)
        elif text == "":
            changes[field.code] = "" if field.type in ("string", "text") else None
        elif field.type in ("user", "contact", "company"):
            changes[field.code] = int(text) if text.isdigit() else text
        elif field.type == "datetime":
            try:
                changes[field.code] = datetime.fromisoformat(text).replace(
                    tzinfo=activities.zone_named(zone)).astimezone(UTC).isoformat()
            except ValueError:
                changes[field.code] = text  # the service names the field and says what it wants
        else:
            changes[field.code] = text
    return shown, changes


async def _fields_context(request: Request, element_type: str, element: Any, *, shown: dict[str, str] | None = None,
                          errors: dict[str, str] | None = None, saved: bool = False) -> dict[str, Any]:
    actor = request.state.actor
    editable = await elements.editable_fields(element_type)
    kinds = {f.type for f in editable}
    return {
        "editable": editable, "field_values": shown or current_values(editable, element, _zone(request)),
        "field_errors": errors or {}, "fields_saved": saved, "zone_name": activities.zone_named(_zone(request)).key,
        "people": await users.list_users(actor=actor) if "user" in kinds else [],
        "contact_choices": await clients.list_clients("contact", actor=actor) if "contact" in kinds else [],
        "company_choices": await clients.list_clients("company", actor=actor) if "company" in kinds else [],
    }


def _zone(request: Request) -> str | None:
    return request.state.session.user.timezone  # type: ignore[no-any-return]


@page()
async def element_fields(request: Request) -> Response:
    """Save the fields form through the same service as updateDeal/updateLead; errors come back beside each field
    with everything typed kept."""
    element_type = _type(request)
    element_id = int(request.path_params["element_id"])
    actor = request.state.actor
    element = await elements.get_element(element_type, element_id, actor=actor)
    editable = await elements.editable_fields(element_type)
    form = await request.form()
    shown, changes = submitted_changes(editable, form, current_values(editable, element, _zone(request)),
                                       _zone(request))
    try:
        if changes:
            element = await elements.update_element(element_type, element_id, changes, actor=actor)
    except ValidationFailed as exc:
        context = {"element": element, "element_type": element_type,
                   **await _fields_context(request, element_type, element, shown=shown, errors=error_map(exc))}
        if not is_htmx(request):
            return render(request, "element.html", await _page_context(request, element_type, element_id) | context,
                          status_code=422)
        return render(request, "_element_fields.html", context, status_code=422)
    if not is_htmx(request):
        return redirect(request, f"/admin/{element_type}s/{element_id}#fields")
    return render(request, "_element_fields.html", {
        "element": element, "element_type": element_type,
        **await _fields_context(request, element_type, element, saved=bool(changes))})


# ---------------------------------------------------------------- tasks and activities of the element


async def _work_context(request: Request, element_type: str, element_id: int) -> dict[str, Any]:
    actor = request.state.actor
    open_tasks = [t for t in await elements.tasks(element_type, element_id, actor=actor) if t.status == "open"]
    found = [a for a in await activities.list_for_element(element_type, element_id, actor=actor) if not a.completed]
    items = [activities.WorkItem("task", t.id, t.title, t.deadline, element_type, element_id, t.priority == "high")
             for t in open_tasks]
    items += [activities.WorkItem(a.kind, a.id, a.subject, a.start_at, element_type, element_id, a.important)
              for a in found]
    return {"work_items": items, "work_back": f"/admin/{element_type}s/{element_id}#work"}


# ---------------------------------------------------------------- comments and the live timeline


def _timeline_context(element_type: str, element_id: int, timeline: list[Any], authors: dict[int, str]) -> dict[str, Any]:
    return {"timeline": list(reversed(timeline)), "authors": authors,
            "timeline_url": f"/admin/{element_type}s/{element_id}/timeline",
            "live_url": f"/admin/live/{element_type}s/{element_id}"}


async def _timeline_of(request: Request, element_type: str, element_id: int) -> dict[str, Any]:
    actor = request.state.actor
    timeline = await elements.timeline(element_type, element_id, actor=actor)
    people = await users.users_by_id([t.author_id for t in timeline if t.author_id], actor=actor)
    return _timeline_context(element_type, element_id, timeline, {i: u.name for i, u in people.items()})


@page()
async def element_timeline(request: Request) -> Response:
    """The timeline list alone: fetched again when the live stream says something was added."""
    element_type = _type(request)
    return render(request, "_timeline.html", await _timeline_of(request, element_type,
                                                                int(request.path_params["element_id"])))


@page()
async def element_comment(request: Request) -> Response:
    """Add a comment through the same service as GraphQL addComment."""
    element_type = _type(request)
    element_id = int(request.path_params["element_id"])
    form = await request.form()
    text = str(form.get("text") or "")
    errors: dict[str, str] = {}
    try:
        await elements.add_comment(element_type, element_id, text, actor=request.state.actor)
        text = ""
    except ValidationFailed as exc:
        errors = error_map(exc)
    if not is_htmx(request):
        if errors:
            return render(request, "error.html", {"status": 422, "message": "; ".join(errors.values())}, status_code=422)
        return redirect(request, f"/admin/{element_type}s/{element_id}#timeline-title")
    context = {"element_type": element_type, "element": {"id": element_id}, "comment_text": text,
               "comment_errors": errors, **await _timeline_of(request, element_type, element_id)}
    return render(request, "_comment_timeline.html", context, status_code=422 if errors else 200)



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
    move_error = None
    try:
        await elements.move_element(element_type, element_id, await posted_id(request, "stage_id"), actor=request.state.actor)
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
        Route(f"/{plural}/{{element_id:int}}/fields", element_fields, methods=["POST"]),
        Route(f"/{plural}/{{element_id:int}}/comments", element_comment, methods=["POST"]),
        Route(f"/{plural}/{{element_id:int}}/timeline", element_timeline, methods=["GET"]),
    )
]
