"""The admin as a user meets it: `pipewright serve` as a child process, `createadmin`, the setup code
from the server's console, and a login helper.

TOTP codes are accepted once per 30 s step (and one step either side), so the helper hands out a code
for a step newer than the last one used: two logins per admin and half minute. It never waits for the
clock: a test that needs more logins creates another admin.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyotp

from tests.support.serve import stop, wait_ready
from tests.support.servers import ROOT, free_port

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SETUP_CODE = re.compile(r"^pipewright: first-admin setup at http://\S+/admin/setup, setup code ([A-Z0-9-]+) ", re.M)


@dataclass
class Admin:
    email: str
    secret: str
    recovery_codes: list[str]
    last_step: int = -1
    last_code: str = ""

    def code(self) -> str:
        """A TOTP code not used before: this step or the next (both accepted)."""
        totp = pyotp.TOTP(self.secret)
        current = int(time.time() // totp.interval)
        for step in (current, current + 1):  # not current - 1: it may expire on the way to the server
            if step > self.last_step:
                self.last_step = step
                self.last_code = totp.at(step * totp.interval)
                return self.last_code
        raise AssertionError(f"{self.email} used the codes of this half minute up: log in as another admin "
                             "instead of waiting for the next TOTP step")


@dataclass
class Server:
    port: int
    db_url: str
    process: subprocess.Popen
    workdir: Path
    admins: dict[str, Admin] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "serve.log"

    @property
    def db_path(self) -> Path:
        return Path(self.db_url.removeprefix("sqlite://"))

    def setup_code(self) -> str:
        """The setup code the latest start printed on its console (the log appends across restarts)."""
        found = SETUP_CODE.findall(self.log.read_text())
        assert found, self.log.read_text()[-2000:]
        return found[-1]

    def env(self) -> dict[str, str]:
        env = {**os.environ, "PIPEWRIGHT_DATABASE_URL": self.db_url, "PIPEWRIGHT_POLL_MS": "100"}
        env.pop("PIPEWRIGHT_BROKER_URL", None)
        return env

    def create_admin(self, email: str, name: str = "Test Admin") -> Admin:
        out = subprocess.run(
            [sys.executable, "-m", "server.cli", "createadmin", "--email", email, "--name", name, "--password-stdin"],
            input=PASSWORD + "\n", capture_output=True, text=True, env=self.env(), cwd=ROOT, timeout=60, check=True,
        ).stdout
        secret = re.search(r"TOTP secret: (\S+)", out)
        assert secret, out
        codes = re.findall(r"^  ([a-z2-7]{5}-[a-z2-7]{5})$", out, re.M)
        admin = Admin(email, secret.group(1), codes)
        self.admins[email] = admin
        return admin


async def start_server(workdir: Path, *, demo: bool, template: Path | None = None) -> Server:
    """`pipewright serve` on workdir/admin.db: a copy of the migrated `template` if given, else a new file
    the server migrates itself (as an operator's first start does, and seconds slower)."""
    port = free_port()
    db_url = f"sqlite://{workdir / 'admin.db'}"
    if template is not None:
        shutil.copyfile(template, workdir / "admin.db")
    env = {**os.environ, "PIPEWRIGHT_DATABASE_URL": db_url, "PIPEWRIGHT_POLL_MS": "100"}
    env.pop("PIPEWRIGHT_BROKER_URL", None)
    command = [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--log-level", "warning"]
    if not demo:
        command.append("--no-demo")
    with open(workdir / "serve.log", "ab") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    await wait_ready(port, process)
    return Server(port, db_url, process, workdir)


def stop_server(server: Server) -> None:
    stop(server.process)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:2000]
    return found.group(1)


async def log_in(client: httpx.AsyncClient, admin: Admin, *, password: str = PASSWORD) -> httpx.Response:
    """Both login steps; returns the answer to the code step (303 to /admin when it worked)."""
    page = await client.get("/admin/login")
    first = await client.post("/admin/login", data={"email": admin.email, "password": password,
                                                    "csrf_token": csrf_of(page.text)})
    assert first.status_code == 303, first.text
    code_page = await client.get(first.headers["location"])
    return await client.post("/admin/login/code", data={"code": admin.code(), "csrf_token": csrf_of(code_page.text)})


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


async def new_page(browser, server: Server):  # type: ignore[no-untyped-def]
    context = await browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    return await context.new_page()
