"""HTTP hardening a browser or an operator would notice: security headers, no caching of secrets, the admin's
body limit before and after login, X-Forwarded-For only from trusted proxies, no calendar secret in logs."""

import asyncio
import re
import secrets
import shutil
from pathlib import Path

import httpx
import pyotp
import pytest
from argon2 import PasswordHasher

from server import config
from server.http import ANONYMOUS_BODY_BYTES, client_address, trusted_networks
from server.models import User
from server.services import auth
from tests.support.live_server import running_app
from tests.support.serve import serve, stop, wait_ready
from tests.support.servers import free_port

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:1000]
    return found.group(1)


async def make_user(email: str = "ada@example.com", *, enrolled: bool = True) -> User:
    return await User.create(name="Ada", email=email, role="admin", password_hash=PasswordHasher().hash(PASSWORD),
                             totp_secret=pyotp.random_base32(), totp_confirmed=enrolled)


async def log_in(http: httpx.AsyncClient, user: User) -> None:
    page = await http.get("/admin/login")
    first = await http.post("/admin/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_of(page)})
    assert first.status_code == 303
    code_page = await http.get("/admin/login/code")
    done = await http.post("/admin/login/code", data={"code": pyotp.TOTP(user.totp_secret or "").now(),
                                                      "csrf_token": csrf_of(code_page)})
    assert done.status_code == 303, done.text


async def test_admin_pages_forbid_framing_inline_script_and_sniffing(served: str) -> None:
    await make_user()
    async with httpx.AsyncClient(base_url=f"http://{served}") as http:
        page = await http.get("/admin/login")
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "same-origin"
        # every script of the page is a file of our own origin: nothing the CSP would block
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
        assert scripts and all('src="/admin/static/' in attrs and not body.strip() for attrs, body in scripts)
        static = await http.get("/admin/static/admin.js")
        assert static.headers["X-Content-Type-Options"] == "nosniff"

        for answer in (await http.get("/health"), await http.get("/calendar/nothing-here.ics"),
                       await http.post("/graphql", json={"query": "{ __typename }"})):
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
            assert answer.headers["X-Frame-Options"] == "DENY"
            assert answer.headers["Referrer-Policy"] == "no-referrer"
            assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


async def test_the_enrol_page_with_the_totp_secret_is_never_cached(served: str) -> None:
    await make_user("boss@example.com")  # an admin exists: setup is done
    user = await make_user(enrolled=False)
    async with httpx.AsyncClient(base_url=f"http://{served}") as http:
        page = await http.get("/admin/login")
        first = await http.post("/admin/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_of(page)})
        assert first.headers["location"] == "/admin/enrol"
        enrol = await http.get("/admin/enrol")
        assert 'id="totp-secret"' in enrol.text
        assert enrol.headers["Cache-Control"] == "no-store"
        wrong = await http.post("/admin/enrol", data={"code": "000000", "csrf_token": csrf_of(enrol)})
        assert wrong.status_code == 422 and wrong.headers["Cache-Control"] == "no-store"
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', enrol.text).group(1)
        done = await http.post("/admin/enrol", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_of(enrol)})
        assert "recovery" in done.text.lower() and done.headers["Cache-Control"] == "no-store"


async def raw_post(address: str, path: str, head: dict[str, str], chunks: list[bytes], *,
                   chunked: bool = False) -> str:
    """A POST written by hand, so a body can claim 600 MB or stream without end; returns the status line."""
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        lines = [f"POST {path} HTTP/1.1", f"Host: {address}", "Content-Type: application/x-www-form-urlencoded",
                 *(f"{k}: {v}" for k, v in head.items())]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())

        async def feed() -> None:
            for chunk in chunks:
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
                await writer.drain()

        sender = asyncio.create_task(feed())
        status = await asyncio.wait_for(reader.readline(), timeout=20)
        sender.cancel()
        return status.decode().strip()
    finally:
        writer.close()


