"""My work: the signed-in user's open tasks, calls and meetings, overdue / due today / later in their own time;
closing a task and completing an activity, from this page and from the element page's panel."""

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.errors import ValidationFailed
from server.i18n import N_
from server.services import activities, elements, users
from web.guard import page
from web.templating import error_map, redirect, render

KIND_LABELS = {"task": N_("Tasks"), "call": N_("Calls"), "meeting": N_("Meetings"), "activity": N_("Activities"),
               "todo": N_("To-dos")}
GROUP_LABELS = {"overdue": N_("Overdue"), "today": N_("Due today"), "later": N_("Later")}
# What _work_macros.html shows an item's kind as (`_(item.kind|capitalize)`), marked for the catalogue.
KIND_NAMES = (N_("Task"), N_("Call"), N_("Meeting"), N_("Activity"), N_("Todo"))
SHOWN = 200  # tasks and activities each


def element_path(element_type: str | None, element_id: int | None) -> str | None:
    if element_type in ("deal", "lead") and element_id is not None:
        return f"/admin/{element_type}s/{element_id}"
    return None


@page()
async def my_work(request: Request) -> Response:
    actor = request.state.actor
    kind = request.query_params.get("kind") or None
    user_param = request.query_params.get("user") or ""
    user_id = int(user_param) if user_param.isdigit() else actor.user_id
    zone = request.state.session.user.timezone
    try:
        groups = await activities.open_work(user_id, actor=actor, zone=zone, kind=kind, limit=SHOWN)
        errors: dict[str, str] = {}
    except ValidationFailed as exc:
        groups, errors = await activities.open_work(user_id, actor=actor, zone=zone, limit=SHOWN), error_map(exc)
        kind = None
    people = await users.list_users(actor=actor) if actor.sees_all_elements else []
    return render(request, "work.html", {
        "groups": groups, "group_labels": GROUP_LABELS, "kind_labels": KIND_LABELS, "kind": kind or "",
        "user_id": user_id, "people": people, "zone": activities.zone_named(zone).key, "element_path": element_path,
        "back": request.url.path + (f"?{request.url.query}" if request.url.query else ""), "errors": errors,
    })


def _back(request: Request, form: Any) -> str:
    """Where to go after closing: the page the form came from (a path under /admin), else My work."""
    back = str(form.get("back") or "")
    return back if back.startswith("/admin/") and not back.startswith("//") else "/admin/work"


@page()
async def close_task(request: Request) -> Response:
    """Close a task through the same service as GraphQL closeTask: a rule waiting for it goes on."""
    form = await request.form()
    try:
        await elements.close_task(int(request.path_params["task_id"]), actor=request.state.actor)
    except ValidationFailed as exc:
        return render(request, "error.html", {"status": 422, "message": "; ".join(error_map(exc).values())},
                      status_code=422)
    return redirect(request, _back(request, form))


@page()
async def complete_activity(request: Request) -> Response:
    """Mark a call, meeting or to-do done through the same service as GraphQL completeActivity."""
    form = await request.form()
    try:
        await activities.complete_activity(int(request.path_params["activity_id"]), actor=request.state.actor)
    except ValidationFailed as exc:
        return render(request, "error.html", {"status": 422, "message": "; ".join(error_map(exc).values())},
                      status_code=422)
    return redirect(request, _back(request, form))


routes = [
    Route("/work", my_work, methods=["GET"]),
    Route("/tasks/{task_id:int}/close", close_task, methods=["POST"]),
    Route("/activities/{activity_id:int}/complete", complete_activity, methods=["POST"]),
]
