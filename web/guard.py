"""Who is asking: the session cookie, the CSRF check on every state-changing request, admin-only pages.

Logged-in requests compare the session's CSRF token with the `X-CSRF-Token` header (htmx) or the
`csrf_token` form field. Forms shown before login (login, setup) use a double-submit cookie.
Bodies are capped by server/http.py: small until a session is seen here, the configured maximum after.
"""

import secrets
from collections.abc import Awaitable, Callable
from functools import wraps
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server.config import settings
from server.errors import Forbidden, NotFound
from server.http import BodyLimit
from server.i18n import gettext as _
from server.i18n import viewing
from server.services import auth
from server.services.access import actor_for
from web.templating import is_htmx, render

SESSION_COOKIE = "pw_session"
ANON_COOKIE = "pw_form"
COOKIE_PATH = "/admin"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

Handler = Callable[[Request], Awaitable[Response]]


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def client_ip(request: Request) -> str:
    """The client's address: the peer's, or what trusted proxies report (server/http.py, PIPEWRIGHT_TRUSTED_PROXIES)."""
    return request.client.host if request.client else "unknown"


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    response.set_cookie(SESSION_COOKIE, session_id, path=COOKIE_PATH, httponly=True, samesite="lax",
                        secure=secure(request))


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax", secure=secure(request))


async def submitted_token(request: Request) -> str | None:
    header = request.headers.get("X-CSRF-Token")
    if header:
        return header
    form = await request.form()
    value = form.get("csrf_token")
    return value if isinstance(value, str) else None


def refused(request: Request, message: str, *, status_code: int = 403) -> Response:
    return render(request, "error.html", {"message": message, "status": status_code}, status_code=status_code)


def anonymous_form(handler: Handler) -> Handler:
    """Pages before login: a double-submit CSRF token (cookie and form field must match on POST)."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        with viewing(settings().default_locale, None):  # no user yet: the instance's language, UTC
            return await _anonymous(handler, request)

    return endpoint


async def _anonymous(handler: Handler, request: Request) -> Response:
    token = request.cookies.get(ANON_COOKIE) or ""
    if request.method not in SAFE_METHODS and not auth.csrf_matches(token, await submitted_token(request)):
        return refused(request, _("The form had no valid security token. Reload the page and try again."))
    fresh = not token
    request.state.anon_csrf = token or secrets.token_urlsafe(32)
    response = await handler(request)
    if fresh:
        response.set_cookie(ANON_COOKIE, request.state.anon_csrf, path=COOKIE_PATH, httponly=True,
                            samesite="strict", secure=secure(request))
    return response


def _to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = "/admin/login" + (f"?next={quote(target)}" if request.method in SAFE_METHODS else "")
    if is_htmx(request):
        return Response(status_code=401, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def page(*, admin: bool = False, stage: str = auth.STAGE_FULL) -> Callable[[Handler], Handler]:
    """A logged-in page (fully, or at the given login stage); `admin` pages are for admins only."""

    def wrap(handler: Handler) -> Handler:
        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            session = await auth.load_session(request.cookies.get(SESSION_COOKIE))
            if session is None or session.stage != stage:
                return _to_login(request)
            with viewing(session.user.locale or settings().default_locale, session.user.timezone):
                return await _logged_in(handler, request, session, admin=admin)

        return endpoint

    return wrap


async def _logged_in(handler: Handler, request: Request, session: auth.Session, *, admin: bool) -> Response:
    request.state.session = session
    request.state.actor = actor_for(session.user)
    limit = BodyLimit.of(request.scope)
    if limit is not None:  # logged in: forms may be as large as the configured maximum
        limit.max_bytes = settings().max_body_bytes
    if request.method not in SAFE_METHODS and not auth.csrf_matches(
        session.csrf_token, await submitted_token(request)
    ):
        return refused(request, _("This request had no valid CSRF token and was refused. Reload the page."))
    if admin and not request.state.actor.is_admin:
        return refused(request, _("Only admins may change pipelines, rules, users and API tokens."))
    try:
        return await handler(request)
    except Forbidden as exc:
        return refused(request, str(exc))
    except NotFound as exc:
        return refused(request, str(exc), status_code=404)
    except auth.HashingBusy as exc:  # setting a password while too many are being checked
        response = refused(request, str(exc), status_code=503)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