async def test_anonymous_admin_posts_over_64_kib_are_refused_without_being_read(served: str) -> None:
    await make_user()
    async with httpx.AsyncClient(base_url=f"http://{served}") as http:
        page = await http.get("/admin/login")
        cookie = f"pw_form={http.cookies['pw_form']}"
        token = csrf_of(page)
        big = await http.post("/admin/login", data={"email": "a@example.com", "password": "x" * (ANONYMOUS_BODY_BYTES + 1),
                                                     "csrf_token": token})
        assert big.status_code == 413 and "Request too large" in big.text and "64 KiB" in big.text
        assert "Nothing was saved" in big.text
    # 600 MB declared, a kilobyte sent: refused at once, not waited for
    status = await raw_post(served, "/admin/login", {"Content-Length": "600000000", "Cookie": cookie},
                            [f"csrf_token={token}&email=a".encode() + b"x" * 1024])
    assert status.startswith("HTTP/1.1 413"), status
    # no length declared, chunks without end: refused once 64 KiB have arrived
    status = await raw_post(served, "/admin/setup", {"Cookie": cookie},
                            [f"csrf_token={token}&email=".encode()] + [b"x" * 16384] * 10_000, chunked=True)
    assert status.startswith("HTTP/1.1 413"), status


async def test_logged_in_admin_forms_may_be_larger_up_to_the_configured_maximum(
        db: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPEWRIGHT_MAX_BODY_BYTES", "300000")
    config.reload()
    user = await make_user()
    async with running_app() as address, httpx.AsyncClient(base_url=f"http://{address}") as http:
        await log_in(http, user)
        token = csrf_of(await http.get("/admin/pipelines"))
        fits = await http.post("/admin/pipelines", data={"name": "x" * 200_000, "entity_type": "deal",
                                                         "csrf_token": token})
        # Read and validated (the name is refused for its length, beside the field), not refused unread.
        assert fits.status_code == 422 and "Request too large" not in fits.text, fits.text[:500]
        too_big = await http.post("/admin/pipelines", data={"name": "x" * 400_000, "entity_type": "deal",
                                                            "csrf_token": token})
        assert too_big.status_code == 413 and "300,000 bytes" in too_big.text


def test_forwarded_for_counts_only_from_trusted_proxies() -> None:
    proxies = trusted_networks(["10.0.0.0/8", "192.0.2.1"])
    assert client_address("198.51.100.9", ["6.6.6.6"], proxies) == "198.51.100.9"  # not a proxy: its own address
    assert client_address("10.1.2.3", ["6.6.6.6, 203.0.113.5"], proxies) == "203.0.113.5"
    assert client_address("10.1.2.3", ["6.6.6.6, 203.0.113.5, 192.0.2.1"], proxies) == "203.0.113.5"
    assert client_address("10.1.2.3", ["6.6.6.6", "203.0.113.5, 10.9.9.9"], proxies) == "203.0.113.5"
    assert client_address("10.1.2.3", [], proxies) == "10.1.2.3"
    assert client_address("10.1.2.3", ["6.6.6.6"], []) == "10.1.2.3"
    with pytest.raises(ValueError, match="PIPEWRIGHT_TRUSTED_PROXIES: 'proxy.example' is not an IP address"):
        trusted_networks(["proxy.example"])


async def test_by_default_forwarded_for_does_not_escape_the_address_lockout(served: str) -> None:
    await make_user()
    async with httpx.AsyncClient(base_url=f"http://{served}") as http:
        token = csrf_of(await http.get("/admin/login"))
        for n in range(auth.MAX_FAILURES):
            wrong = await http.post("/admin/login", data={"email": f"guess{n}@example.com", "password": "x" * 12,
                                                          "csrf_token": token},
                                    headers={"X-Forwarded-For": f"203.0.113.{n}"})
            assert wrong.status_code == 401
        spoofed = await http.post("/admin/login", data={"email": "ada@example.com", "password": PASSWORD,
                                                        "csrf_token": token}, headers={"X-Forwarded-For": "198.51.100.1"})
        assert spoofed.status_code == 429  # the address is the peer's: X-Forwarded-For from no trusted proxy


async def test_the_access_log_does_not_show_calendar_secrets(tmp_path: Path, sqlite_template: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    shutil.copyfile(sqlite_template, tmp_path / "log.db")
    process = serve(f"sqlite://{tmp_path / 'log.db'}", port, log)
    try:
        await wait_ready(port, process)
        secret = secrets.token_urlsafe(24)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get(f"/calendar/{secret}.ics")).status_code == 404
            assert (await http.get("/health")).status_code == 200
    finally:
        stop(process)
    text = log.read_text()
    assert '"GET /health HTTP/1.1" 200' in text  # the access log is on
    assert secret not in text
    assert '"GET /calendar/***.ics HTTP/1.1" 404' in text
