"""Jinja2 environment of the admin and the render helper every view uses."""

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from server import i18n
from server.i18n import N_
from server.errors import FieldError, ValidationFailed
from web import locale

HERE = Path(__file__).resolve().parent
HTMX_VERSION = "4.0.1"  # web/static/htmx.min.js, from the npm package htmx.org@4.0.1 (BSD-0-Clause)

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["HTMX_VERSION"] = HTMX_VERSION

# Every text a page shows goes through the message catalogue: `{{ _("Save") }}`, `{{ _("%(n)s runs", n=3) }}`,
# `{% trans %}`. `gettext` translates into the locale of the request being rendered (`current_locale`, set by
# the guard from the user); the catalogues are the .po files of web/locale, read once here.
i18n.install(locale.load())
current_locale = i18n.current_locale
gettext = i18n.gettext
ngettext = i18n.ngettext

templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]

# Values for people, in the viewer's locale and time zone: `when` a moment ("13.01.2026, 10:00 CET"), `day` a
# date, `money` an amount with its currency (`{{ deal.amount|money(deal.currency) }}`, none: "—"),
# `number`, `duration` (seconds or a timedelta, in words), `yes_no`.
when = i18n.when
templates.env.filters.update({
    "when": when, "day": i18n.format_date, "money": i18n.money, "number": i18n.number,
    "duration": i18n.duration, "yes_no": i18n.yes_no, "weekday": i18n.weekday,
})

# The words of stored codes a page shows (statuses, channels, element types): `{{ word(m.status) }}`. A code
# without a word here shows as it is.
WORDS = {code: text for code, text in (
    ("lead", N_("lead")), ("deal", N_("deal")), ("email", N_("email")), ("sms", N_("SMS")), ("call", N_("call")),
    ("chat", N_("chat")), ("form", N_("form")), ("inbound", N_("inbound")), ("outbound", N_("outbound")),
    ("queued", N_("queued")), ("sending", N_("sending")), ("sent", N_("sent")), ("delivered", N_("delivered")),
    ("bounced", N_("bounced")), ("failed", N_("failed")), ("suppressed", N_("suppressed")),
    ("received", N_("received")), ("captured", N_("captured")), ("scheduled", N_("scheduled")),
    ("running", N_("running")), ("waiting", N_("waiting")), ("succeeded", N_("succeeded")),
    ("skipped", N_("skipped")), ("cancelled", N_("cancelled")), ("stopped", N_("stopped")), ("active", N_("active")),
    ("left", N_("left")), ("deleted", N_("deleted")), ("employee", N_("employee")), ("manager", N_("manager")),
    ("admin", N_("admin")), ("pending", N_("pending")), ("rendering", N_("rendering")), ("ready", N_("ready")),
    ("confirmed", N_("confirmed")), ("tentative", N_("tentative")),
)}


def word(code: object) -> str:
    text = str(code) if code is not None else ""
    return gettext(WORDS[text]) if text in WORDS else text


templates.env.globals["word"] = word


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def render(request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200) -> HTMLResponse:
    """A page or fragment; the session's CSRF token and user are always in the context."""
    session = getattr(request.state, "session", None)
    values = {
        "session": session,
        "me": session.user if session else None,
        "csrf_token": session.csrf_token if session else getattr(request.state, "anon_csrf", ""),
        "errors": {},
        "locale": current_locale.get(),
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, values, status_code=status_code)
    response.headers["Vary"] = "HX-Request"
    return response


async def posted_id(request: Request, name: str) -> int:
    """The id a form posts as `name`, or 0 (which nothing has) when it posts none: the service then says what is
    missing."""
    value = (await request.form()).get(name)
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def redirect(request: Request, url: str) -> Response:
    """After a successful post: a 303 for a plain form, HX-Redirect for htmx (so it loads the page)."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def error_map(exc: ValidationFailed) -> dict[str, str]:
    """Field errors by field name (`params.length`), for inline messages beside the inputs."""
    errors: dict[str, str] = {}
    for error in exc.errors:
        errors.setdefault(error.field, error.message)
    return errors


def one_error(field: str, message: str) -> dict[str, str]:
    return error_map(ValidationFailed([FieldError(field, message)]))
