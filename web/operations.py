"""The operations page (admins): the run queue and throughput in words, the failing rules, the stuck runs and the
processes' heartbeats; and the run log filtered by status and rule, which its figures link to."""

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.errors import ValidationFailed
from server.services import operations, runs
from web.guard import page
from web.templating import error_map, render

PAGE = 50


def _int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name) or ""
    return int(value) if value.isdigit() else None


@page(admin=True)
async def operations_page(request: Request) -> Response:
    actor = request.state.actor
    figures = await operations.figures(actor=actor)
    return render(request, "operations.html", {
        "f": figures,
        "failing_day": await operations.failures_by_rule(within=timedelta(days=1), actor=actor),
        "stuck": await operations.stuck_runs(actor=actor),
        "verdict": await operations.health(actor=actor),
    })


@page(admin=True)
async def run_log(request: Request) -> Response:
    """Rule runs, newest first, by status and rule (the operations page's links land here)."""
    status = request.query_params.get("status") or ""
    rule_id = _int(request, "rule_id")
    errors: dict[str, str] = {}
    shown = None
    try:
        shown = await runs.list_rule_runs(statuses=[status] if status else None, rule_id=rule_id, first=PAGE,
                                          after=_int(request, "after"), actor=request.state.actor)
    except ValidationFailed as exc:
        errors = error_map(exc)
    return render(request, "run_log.html", {"page": shown, "status": status, "rule_id": rule_id, "errors": errors,
                                            "statuses": list(runs.STATUSES)},
                  status_code=422 if errors else 200)


routes = [
    Route("/operations", operations_page, methods=["GET"]),
    Route("/operations/runs", run_log, methods=["GET"]),
]
