"""Resources and services in the admin (admins and managers keep them), and the week of one resource's bookings:
seven day columns, each booking a block linking to its deal or lead.

Who may change what is the bookings service's decision; a refusal there is the guard's 403 page.
"""

from datetime import UTC, date
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.errors import ValidationFailed
from server.services import bookings, users
from web.guard import page
from web.templating import error_map, redirect, render

DAY_MINUTES = 24 * 60
QUARTER = 15  # minutes a row of the week view stands for (web/static/bookings.css)
QUARTERS = DAY_MINUTES // QUARTER


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _number(text: str) -> int | None:
    return int(text) if text.strip().isdigit() else None


# ---------------------------------------------------------------- resources


async def _resources_page(request: Request, *, errors: dict[str, dict[str, str]] | None = None,
                          values: dict[str, dict[str, Any]] | None = None, status_code: int = 200) -> Response:
    """`errors` and `values` are keyed by the form they belong to: `new`, or a resource's id."""
    actor = request.state.actor
    return render(request, "resources.html", {
        "resources": await bookings.list_resources(include_inactive=True),
        "people": [u for u in await users.list_users(actor=actor) if u.active],
        "form_errors": errors or {}, "form_values": values or {}, "done": request.query_params.get("done"),
    }, status_code=status_code)


def _resource_input(form: Any) -> bookings.ResourceInput:
    return bookings.ResourceInput(name=_text(form, "name"), kind=_text(form, "kind"),
                                  user_id=_number(_text(form, "user_id")), active="active" in form)


@page()
async def resource_list(request: Request) -> Response:
    if request.method == "GET":
        return await _resources_page(request)
    data = _resource_input(await request.form())
    try:
        resource = await bookings.create_resource(data, actor=request.state.actor)
    except ValidationFailed as exc:
        return await _resources_page(request, errors={"new": error_map(exc)}, values={"new": vars(data)},
                                     status_code=422)
    return redirect(request, f"/admin/resources?done=created#resource-{resource.id}")


@page()
async def resource_update(request: Request) -> Response:
    resource_id = int(request.path_params["resource_id"])
    data = _resource_input(await request.form())
    try:
        await bookings.update_resource(resource_id, data, actor=request.state.actor)
    except ValidationFailed as exc:
        key = str(resource_id)
        return await _resources_page(request, errors={key: error_map(exc)}, values={key: vars(data)},
                                     status_code=422)
    return redirect(request, f"/admin/resources?done=saved#resource-{resource_id}")


# ---------------------------------------------------------------- services


async def _services_page(request: Request, *, errors: dict[str, dict[str, str]] | None = None,
                         values: dict[str, dict[str, Any]] | None = None, status_code: int = 200) -> Response:
    return render(request, "services.html", {
        "services": await bookings.list_services(), "form_errors": errors or {}, "form_values": values or {},
        "done": request.query_params.get("done"),
    }, status_code=status_code)


def _service_input(form: Any) -> bookings.ServiceInput:
    minutes = _text(form, "duration_minutes").strip()
    # not a whole number of minutes (-5, 1.5): 0, which the service refuses naming the field
    return bookings.ServiceInput(name=_text(form, "name"), duration_minutes=(_number(minutes) or 0) if minutes else None)


@page()
async def service_list(request: Request) -> Response:
    if request.method == "GET":
        return await _services_page(request)
    data = _service_input(await request.form())
    try:
        service = await bookings.create_service(data, actor=request.state.actor)
    except ValidationFailed as exc:
        return await _services_page(request, errors={"new": error_map(exc)}, values={"new": vars(data)},
                                    status_code=422)
    return redirect(request, f"/admin/services?done=created#service-{service.id}")


@page()
async def service_update(request: Request) -> Response:
    service_id = int(request.path_params["service_id"])
    data = _service_input(await request.form())
    try:
        await bookings.update_service(service_id, data, actor=request.state.actor)
    except ValidationFailed as exc:
        key = str(service_id)
        return await _services_page(request, errors={key: error_map(exc)}, values={key: vars(data)},
                                    status_code=422)
    return redirect(request, f"/admin/services?done=saved#service-{service_id}")


# ---------------------------------------------------------------- a resource's week


def _day(text: str | None) -> date:
    try:
        return date.fromisoformat(text or "")
    except ValueError:
        return date.today()


def _minutes(moment: Any, day: date) -> int:
    """Minutes since the day's midnight (UTC); a block that runs to the next midnight ends at 1440."""
    moment = moment.astimezone(UTC)
    if moment.date() > day:
        return DAY_MINUTES
    return int(moment.hour * 60 + moment.minute)


def _placed(block: bookings.WeekBlock, day: date) -> dict[str, Any]:
    """A block's rows in its day's column: the quarter hour it starts in and how many quarters it covers."""
    start, end = _minutes(block.starts, day), _minutes(block.ends, day)
    first = min(start // QUARTER, QUARTERS - 1)
    return {"block": block, "row": first, "rows": max(1, min(QUARTERS - first, -(-(end - first * QUARTER) // QUARTER)))}


@page()
async def resource_week(request: Request) -> Response:
    shown = await bookings.week(int(request.path_params["resource_id"]), _day(request.query_params.get("week")),
                                actor=request.state.actor)
    columns = [{"day": d.day, "blocks": [_placed(b, d.day) for b in d.blocks]} for d in shown.days]
    return render(request, "resource_week.html", {"week": shown, "columns": columns, "today": date.today()})


routes = [
    Route("/resources", resource_list, methods=["GET", "POST"]),
    Route("/resources/{resource_id:int}", resource_update, methods=["POST"]),
    Route("/resources/{resource_id:int}/week", resource_week, methods=["GET"]),
    Route("/services", service_list, methods=["GET", "POST"]),
    Route("/services/{service_id:int}", service_update, methods=["POST"]),
]
