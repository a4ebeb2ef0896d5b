"""Composition root: the Starlette app, its routes and lifespan. The only module that knows every face."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute
from tortoise.contrib.starlette import RegisterTortoise

from server import admin_live, clock, database, documents_routes, live, operations_routes, tracking_routes
from server.calendar_feed import calendar_feed
from server.config import settings
from server.hooks_routes import trigger_webhook, webhook
from server.http import AdminBodyLimit, AdmissionControl, SecurityHeaders, TrustedProxies, trusted_networks

log = logging.getLogger(__name__)


def create_app(*, runtime: bool = True, demo: bool = False) -> Starlette:
    """The app. With `runtime`, its lifespan migrates, connects, seeds demo data and runs the workers."""
    from server.schema import ide
    from server.schema.schema import production_schema, schema
    from server.schema.view import PipewrightGraphQL
    from web.routes import admin
    from web.routes import root as admin_root

    development = settings().development
    graphql = PipewrightGraphQL(schema if development else production_schema, development=development)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not runtime:
            yield
            return
        config = settings()
        await database.migrate(config.database_url)
        async with RegisterTortoise(app, config=database.tortoise_config(config.database_url)):
            live.install_publisher()  # from the first event on (demo data), as every process that writes events
            if demo:
                from server.services.demo import load_demo_if_empty

                if await load_demo_if_empty():
                    from server.services.tokens import issue_for_email

                    secret = await issue_for_email("anna@pipewright.example", name="demo")
                    log.info("loaded demo data")
                    print(f"pipewright: demo API token for Anna Schmidt (admin), shown once: {secret}\n"
                          f"  curl -H 'Authorization: Bearer {secret}' -H 'Content-Type: application/json' "
                          "-d '{\"query\": \"{ me { name role } }\"}' "
                          f"http://{settings().host}:{settings().port}/graphql", flush=True)
            from server.services.auth import issue_setup_code

            setup_code = await issue_setup_code()
            if setup_code:
                print(f"pipewright: first-admin setup at http://{settings().host}:{settings().port}/admin/setup, "
                      f"setup code {setup_code} (works once; each start prints a new one until an admin exists)", flush=True)
            worker = None
            if config.embedded_broker:
                from server.workers.embedded import EmbeddedWorker

                worker = EmbeddedWorker()
                await worker.start()
            else:
                from server.workers.scheduler import install_dispatcher

                install_dispatcher()
            # Due times written here are on the database's clock (embedded: the scheduler keeps it in step).
            clock_stop = asyncio.Event()
            clock_task = None if config.embedded_broker else asyncio.create_task(clock.keep_in_step(clock_stop))
            await live.hub.start()
            receiver = None
            try:
                if config.mailin:
                    from server import mailin

                    receiver = await mailin.start(config.mailin)
                    print(f"pipewright: inbound mail (SMTP) on {receiver.address}", flush=True)
                yield
            finally:
                if receiver is not None:
                    await receiver.stop()
                await live.hub.stop()
                clock_stop.set()
                if clock_task is not None:
                    await clock_task
                if worker is not None:
                    await worker.stop()

    routes = [
        *operations_routes.routes(),  # /health, /metrics
        Route("/calendar/{token}.ics", calendar_feed, methods=["GET"]),
        Route("/hooks/triggers/{token}", trigger_webhook, methods=["POST"]),  # before the channels' pattern
        Route("/hooks/{channel}/{token}", webhook, methods=["POST"]),
        *tracking_routes.routes(),
        *documents_routes.routes(),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        *([Mount(ide.ASSETS_PATH, ide.assets())] if development else []),  # GraphiQL's own files
        Route("/", admin_root),
        Route("/admin/live/{plural:str}/{element_id:int}", admin_live.timeline_stream),  # before the admin's mount
        admin(),
    ]
    config = settings()
    from server.rules.queue import due_backlog

    middleware = [
        Middleware(TrustedProxies, trusted=trusted_networks(config.trusted_proxies)),
        Middleware(SecurityHeaders, development=development),
        Middleware(AdmissionControl, max_inflight=config.max_inflight_requests, wait_ms=config.admission_wait_ms,
                   retry_after_s=config.retry_after_s, backlog=due_backlog if config.embedded_broker else None,
                   max_backlog=config.max_run_backlog, max_body=config.max_body_bytes),
        Middleware(AdminBodyLimit, logged_in_bytes=config.max_body_bytes),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
