"""The dramatiq broker, chosen by PIPEWRIGHT_BROKER_URL: Redis in production, in-memory when embedded.

It must be set before any actor module is imported (else dramatiq creates its own default).
In production each worker process opens its own ORM connections on dramatiq's event-loop
thread (forked processes must not share them). Embedded, actors run on the web server's loop.
"""

import asyncio
import logging
import time
from typing import Any

import dramatiq
from dramatiq.asyncio import EventLoopThread, get_event_loop_thread, set_event_loop_thread
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO, Middleware

from server.config import settings
from server.live import install_publisher

log = logging.getLogger(__name__)


class _RunningLoop:
    """Stands in for dramatiq's event-loop thread: submits actor coroutines to a loop we already run."""

    LOOP_WAIT_S = 30.0

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.interrupt_check_ival = 0.1
        self.logger = log

    def run_coroutine(self, coro: Any) -> Any:
        # A loop driven by run_until_complete (a test runner's) stops for a moment between two calls; dramatiq's
        # own version would raise and drop the message there. Wait for the loop to run again; give up (closing
        # the coroutine, so it is not reported as never awaited) only if it is closed or stays stopped.
        deadline = time.monotonic() + self.LOOP_WAIT_S
        while not self.loop.is_running():
            if self.loop.is_closed() or time.monotonic() > deadline:
                coro.close()
                raise RuntimeError("the embedded worker's event loop is not running")
            time.sleep(0.01)
        return EventLoopThread.run_coroutine(self, coro)  # type: ignore[arg-type]  # duck-typed stand-in


class EmbeddedLoop(Middleware):
    """Runs async actors on the web server's loop (see docs/architecture.md: embedded mode)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        if self.loop is None:
            raise RuntimeError("bind the embedded worker to a loop before starting it")
        set_event_loop_thread(_RunningLoop(self.loop))  # type: ignore[arg-type]

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        set_event_loop_thread(None)


class DaemonAsyncIO(AsyncIO):
    """AsyncIO with a daemon loop thread, so a worker process exits even on a second SIGTERM."""

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        thread = EventLoopThread(self.logger)
        thread.daemon = True
        thread.start(timeout=5.0)
        set_event_loop_thread(thread)


class Database(Middleware):
    """Opens the worker process's ORM connections on its loop thread, and closes them at shutdown."""

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        from server.database import connect

        thread = get_event_loop_thread()
        if thread is None:
            raise RuntimeError("the Database middleware must come after AsyncIO")
        thread.run_coroutine(connect(settings().database_url))
        install_publisher()  # the runs' events reach the web processes' hubs over Redis

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        from server.database import disconnect

        thread = get_event_loop_thread()
        if thread is not None:
            thread.run_coroutine(disconnect())


def _make_broker() -> dramatiq.Broker:
    config = settings()
    if config.broker_url:
        import redis
        from dramatiq.brokers.redis import RedisBroker

        # Built here rather than from `url=`, so its timeouts are our settings, not whatever redis-py defaults to.
        client = redis.Redis.from_url(config.broker_url, **config.redis_options)
        # dramatiq 2.x leaves RedisBroker.__init__ unannotated; the broker it builds is typed.
        redis_broker = RedisBroker(client=client)  # type: ignore[no-untyped-call]
        redis_broker.add_middleware(DaemonAsyncIO())
        redis_broker.add_middleware(Database())
        return redis_broker
    stub = StubBroker()
    stub.add_middleware(EmbeddedLoop())
    return stub


broker = _make_broker()
dramatiq.set_broker(broker)


def embedded_loop() -> EmbeddedLoop:
    for middleware in broker.middleware:
        if isinstance(middleware, EmbeddedLoop):
            return middleware
    raise RuntimeError("the broker is not embedded (PIPEWRIGHT_BROKER_URL is set)")
