"""A stage's history (revisions, a diff between two, rollback) and a rule's operations: pause and resume,
re-run its failed runs, apply it to the elements already in its stage (admins only; bulk actions count first)."""

from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.errors import ValidationFailed
from server.services import pipelines, reruns, revisions
from server.services import rules as rule_service
from web.guard import page
from web.templating import error_map, redirect, render


def _number(values: QueryParams | FormData, name: str) -> int | None:
    raw = values.get(name)
    return int(raw) if isinstance(raw, str) and raw.isdigit() else None


@page(admin=True)
async def stage_history(request: Request) -> Response:
    stage = await pipelines.load_stage(int(request.path_params["stage_id"]))
    actor = request.state.actor
    history = await revisions.stage_revisions(stage.id, actor=actor)
    older, newer = _number(request.query_params, "from"), _number(request.query_params, "to")
    diff, errors = None, {}
    if older is not None and newer is not None:
        older, newer = min(older, newer), max(older, newer)
        try:
            diff = await revisions.revision_diff(stage.id, older, newer, actor=actor)
        except ValidationFailed as exc:
            errors = error_map(exc)
    elif len(history) >= 2:
        older, newer = history[1].number, history[0].number
    return render(request, "stage_history.html", {
        "stage": stage, "pipeline": stage.pipeline, "history": history, "authors": await revisions.authors(history),
        "older": older, "newer": newer, "diff": diff, "errors": errors,
        "rolled_back": _number(request.query_params, "rolled_back"),
    })


@page(admin=True)
async def stage_rollback(request: Request) -> Response:
    stage = await pipelines.load_stage(int(request.path_params["stage_id"]))
    number = int(request.path_params["number"])
    actor = request.state.actor
    if request.method == "POST":
        try:
            made = await revisions.rollback_stage(stage.id, number, actor=actor)
            return redirect(request, f"/admin/stages/{stage.id}/history?rolled_back={made.number}")
        except ValidationFailed as exc:
            errors = error_map(exc)
    else:
        errors = {}
    target = await revisions.get_revision(stage.id, number, field="to_revision")
    diff = await revisions.revision_diff(stage.id, number, stage.revision, actor=actor) if stage.revision else None
    return render(request, "stage_rollback.html", {"stage": stage, "pipeline": stage.pipeline, "target": target,
                                                   "diff": diff, "errors": errors},
                  status_code=422 if errors else 200)


@page(admin=True)
async def rule_pause(request: Request) -> Response:
    rule_id = int(request.path_params["rule_id"])
    form = await request.form()
    try:
        if form.get("do") == "resume":
            await reruns.resume_rule(rule_id, actor=request.state.actor)
        else:
            await reruns.pause_rule(rule_id, actor=request.state.actor)
    except ValidationFailed:
        pass  # paused (or resumed) meanwhile: the page shows the state it is in now
    return redirect(request, f"/admin/rules/{rule_id}/edit#operations")


def _filter(values: QueryParams | FormData) -> tuple[reruns.FailedFilter, dict[str, str], dict[str, str]]:
    """The re-run filter from the form: error text, and a time range in UTC."""
    errors: dict[str, str] = {}
    raw = {name: str(values.get(name) or "").strip() for name in ("error_contains", "failed_after", "failed_before")}
    moments: dict[str, datetime | None] = {}
    for name in ("failed_after", "failed_before"):
        moments[name] = None
        if raw[name]:
            try:
                moments[name] = datetime.fromisoformat(raw[name]).replace(tzinfo=UTC)
            except ValueError:
                errors[name] = "a date and time, like 2026-12-01T09:30"
    return reruns.FailedFilter(moments["failed_after"], moments["failed_before"], raw["error_contains"] or None), \
        raw, errors


@page(admin=True)
async def rule_bulk(request: Request) -> Response:
    """Re-run failed runs (`kind` rerun) or backfill: the count first (GET), scheduled on a confirmed POST."""
    rule = await rule_service.get_rule(int(request.path_params["rule_id"]))
    kind = "backfill" if request.url.path.endswith("/backfill") else "rerun"
    stage = await pipelines.load_stage(rule.stage_id)
    actor = request.state.actor
    values: QueryParams | FormData = await request.form() if request.method == "POST" else request.query_params
    where, raw, errors = _filter(values)
    plan = None
    context: dict[str, Any] = {"rule": rule, "stage": stage, "pipeline": stage.pipeline, "kind": kind, "raw": raw}
    if not errors:
        confirm = request.method == "POST"
        try:
            if kind == "rerun":
                plan = await reruns.rerun_failed_runs(rule.id, where, confirm=confirm,
                                                      expected=_number(values, "expected"), actor=actor)
            else:
                plan = await reruns.backfill_rule(rule.id, confirm=confirm, expected=_number(values, "expected"),
                                                  actor=actor)
        except ValidationFailed as exc:
            errors = error_map(exc)
            if request.method == "POST":  # the count changed meanwhile: show the new one
                plan = await (reruns.rerun_failed_runs(rule.id, where, confirm=False, actor=actor) if kind == "rerun"
                              else reruns.backfill_rule(rule.id, confirm=False, actor=actor))
    return render(request, "rule_bulk.html", {**context, "plan": plan, "errors": errors},
                  status_code=422 if errors else 200)


routes = [
    Route("/stages/{stage_id:int}/history", stage_history, methods=["GET"]),
    Route("/stages/{stage_id:int}/rollback/{number:int}", stage_rollback, methods=["GET", "POST"]),
    Route("/rules/{rule_id:int}/pause", rule_pause, methods=["POST"]),
    Route("/rules/{rule_id:int}/rerun", rule_bulk, methods=["GET", "POST"]),
    Route("/rules/{rule_id:int}/backfill", rule_bulk, methods=["GET", "POST"]),
]
