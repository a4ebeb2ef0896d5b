"""The admin's login and request guards over plain HTTP, against `pipewright serve` as a child process."""

import hashlib
import re
import sqlite3
from pathlib import Path

import httpx
import pyotp

from tests.support.admin import PASSWORD, Admin, Server, csrf_of, log_in, start_server, stop_server


def client(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30)


async def test_setup_page_only_while_no_admin_can_log_in(empty_server: Server) -> None:
    async with client(empty_server) as http:
        assert (await http.get("/admin/")).headers["location"].startswith("/admin/login")
        assert (await http.get("/admin/login")).headers["location"] == "/admin/setup"
        page = await http.get("/admin/setup")
        assert page.status_code == 200 and "Setup code (printed in the server's console)" in page.text
        form = {"setup_code": empty_server.setup_code(), "email": "first@example.com", "name": "First Admin",
                "password": PASSWORD, "password_again": PASSWORD}
        assert (await http.post("/admin/setup", data=form)).status_code == 403  # no CSRF token
        short = await http.post("/admin/setup", data={**form, "password": "short", "password_again": "short",
                                                      "csrf_token": csrf_of(page.text)})
        assert short.status_code == 422 and "at least 10 characters" in short.text
        assert f'value="{form["setup_code"]}"' in short.text  # the right code is kept for the next try
        created = await http.post("/admin/setup", data={**form, "csrf_token": csrf_of(page.text)})
        assert created.headers["location"] == "/admin/enrol"

        enrol = await http.get("/admin/enrol")
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', enrol.text).group(1)
        assert "<svg" in enrol.text and "otpauth://totp/" in enrol.text
        wrong = await http.post("/admin/enrol", data={"code": "000000", "csrf_token": csrf_of(enrol.text)})
        assert wrong.status_code == 422 and "does not match" in wrong.text
        done = await http.post("/admin/enrol", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_of(enrol.text)})
        codes = re.findall(r"<code>([a-z2-7]{5}-[a-z2-7]{5})</code>", done.text)
        assert done.status_code == 200 and len(codes) == 10
        assert (await http.get("/admin/pipelines")).status_code == 200

        assert (await http.get("/admin/setup")).status_code == 404
        assert (await http.get("/admin/login")).status_code == 200

    admin = Admin("first@example.com", secret, codes, last_step=10**12)  # TOTP used up: log in with a recovery code
    async with client(empty_server) as http:
        page = await http.get("/admin/login")
        await http.post("/admin/login", data={"email": admin.email, "password": PASSWORD, "csrf_token": csrf_of(page.text)})
        code_page = await http.get("/admin/login/code")
        ok = await http.post("/admin/login/code", data={"code": codes[0], "csrf_token": csrf_of(code_page.text)})
        assert ok.status_code == 303
    async with client(empty_server) as http:
        page = await http.get("/admin/login")
        await http.post("/admin/login", data={"email": admin.email, "password": PASSWORD, "csrf_token": csrf_of(page.text)})
        code_page = await http.get("/admin/login/code")
        again = await http.post("/admin/login/code", data={"code": codes[0], "csrf_token": csrf_of(code_page.text)})
        assert again.status_code == 401  # a recovery code works once


def rows(server: Server, sql: str, *args: object) -> list[tuple]:
    """A look into the server's SQLite database, beside the running server."""
    with sqlite3.connect(server.db_path) as connection:
        return connection.execute(sql, args).fetchall()


def setup_form(page: httpx.Response, code: str | None, email: str = "first@example.com") -> dict[str, str]:
    form = {"email": email, "name": "First Admin", "password": PASSWORD, "password_again": PASSWORD,
            "csrf_token": csrf_of(page.text)}
    return form if code is None else {**form, "setup_code": code}


