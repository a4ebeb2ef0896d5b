"""/metrics (Prometheus text format) and /health: the operations figures for scrapers and load balancers.

/metrics wants a bearer token: an admin's API token, or PIPEWRIGHT_METRICS_TOKEN for a scraper. Its figures are
computed at most once every PIPEWRIGHT_METRICS_CACHE_S per process (one computation at a time), so neither a
refused request nor a burst of scrapes costs more than a token check.
"""

import asyncio
import hmac
import logging
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from tortoise.connection import get_connection

from server import live
from server.actor import SYSTEM
from server.config import settings
from server.errors import Forbidden
from server.services import operations, tokens
from server.services.access import Acting, require_admin

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Cached:
    """The latest figures of this process and when they were computed."""

    def __init__(self) -> None:
        self.figures: operations.Figures | None = None
        self.at = 0.0
        self.lock = asyncio.Lock()

    async def get(self) -> operations.Figures:
        max_age_s = settings().metrics_cache_s
        if self.figures is None or time.monotonic() - self.at >= max_age_s:
            async with self.lock:  # a burst of scrapes computes them once
                if self.figures is None or time.monotonic() - self.at >= max_age_s:
                    self.figures = await operations.figures(actor=SYSTEM)
                    self.at = time.monotonic()
        return self.figures


cached = _Cached()


def _gauge(name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"pipewright_{name}", documentation, labels=labels)


class _Figures(Collector):
    def __init__(self, figures: operations.Figures) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        f = self.figures
        runs = _gauge("rule_runs", "Unfinished rule runs by status.", ["status"])
        for status, n in f.active.items():
            runs.add_metric([status], n)
        yield runs
        finished = _gauge("rule_runs_finished_last_hour", "Rule runs finished in the last hour, by final status.",
                          ["status"])
        for status, n in f.finished_last_hour.items():
            finished.add_metric([status], n)
        yield finished
        yield _single("rule_runs_per_second", "Rule runs finished per second over the last minute (every process).",
                      f.runs_per_second)
        yield _single("rule_runs_due", "Rule runs due now and not started.", f.due)
        yield _single("rule_runs_overdue", f"Rule runs due more than PIPEWRIGHT_OVERDUE_AFTER_S "
                      f"({f.overdue_after_s} s) ago and not started.", f.overdue)
        yield _single("rule_runs_oldest_pending_seconds", "How long the oldest due, unstarted rule run has been due.",
                      f.oldest_pending_s)
        yield _single("scheduler_lag_seconds", "How long the oldest due rule run has waited for the scheduler to claim it.",
                      f.scheduler_lag_s)
        failures = _gauge("rule_failures_last_hour", "Failed rule runs in the last hour, per rule.", ["rule_id", "rule"])
        for rule in f.failures_last_hour:
            failures.add_metric([str(rule.rule_id), rule.title], rule.failures)
        yield failures
        outbox = _gauge("outbox_messages", "Outbound messages waiting for delivery, by status.", ["status"])
        for status, n in f.outbox.items():
            outbox.add_metric([status], n)
        yield outbox
        pdf = _gauge("document_pdfs_backlog", "Document PDFs not made yet, by status.", ["status"])
        for status, n in f.pdf_queue.items():
            pdf.add_metric([status], n)
        yield pdf
        beats = _gauge("heartbeat_age_seconds", "Seconds since each worker process or scheduler last beat.",
                       ["role", "process"])
        for beat in f.beats:
            beats.add_metric([beat.role, beat.name], beat.age_s)
        yield beats


def _single(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"pipewright_{name}", documentation, value=value)


class _ThisProcess(Collector):
    """What only this web process knows: its live subscribers."""

    def collect(self) -> Iterator[Metric]:
        yield _single("live_subscriptions", "Live GraphQL subscriptions open in this web process.",
                      len(live.hub.subscriptions))
        yield _single("live_viewers", "Users with an open GraphQL websocket in this web process.", len(live.hub.viewers))


def render(figures: operations.Figures) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Figures(figures))
    registry.register(_ThisProcess())
    return generate_latest(registry)


def _bearer(request: Request) -> str | None:
    scheme, _, secret = (request.headers.get("authorization") or "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" and secret.strip() else None


async def _scraper(request: Request) -> Acting | None:
    """Who scrapes: the system for the configured scrape token, else the API token's user; None if neither."""
    secret = _bearer(request)
    if secret is None:
        return None
    scrape_token = settings().metrics_token
    if scrape_token and hmac.compare_digest(secret.encode(), scrape_token.encode()):
        return SYSTEM
    return await tokens.authenticate(secret)


def _refused(status: int, message: str) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="pipewright metrics"'} if status == 401 else None
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


async def metrics(request: Request) -> Response:
    scraper = await _scraper(request)
    if scraper is None:
        return _refused(401, "send Authorization: Bearer <an admin's API token, or PIPEWRIGHT_METRICS_TOKEN>")
    try:
        require_admin(scraper)
    except Forbidden:
        return _refused(403, "/metrics is for admins' API tokens and PIPEWRIGHT_METRICS_TOKEN")
    return Response(render(await cached.get()), media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})


async def health(request: Request) -> JSONResponse:
    """For load balancers and operators: 503 when the database does not answer, or when runs are overdue and
    the scheduler or the workers have stopped beating (which of them is named)."""
    try:
        await get_connection("default").execute_query("SELECT 1")
    except Exception as exc:  # any failure to reach the database is "unhealthy", not a crash
        log.warning("health check: database unreachable: %s", exc)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    verdict = await operations.health(actor=SYSTEM)
    if verdict.ok:
        return JSONResponse({"status": "ok", "database": "ok"})
    body: dict[str, object] = {"status": "unavailable", "database": "ok"}
    for role, stalled, age in (("scheduler", verdict.scheduler_stalled, verdict.scheduler_beat_s),
                               ("workers", verdict.workers_stalled, verdict.worker_beat_s)):
        if stalled:
            seen = "never beat" if age is None else f"last beat {age:.0f} s ago"
            body[role] = (f"stalled: rule runs are overdue and the {role} {seen} "
                          f"(PIPEWRIGHT_STALL_AFTER_S={verdict.stall_after_s})")
    log.warning("health check: %s", body)
    return JSONResponse(body, status_code=503)


def routes() -> list[Route]:
    return [Route("/health", health), Route("/metrics", metrics)]
