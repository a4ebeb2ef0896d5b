"""Login (password, then TOTP or a recovery code), logout, the one-time setup page and TOTP enrolment."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.errors import ValidationFailed
from server.i18n import gettext as _
from server.services import auth
from web.guard import SESSION_COOKIE, anonymous_form, clear_session_cookie, client_ip, page, set_session_cookie
from web.templating import error_map, one_error, render


def _safe_next(value: object) -> str:
    text = value if isinstance(value, str) else ""
    return text if text.startswith("/admin") and not text.startswith("//") else "/admin"


def _form_text(form: object, name: str) -> str:
    value = form.get(name) if hasattr(form, "get") else None
    return value if isinstance(value, str) else ""


def _no_store(response: Response) -> Response:
    """Pages that show a secret (the TOTP secret, recovery codes) are kept by no cache, not even the browser's."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _busy(request: Request, template: str, context: dict[str, object], exc: auth.HashingBusy) -> Response:
    """Too many password checks at once: refused at once with 503, and when to try again."""
    response = render(request, template, context, status_code=503)
    response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


@anonymous_form
async def login(request: Request) -> Response:
    if await auth.setup_needed():
        return RedirectResponse("/admin/setup", status_code=303)
    next_url = _safe_next(request.query_params.get("next"))
    if request.method == "GET":
        return render(request, "login.html", {"next": next_url, "email": ""})
    form = await request.form()
    email, password = _form_text(form, "email"), _form_text(form, "password")
    next_url = _safe_next(form.get("next"))
    ip = client_ip(request)
    try:
        user = await auth.check_password(email, password, ip=ip)
    except auth.LockedOut as exc:
        return render(request, "login.html", {"next": next_url, "email": email, "message": str(exc)}, status_code=429)
    except auth.HashingBusy as exc:
        return _busy(request, "login.html", {"next": next_url, "email": email, "message": str(exc)}, exc)
    if user is None:
        message = _("Wrong email or password.")
        return render(request, "login.html", {"next": next_url, "email": email, "message": message}, status_code=401)
    if user.totp_confirmed:
        stage = auth.STAGE_PASSWORD
        target = f"/admin/login/code?next={next_url}"
    else:
        await auth.start_enrolment(user)
        stage = auth.STAGE_SETUP
        target = "/admin/enrol"
    session_id = await auth.create_session(user, stage=stage, ip=ip, replaces=request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, session_id)
    return response


@page(stage=auth.STAGE_PASSWORD)
async def login_code(request: Request) -> Response:
    session = request.state.session
    next_url = _safe_next(request.query_params.get("next"))
    if request.method == "GET":
        return render(request, "login_code.html", {"next": next_url})
    form = await request.form()
    next_url = _safe_next(form.get("next"))
    ip = client_ip(request)
    try:
        accepted = await auth.check_second_factor(session.user, _form_text(form, "code"), ip=ip)
    except auth.LockedOut as exc:
        return render(request, "login_code.html", {"next": next_url, "message": str(exc)}, status_code=429)
    except auth.HashingBusy as exc:
        return _busy(request, "login_code.html", {"next": next_url, "message": str(exc)}, exc)
    if not accepted:
        message = _("That code was not accepted. Codes work once: wait for the next one, or use a recovery code.")
        return render(request, "login_code.html", {"next": next_url, "message": message}, status_code=401)
    session_id = await auth.create_session(session.user, stage=auth.STAGE_FULL, ip=ip,
                                           replaces=request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(request, response, session_id)
    return response


@page()
async def logout(request: Request) -> Response:
    await auth.end_session(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/admin/login", status_code=303)
    clear_session_cookie(request, response)
    return response


@anonymous_form
async def setup(request: Request) -> Response:
    """Only while no admin can log in, and only with the setup code printed on the server's console:
    create the first admin, then enrol TOTP. A wrong code counts as a failed attempt of the address."""
    if not await auth.setup_needed():
        return render(request, "error.html", {"status": 404, "message": "Setup is done: log in instead."},
                      status_code=404)
    if request.method == "GET":
        return render(request, "setup.html", {"values": {}})
    form = await request.form()
    code = _form_text(form, "setup_code")
    values = {name: _form_text(form, name) for name in ("email", "name")}
    ip = client_ip(request)
    try:
        right = await auth.guess_setup_code(code, ip=ip)
    except auth.LockedOut as exc:
        return render(request, "setup.html", {"values": values, "message": str(exc)}, status_code=429)
    if not right:
        message = auth.SETUP_CODE_WRONG if code.strip() else auth.SETUP_CODE_MISSING
        return render(request, "setup.html", {"values": values, "errors": one_error("setup_code", message)},
                      status_code=401)
    values["setup_code"] = code  # right: kept, so a mistake elsewhere does not mean typing it again
    password = _form_text(form, "password")
    if password != _form_text(form, "password_again"):
        return render(request, "setup.html", {"values": values, "errors": one_error("password_again", _("the passwords differ"))},
                      status_code=422)
    try:
        user = await auth.make_first_admin(code=code, email=values["email"], name=values["name"], password=password)
    except auth.HashingBusy as exc:
        return _busy(request, "setup.html", {"values": values, "message": str(exc)}, exc)
    except ValidationFailed as exc:
        errors = error_map(exc)
        if "setup_code" in errors:  # used by a setup that came first
            values.pop("setup_code")
        return render(request, "setup.html", {"values": values, "errors": errors}, status_code=422)
    session_id = await auth.create_session(user, stage=auth.STAGE_SETUP, ip=ip,
                                           replaces=request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/admin/enrol", status_code=303)
    set_session_cookie(request, response, session_id)
    return response


@page(stage=auth.STAGE_SETUP)
async def enrol(request: Request) -> Response:
    """Scan the QR code (or type the secret), confirm with a code; recovery codes are shown once."""
    user = request.state.session.user
    if not user.totp_secret:
        user = await auth.start_enrolment(user)
    uri = auth.provisioning_uri(user)
    context = {"secret": user.totp_secret, "uri": uri, "qr": auth.qr_svg(uri)}
    if request.method == "GET":
        return _no_store(render(request, "enrol.html", context))
    form = await request.form()
    try:
        codes = await auth.confirm_enrolment(user, _form_text(form, "code"))
    except ValidationFailed as exc:
        return _no_store(render(request, "enrol.html", {**context, "errors": error_map(exc)}, status_code=422))
    session_id = await auth.create_session(user, stage=auth.STAGE_FULL, ip=client_ip(request),
                                           replaces=request.cookies.get(SESSION_COOKIE))
    request.state.session = await auth.load_session(session_id)
    response = _no_store(render(request, "recovery_codes.html", {"codes": codes}))
    set_session_cookie(request, response, session_id)
    return response


routes = [
    Route("/login", login, methods=["GET", "POST"]),
    Route("/login/code", login_code, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/setup", setup, methods=["GET", "POST"]),
    Route("/enrol", enrol, methods=["GET", "POST"]),
]