async def test_setup_needs_the_code_printed_on_the_console_and_it_works_once(empty_server: Server) -> None:
    code = empty_server.setup_code()
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{2}", code)
    # only the hash of the code is stored, and the code itself is nowhere in the database
    assert rows(empty_server, "SELECT code_hash FROM setup_code") == [
        (hashlib.sha256(code.replace("-", "").encode()).hexdigest(),)]
    stored = b"".join(path.read_bytes() for path in empty_server.db_path.parent.glob("admin.db*"))
    assert code.replace("-", "").encode() not in stored and code.encode() not in stored

    async with client(empty_server) as http:
        page = await http.get("/admin/setup")
        without = await http.post("/admin/setup", data=setup_form(page, None))
        assert without.status_code == 401 and "enter the setup code printed in the server&#39;s console" in without.text
        wrong = await http.post("/admin/setup", data=setup_form(page, "AAAA-BBBB-CC"))
        assert wrong.status_code == 401
        assert "the setup code does not match the one printed in the server&#39;s console" in wrong.text
        assert 'id="err-setup_code"' in wrong.text and 'aria-describedby="err-setup_code"' in wrong.text
        assert 'value="first@example.com"' in wrong.text and 'value="First Admin"' in wrong.text
        assert PASSWORD not in wrong.text and 'value="AAAA-BBBB-CC"' not in wrong.text
        assert rows(empty_server, "SELECT count(*) FROM user") == [(0,)]

        # lower case, spaces for dashes: the same code
        typed = code.lower().replace("-", " ")
        created = await http.post("/admin/setup", data=setup_form(page, typed))
        assert created.status_code == 303 and created.headers["location"] == "/admin/enrol"
        assert rows(empty_server, "SELECT email, role FROM user") == [("first@example.com", "admin")]
        assert rows(empty_server, "SELECT count(*) FROM setup_code") == [(0,)]
    async with client(empty_server) as http:  # someone else, with the same code, before the TOTP is confirmed
        page = await http.get("/admin/setup")
        assert page.status_code == 200  # no admin can log in yet
        again = await http.post("/admin/setup", data=setup_form(page, code, email="second@example.com"))
        assert again.status_code == 401 and "does not match" in again.text
        assert rows(empty_server, "SELECT email FROM user") == [("first@example.com",)]


async def test_a_restart_prints_a_new_code_and_the_old_one_stops_working(tmp_path: Path) -> None:
    # A new file, not the migrated template: the first start of an operator's server migrates it.
    first = await start_server(tmp_path, demo=False)
    old = first.setup_code()
    stop_server(first)
    second = await start_server(tmp_path, demo=False)
    try:
        new = second.setup_code()
        assert new != old
        assert len(rows(second, "SELECT code_hash FROM setup_code")) == 1
        async with client(second) as http:
            page = await http.get("/admin/setup")
            refused = await http.post("/admin/setup", data=setup_form(page, old))
            assert refused.status_code == 401 and rows(second, "SELECT count(*) FROM user") == [(0,)]
            created = await http.post("/admin/setup", data=setup_form(page, new))
            assert created.headers["location"] == "/admin/enrol"
    finally:
        stop_server(second)


async def test_wrong_setup_codes_lock_the_address(empty_server: Server) -> None:
    async with client(empty_server) as http:
        page = await http.get("/admin/setup")
        for guess in ("AAAA-AAAA-A2", "AAAA-AAAA-A3", "AAAA-AAAA-A4", "AAAA-AAAA-A5", "AAAA-AAAA-A6"):
            wrong = await http.post("/admin/setup", data=setup_form(page, guess))
            assert wrong.status_code == 401
        right = await http.post("/admin/setup", data=setup_form(page, empty_server.setup_code()))
        assert right.status_code == 429
        assert "Too many failed attempts" in right.text and "Try again in 15 minutes" in right.text
        assert 'value="first@example.com"' in right.text
    assert rows(empty_server, "SELECT count(*) FROM user") == [(0,)]
    assert rows(empty_server, "SELECT count(*) FROM setup_code") == [(1,)]  # not used up by the refused try


async def test_createadmin_needs_no_code_and_ends_the_setup_code(empty_server: Server) -> None:
    assert rows(empty_server, "SELECT count(*) FROM setup_code") == [(1,)]
    empty_server.create_admin("console@example.com")
    assert rows(empty_server, "SELECT count(*) FROM setup_code") == [(0,)]
    async with client(empty_server) as http:
        assert (await http.get("/admin/setup")).status_code == 404


async def test_session_cookie_is_new_at_login_http_only_lax_and_ends_at_logout(server: Server) -> None:
    admin = server.create_admin("cookies@example.com")
    async with client(server) as http:
        page = await http.get("/admin/login")
        first = await http.post("/admin/login", data={"email": admin.email, "password": PASSWORD,
                                                      "csrf_token": csrf_of(page.text)})
        half_session = http.cookies.get("pw_session")
        code_page = await http.get("/admin/login/code")
        assert (await http.get("/admin/pipelines")).status_code == 303  # the password alone is not enough
        done = await http.post("/admin/login/code", data={"code": admin.code(), "csrf_token": csrf_of(code_page.text)})
        assert done.status_code == 303 and done.headers["location"] == "/admin"
        cookie = done.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/admin" in cookie
        assert "Secure" not in cookie  # plain HTTP here; over HTTPS the cookie is Secure
        assert "pw_session" in first.headers["set-cookie"]
        full_session = http.cookies.get("pw_session")
        assert full_session and full_session != half_session

        pipelines = await http.get("/admin/pipelines")
        assert pipelines.status_code == 200
        out = await http.post("/admin/logout", data={"csrf_token": csrf_of(pipelines.text)})
        assert out.headers["location"] == "/admin/login"
    async with client(server) as http:
        http.cookies.set("pw_session", full_session, domain="127.0.0.1", path="/admin")
        assert (await http.get("/admin/pipelines")).status_code == 303  # the old session id is dead


