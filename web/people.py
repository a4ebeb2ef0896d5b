"""Users (role, supervisor, working hours, absence, password) and API tokens: admins only."""

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.errors import ValidationFailed
from server.i18n import N_
from server.services import tokens, users
from server.services.users import UserInput
from web.guard import page
from web.templating import error_map, redirect, render

DAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


def _user_input(form: Any, *, new: bool) -> UserInput:
    supervisor = str(form.get("supervisor_id") or "")
    hours: dict[str, Any] = {"days": [int(d) for d in form.getlist("days") if str(d).isdigit()]}
    if form.get("start"):
        hours["start"] = str(form.get("start"))
    if form.get("end"):
        hours["end"] = str(form.get("end"))
    return UserInput(
        email=str(form.get("email") or ""), name=str(form.get("name") or ""), role=str(form.get("role") or "employee"),
        supervisor_id=int(supervisor) if supervisor.isdigit() else None, clear_supervisor=not supervisor.isdigit(),
        timezone=str(form.get("timezone") or "UTC"), locale=str(form.get("locale") or ""), working_hours=hours, absent="absent" in form,
        active=True if new else "active" in form, password=str(form.get("password") or "") or None,
    )


async def _list_page(request: Request, *, errors: dict[str, str] | None = None, values: Any = None,
                     status_code: int = 200) -> Response:
    everyone = await users.list_users(actor=request.state.actor)
    names = {u.id: u.name for u in everyone}
    return render(request, "users.html", {"users": everyone, "names": names, "days": DAYS, "errors": errors or {},
                                          "values": values}, status_code=status_code)


@page(admin=True)
async def user_list(request: Request) -> Response:
    if request.method == "GET":
        return await _list_page(request)
    form = await request.form()
    data = _user_input(form, new=True)
    try:
        user = await users.create_user(data, actor=request.state.actor)
    except ValidationFailed as exc:
        return await _list_page(request, errors=error_map(exc), values=data, status_code=422)
    return redirect(request, f"/admin/users/{user.id}?created=1")


@page(admin=True)
async def user_edit(request: Request) -> Response:
    user_id = int(request.path_params["user_id"])
    actor = request.state.actor
    user = await users.get_user(user_id, actor=actor)
    everyone = await users.list_users(actor=actor)
    context: dict[str, Any] = {"user": user, "others": [u for u in everyone if u.id != user.id], "days": DAYS,
                               "saved": request.query_params.get("saved"), "created": request.query_params.get("created")}
    if request.method == "GET":
        return render(request, "user.html", context)
    form = await request.form()
    if form.get("reset_two_factor"):
        await users.reset_two_factor(user_id, actor=actor)
        return redirect(request, f"/admin/users/{user_id}?saved=1")
    try:
        await users.update_user(user_id, _user_input(form, new=False), actor=actor)
    except ValidationFailed as exc:
        return render(request, "user.html", {**context, "errors": error_map(exc)}, status_code=422)
    return redirect(request, f"/admin/users/{user_id}?saved=1")


async def _tokens_page(request: Request, **extra: Any) -> Response:
    status_code = extra.pop("status_code", 200)
    return render(request, "tokens.html", {
        "tokens": await tokens.list_tokens(request.state.actor),
        "users": await users.list_users(actor=request.state.actor), **extra,
    }, status_code=status_code)


@page(admin=True)
async def token_list(request: Request) -> Response:
    if request.method == "GET":
        return await _tokens_page(request)
    form = await request.form()
    user_id = str(form.get("user_id") or "")
    try:
        token, secret = await tokens.create_token(request.state.actor, user_id=int(user_id) if user_id.isdigit() else 0,
                                                  name=str(form.get("name") or ""))
    except ValidationFailed as exc:
        return await _tokens_page(request, errors=error_map(exc), status_code=422)
    response = await _tokens_page(request, created=token, secret=secret)
    response.headers["Cache-Control"] = "no-store"
    return response


@page(admin=True)
async def token_revoke(request: Request) -> Response:
    await tokens.revoke_token(request.state.actor, int(request.path_params["token_id"]))
    return redirect(request, "/admin/tokens")


routes = [
    Route("/users", user_list, methods=["GET", "POST"]),
    Route("/users/{user_id:int}", user_edit, methods=["GET", "POST"]),
    Route("/tokens", token_list, methods=["GET", "POST"]),
    Route("/tokens/{token_id:int}/revoke", token_revoke, methods=["POST"]),
]
