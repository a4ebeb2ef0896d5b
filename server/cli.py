"""The `pipewright` command: serve, worker, scheduler, mailin, migrate."""

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def _redacted(url: str) -> str:
    """A URL fit for logs: the password replaced."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app
    from server.config import reload

    if args.database_url:
        os.environ["PIPEWRIGHT_DATABASE_URL"] = args.database_url
    for name, value in (("PIPEWRIGHT_HOST", args.host), ("PIPEWRIGHT_PORT", args.port)):
        if value:
            os.environ[name] = str(value)
    config = reload()
    host = args.host or config.host
    port = args.port or config.port
    mode = "embedded worker" if config.embedded_broker else f"broker {_redacted(config.broker_url)}"
    print(f"pipewright: {_redacted(config.database_url)}, {mode}, on http://{host}:{port}/graphql", flush=True)
    print(f"pipewright: {_channels()}", flush=True)
    from server import database

    # In a child process: the migration machinery's memory (~45 MiB for a fresh database) leaves with it; the
    # lifespan's own migrate then finds nothing to do in one query.
    try:
        asyncio.run(database.migrate_in_child(config.database_url))
    except database.MigrationFailed as exc:
        sys.exit(f"pipewright serve: {exc}")
    # Proxy headers are the app's business (server/http.py, PIPEWRIGHT_TRUSTED_PROXIES): uvicorn's own
    # default would believe X-Forwarded-For from 127.0.0.1 whatever the setting says.
    uvicorn.run(create_app(demo=not args.no_demo), host=host, port=port, log_level=args.log_level,
                proxy_headers=False, log_config=_log_config(), timeout_graceful_shutdown=config.shutdown_grace_s,
                ws_max_size=config.max_body_bytes)  # a websocket message gets the request body's limit
    return 0


def _channels() -> str:
    from server.channels.delivery import describe_transports

    try:
        return describe_transports()
    except ValueError as exc:
        sys.exit(f"pipewright: {exc}")


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, with calendar feed secrets redacted from the access log."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": "server.http.RedactSecrets"}
    config["handlers"]["access"]["filters"] = ["redact_secrets"]
    return config


def _migrate(args: argparse.Namespace) -> int:
    from server import database

    asyncio.run(database.migrate())
    print("migrations applied")
    return 0


def _token(args: argparse.Namespace) -> int:
    """Print a new API token for a user; only the token goes to stdout (for scripts)."""
    from server import database
    from server.errors import ValidationFailed
    from server.services.tokens import issue_for_email

    async def main() -> str:
        await database.migrate()
        await database.connect()
        try:
            return await issue_for_email(args.email, name=args.name, create_role=args.create)
        finally:
            await database.disconnect()

    try:
        secret = asyncio.run(main())
    except ValidationFailed as exc:
        sys.exit(f"pipewright token: {exc}")
    print(f"API token for {args.email} (shown once; send it as 'Authorization: Bearer <token>'):", file=sys.stderr)
    print(secret, flush=True)
    return 0


def _createadmin(args: argparse.Namespace) -> int:
    """An admin who can log in to /admin: password, TOTP secret and recovery codes printed once."""
    import getpass

    from server import database
    from server.errors import ValidationFailed
    from server.services import auth

    email = args.email or input("Email: ").strip()
    name = args.name or input("Name: ").strip()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password (at least 10 characters): ")
        if getpass.getpass("Password again: ") != password:
            sys.exit("pipewright createadmin: the passwords differ")

    async def main() -> tuple[str, str, list[str]]:
        await database.migrate()
        await database.connect()
        try:
            user = await auth.make_admin(email=email, name=name, password=password)
            codes = await auth.activate_without_code(user)
            return user.totp_secret or "", auth.provisioning_uri(user), codes
        finally:
            await database.disconnect()

    try:
        secret, uri, codes = asyncio.run(main())
    except ValidationFailed as exc:
        sys.exit(f"pipewright createadmin: {exc}")
    print(f"admin {email} is ready. Add this to your authenticator app (shown once):")
    print(f"  TOTP secret: {secret}")
    print(f"  otpauth URI: {uri}")
    print("Recovery codes (each works once; keep them safe):")
    for code in codes:
        print(f"  {code}")
    print("Log in at /admin with the email, the password and a code from the app.", flush=True)
    return 0


async def _scheduler_main() -> None:
    from server import database, live
    from server.workers import scheduler

    await database.connect()
    live.install_publisher()  # claims and lost-run failures are events the web processes' hubs want
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await scheduler.run_forever(stop)
    finally:
        await database.disconnect()


def _scheduler(args: argparse.Namespace) -> int:
    _require_broker()
    asyncio.run(_scheduler_main())
    return 0


async def _mailin_main(listen: str) -> None:
    from server import database, live, mailin
    from server.config import settings

    await database.connect()
    live.install_publisher()  # a reply on a deal is an event the web processes' subscribers want
    if not settings().embedded_broker:
        from server.workers.scheduler import install_dispatcher

        install_dispatcher()  # the rules after an ended Wait go to the workers at once, not at the next poll
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        receiver = await mailin.start(listen)
        print(f"pipewright: inbound mail (SMTP) on {receiver.address}, {_redacted(settings().database_url)}",
              flush=True)
        try:
            await stop.wait()
        finally:
            await receiver.stop()
    finally:
        await database.disconnect()


def _mailin(args: argparse.Namespace) -> int:
    """The inbound SMTP receiver alone, on a migrated database (behind the MTA, or on port 25)."""
    from server.config import reload

    listen = args.listen or reload().mailin or "127.0.0.1:2525"
    try:
        asyncio.run(_mailin_main(listen))
    except (OSError, ValueError) as exc:
        sys.exit(f"pipewright mailin: {exc}")
    return 0


def _require_broker() -> None:
    if not os.environ.get("PIPEWRIGHT_BROKER_URL"):
        sys.exit("set PIPEWRIGHT_BROKER_URL=redis://… (separate workers need a shared broker; "
                 "`pipewright serve` alone runs an embedded worker)")


def _worker(args: argparse.Namespace) -> int:
    """Dramatiq worker processes, plus the scheduler in this process unless --no-scheduler."""
    print(f"pipewright worker: {_channels()}", flush=True)
    _require_broker()
    from server.config import settings

    threads = args.threads or settings().worker_threads
    command = [sys.executable, "-m", "dramatiq", "server.workers.actors",
               "--processes", str(args.processes), "--threads", str(threads)]
    # The workers' pool is sized from their thread count (PIPEWRIGHT_DB_POOL_MAX_CONNECTIONS' default).
    env = {**os.environ, "PIPEWRIGHT_WORKER_THREADS": str(threads),
           "dramatiq_worker_timeout": os.environ.get("dramatiq_worker_timeout", "100")}
    workers = subprocess.Popen(command, env=env)
    if args.no_scheduler:
        return workers.wait()

    async def main() -> None:
        scheduler = asyncio.create_task(_scheduler_main())
        while workers.poll() is None and not scheduler.done():
            await asyncio.sleep(0.2)
        if not scheduler.done():
            scheduler.cancel()

    def forward(signum: int, frame: object) -> None:
        if workers.poll() is None:
            workers.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    try:
        asyncio.run(main())
    finally:
        if workers.poll() is None:
            workers.terminate()
        workers.wait(timeout=30)
    return workers.returncode or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pipewright", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server (embedded worker unless PIPEWRIGHT_BROKER_URL)")
    serve.add_argument("--host", default=None, help="default 127.0.0.1 (PIPEWRIGHT_HOST)")
    serve.add_argument("--port", type=int, default=None, help="default 8000 (PIPEWRIGHT_PORT)")
    serve.add_argument("--database-url", default=None, help="default sqlite://pipewright.db (PIPEWRIGHT_DATABASE_URL)")
    serve.add_argument("--no-demo", action="store_true", help="do not load demo data into an empty database")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=_serve)

    worker = commands.add_parser("worker", help="run dramatiq worker processes and the scheduler")
    worker.add_argument("--processes", type=int, default=2)
    worker.add_argument("--threads", type=int, default=None,
                        help="runs at once per process (PIPEWRIGHT_WORKER_THREADS; the pool holds two connections per thread)")
    worker.add_argument("--no-scheduler", action="store_true")
    worker.set_defaults(func=_worker)

    commands.add_parser("scheduler", help="run only the scheduler").set_defaults(func=_scheduler)
    mailin = commands.add_parser("mailin", help="run the inbound SMTP receiver (replies, bounces, complaints)")
    mailin.add_argument("--listen", default=None, metavar="HOST:PORT",
                        help="default PIPEWRIGHT_MAILIN, else 127.0.0.1:2525 (0.0.0.0:25 to take mail directly)")
    mailin.set_defaults(func=_mailin)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(func=_migrate)

    token = commands.add_parser("token", help="create an API token for a user and print it")
    token.add_argument("--email", required=True, help="the user the token acts as")
    token.add_argument("--name", default="console", help="what the token is for (shown in the token list)")
    token.add_argument("--create", metavar="ROLE", default=None,
                       help="create the user with this role (admin, manager, employee) if missing")
    token.set_defaults(func=_token)

    createadmin = commands.add_parser("createadmin", help="create an admin for /admin (password + TOTP)")
    createadmin.add_argument("--email", default=None, help="prompted when missing; an existing user becomes admin")
    createadmin.add_argument("--name", default=None, help="prompted when missing")
    createadmin.add_argument("--password-stdin", action="store_true", help="read the password from stdin (scripts)")
    createadmin.set_defaults(func=_createadmin)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