async def test_state_changing_requests_need_the_csrf_token(server: Server) -> None:
    admin = server.create_admin("csrf@example.com")
    async with client(server) as http:
        assert (await log_in(http, admin)).status_code == 303
        page = await http.get("/admin/pipelines")
        token = csrf_of(page.text)
        assert (await http.post("/admin/pipelines", data={"name": "No token", "entity_type": "deal"})).status_code == 403
        wrong = await http.post("/admin/pipelines", data={"name": "Wrong", "entity_type": "deal"},
                                headers={"X-CSRF-Token": "forged"})
        assert wrong.status_code == 403
        by_header = await http.post("/admin/pipelines", data={"name": "By header", "entity_type": "deal"},
                                    headers={"X-CSRF-Token": token, "HX-Request": "true"})
        assert by_header.status_code == 200 and by_header.headers["HX-Redirect"].startswith("/admin/pipelines")
        by_field = await http.post("/admin/pipelines", data={"name": "By field", "entity_type": "lead", "csrf_token": token})
        assert by_field.status_code == 303
        listed = (await http.get("/admin/pipelines")).text
        assert "By header" in listed and "By field" in listed and "No token" not in listed and "Wrong" not in listed


async def test_a_totp_code_is_accepted_once(server: Server) -> None:
    admin = server.create_admin("replay@example.com")
    code = admin.code()
    for attempt in ("first", "replay"):
        async with client(server) as http:
            page = await http.get("/admin/login")
            await http.post("/admin/login", data={"email": admin.email, "password": PASSWORD,
                                                  "csrf_token": csrf_of(page.text)})
            code_page = await http.get("/admin/login/code")
            answer = await http.post("/admin/login/code", data={"code": code, "csrf_token": csrf_of(code_page.text)})
            if attempt == "first":
                assert answer.status_code == 303
            else:
                assert answer.status_code == 401 and "Codes work once" in answer.text


async def test_five_failures_lock_the_account_and_the_address_with_the_wait_shown(empty_server: Server) -> None:
    admin = empty_server.create_admin("locked@example.com")
    async with client(empty_server) as http:
        page = await http.get("/admin/login")
        token = csrf_of(page.text)
        for _ in range(5):
            wrong = await http.post("/admin/login", data={"email": admin.email, "password": "wrong password!",
                                                          "csrf_token": token})
            assert wrong.status_code == 401 and "Wrong email or password" in wrong.text
        right = await http.post("/admin/login", data={"email": admin.email, "password": PASSWORD, "csrf_token": token})
        assert right.status_code == 429
        assert "Too many failed attempts" in right.text and "Try again in 15 minutes" in right.text
        other = await http.post("/admin/login", data={"email": "someone@example.com", "password": "x" * 12,
                                                      "csrf_token": token})
        assert other.status_code == 429  # the address is locked too


async def test_only_admins_reach_configuration_pages(server: Server) -> None:
    admin = server.create_admin("boss@example.com")
    async with client(server) as http:
        await log_in(http, admin)
        users = await http.get("/admin/users")
        form = {"email": "emp@example.com", "name": "Emma Employee", "role": "employee", "timezone": "UTC",
                "days": ["0", "1"], "start": "09:00", "end": "17:00", "password": PASSWORD,
                "csrf_token": csrf_of(users.text)}
        created = await http.post("/admin/users", data=form)
        assert created.status_code == 303
        bad = await http.post("/admin/users", data={**form, "email": "not-an-email"})
        assert bad.status_code == 422 and "enter an email address" in bad.text
    async with client(server) as http:
        page = await http.get("/admin/login")
        first = await http.post("/admin/login", data={"email": "emp@example.com", "password": PASSWORD,
                                                      "csrf_token": csrf_of(page.text)})
        assert first.headers["location"] == "/admin/enrol"  # enrols TOTP at the first login
        enrol = await http.get("/admin/enrol")
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', enrol.text).group(1)
        done = await http.post("/admin/enrol", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_of(enrol.text)})
        assert done.status_code == 200
        assert (await http.get("/admin/pipelines")).status_code == 403
        assert (await http.get("/admin/users")).status_code == 403
        assert (await http.get("/admin/deals")).status_code == 200
