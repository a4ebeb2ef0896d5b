"""Customer channels in the admin: a message with its attempts (and resend), the capture mailbox, the exception list,
and the channels page for admins (senders, transports, webhook URLs and secrets, the suppression list).

What each role may do is the messages service's decision; a refusal there is the guard's 403 page.
"""

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.errors import ValidationFailed
from server.services import messages
from web.guard import page
from web.templating import error_map, redirect, render

PAGE = 50  # rows a list page shows; the next page is `?after=<last id>`


def _after(request: Request) -> int | None:
    value = request.query_params.get("after") or ""
    return int(value) if value.isdigit() else None


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------- one message


async def _message_page(request: Request, message_id: int, *, errors: dict[str, str] | None = None,
                        status_code: int = 200) -> Response:
    detail = await messages.get_message(message_id, actor=request.state.actor)
    return render(request, "message.html", {"message": detail.message, "attempts": detail.attempts,
                                            "resent": request.query_params.get("resent"), "errors": errors or {}},
                  status_code=status_code)


@page()
async def message_detail(request: Request) -> Response:
    return await _message_page(request, int(request.path_params["message_id"]))


@page()
async def message_resend(request: Request) -> Response:
    message_id = int(request.path_params["message_id"])
    try:
        message = await messages.resend(message_id, actor=request.state.actor)
    except ValidationFailed as exc:
        return await _message_page(request, message_id, errors=error_map(exc), status_code=422)
    return redirect(request, f"/admin/messages/{message.id}?resent=1")


# ---------------------------------------------------------------- the capture mailbox


@page()
async def mailbox(request: Request) -> Response:
    shown = await messages.capture_mailbox(actor=request.state.actor, first=PAGE, after=_after(request))
    return render(request, "mailbox.html", {"page": shown, "capturing": messages.capturing(actor=request.state.actor)})


# ---------------------------------------------------------------- exceptions


async def _exceptions_page(request: Request, *, errors: dict[str, str] | None = None,
                           values: dict[str, str] | None = None, status_code: int = 200) -> Response:
    search = request.query_params.get("q") or ""
    shown = await messages.exceptions(actor=request.state.actor, first=PAGE, after=_after(request), search=search)
    return render(request, "exceptions.html", {"page": shown, "q": search, "errors": errors or {},
                                               "values": values or {}, "added": request.query_params.get("added")},
                  status_code=status_code)


@page()
async def exception_list(request: Request) -> Response:
    if request.method == "GET":
        return await _exceptions_page(request)
    form = await request.form()
    values = {"value": _text(form, "value"), "note": _text(form, "note")}
    try:
        entry = await messages.add_exception(values["value"], note=values["note"], actor=request.state.actor)
    except ValidationFailed as exc:
        return await _exceptions_page(request, errors=error_map(exc), values=values, status_code=422)
    return redirect(request, f"/admin/exceptions?added={entry.id}")


@page()
async def exception_remove(request: Request) -> Response:
    await messages.remove_exception(int(request.path_params["entry_id"]), actor=request.state.actor)
    return redirect(request, "/admin/exceptions")


# ---------------------------------------------------------------- channels (admins)


async def _channels_page(request: Request, *, errors: dict[str, dict[str, str]] | None = None,
                         values: dict[str, dict[str, Any]] | None = None, status_code: int = 200) -> Response:
    """`errors` and `values` are keyed by the form they belong to: `new` (a new sender), a sender's id, `suppress`."""
    actor = request.state.actor
    return render(request, "channels.html", {
        "settings": await messages.channel_settings(actor=actor), "senders": await messages.mail_senders(actor=actor),
        "suppressions": await messages.suppressions(actor=actor, first=PAGE, after=_after(request)),
        "form_errors": errors or {}, "form_values": values or {}, "done": request.query_params.get("done"),
    }, status_code=status_code)


@page(admin=True)
async def channels(request: Request) -> Response:
    return await _channels_page(request)


def _sender_input(form: Any) -> messages.SenderInput:
    return messages.SenderInput(name=_text(form, "name"), address=_text(form, "address"),
                                reply_to=_text(form, "reply_to"), is_default="is_default" in form)


@page(admin=True)
async def sender_create(request: Request) -> Response:
    data = _sender_input(await request.form())
    try:
        await messages.create_sender(data, actor=request.state.actor)
    except ValidationFailed as exc:
        return await _channels_page(request, errors={"new": error_map(exc)}, values={"new": vars(data)},
                                    status_code=422)
    return redirect(request, "/admin/channels?done=sender#senders")


@page(admin=True)
async def sender_update(request: Request) -> Response:
    sender_id = int(request.path_params["sender_id"])
    data = _sender_input(await request.form())
    if not data.is_default:
        data.is_default = None  # an unticked box keeps the default where it is (another sender takes it over)
    try:
        await messages.update_sender(sender_id, data, actor=request.state.actor)
    except ValidationFailed as exc:
        key = str(sender_id)
        return await _channels_page(request, errors={key: error_map(exc)}, values={key: vars(data)},
                                    status_code=422)
    return redirect(request, f"/admin/channels?done=sender#sender-{sender_id}")


@page(admin=True)
async def sender_delete(request: Request) -> Response:
    await messages.delete_sender(int(request.path_params["sender_id"]), actor=request.state.actor)
    return redirect(request, "/admin/channels?done=sender#senders")


@page(admin=True)
async def webhook_rotate(request: Request) -> Response:
    channel = request.path_params["channel"]
    await messages.rotate_webhook(channel, actor=request.state.actor)
    return redirect(request, f"/admin/channels?done=rotated#hook-{channel}")


@page(admin=True)
async def suppression_add(request: Request) -> Response:
    form = await request.form()
    values = {"value": _text(form, "value"), "detail": _text(form, "detail")}
    try:
        await messages.add_suppression(values["value"], detail=values["detail"], actor=request.state.actor)
    except ValidationFailed as exc:
        return await _channels_page(request, errors={"suppress": error_map(exc)}, values={"suppress": values},
                                    status_code=422)
    return redirect(request, "/admin/channels?done=suppressed#suppressions")


@page(admin=True)
async def suppression_remove(request: Request) -> Response:
    await messages.remove_suppression(int(request.path_params["suppression_id"]), actor=request.state.actor)
    return redirect(request, "/admin/channels?done=unsuppressed#suppressions")


routes = [
    Route("/messages/{message_id:int}", message_detail, methods=["GET"]),
    Route("/messages/{message_id:int}/resend", message_resend, methods=["POST"]),
    Route("/mailbox", mailbox, methods=["GET"]),
    Route("/exceptions", exception_list, methods=["GET", "POST"]),
    Route("/exceptions/{entry_id:int}/remove", exception_remove, methods=["POST"]),
    Route("/channels", channels, methods=["GET"]),
    Route("/channels/senders", sender_create, methods=["POST"]),
    Route("/channels/senders/{sender_id:int}", sender_update, methods=["POST"]),
    Route("/channels/senders/{sender_id:int}/delete", sender_delete, methods=["POST"]),
    Route("/channels/webhooks/{channel}/rotate", webhook_rotate, methods=["POST"]),
    Route("/channels/suppressions", suppression_add, methods=["POST"]),
    Route("/channels/suppressions/{suppression_id:int}/remove", suppression_remove, methods=["POST"]),
]
