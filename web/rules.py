"""A stage's rules: the action catalogue, the rule form (new and edit), delete, move and lane toggle (admins only)."""

import html
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from server.errors import ValidationFailed
from server.services import designer, pipelines
from server.services import rules as rule_service
from server.services.rules import RuleInput
from web import rule_form
from web.guard import page
from web.templating import error_map, is_htmx, redirect, render


def _form_context(form: designer.RuleForm, values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    condition = values.get("condition") or []
    rows = [list(group) for group in condition] + [[]]
    for group in rows:
        group.append({"field": "", "op": "eq", "value": ""})
    return {
        "stage": form.stage, "pipeline": form.stage.pipeline, "action": form.action, "rule": form.rule,
        "values": values, "errors": errors, "fields": form.fields, "groups": designer.GROUPS,
        "users": form.users, "stages": form.stages, "all_pipelines": form.pipelines, "mail_senders": form.mail_senders,
        "placeholders": form.placeholders, "element_fields": form.element_fields, "date_fields": form.date_fields,
        "condition_fields": form.condition_fields, "condition_rows": rows, "operators": designer.OPERATOR_LABELS,
        "timing_kinds": rule_form.TIMING_KINDS, "working_time": rule_form.WORKING_TIME,
        "value_text": rule_form.value_text, "entity_type": form.stage.pipeline.entity_type,
        "first_rule": form.first_rule,
        "hints": designer.param_hints(form.action, {name: (values.get("params") or {}).get(name) or ""
                                                     for name in form.action.hinted_params}),
    }


def _values_from(data: RuleInput) -> dict[str, Any]:
    return {"title": data.title, "key": data.key, "lane": data.lane, "params": data.params or {},
            "condition": data.condition or [], "timing": data.timing or {}, "run_as_id": data.run_as_id,
            "enabled": data.enabled, "stop_lane_on_failure": data.stop_lane_on_failure}


def _form_response(request: Request, context: dict[str, Any], *, status_code: int) -> Response:
    """The whole page, or only the form for htmx (it swaps the form in place, errors inline)."""
    name = "_rule_form.html" if is_htmx(request) else "rule_form.html"
    return render(request, name, context, status_code=status_code)


@page(admin=True)
async def param_hint(request: Request) -> Response:
    """The live note under a param as the admin types (the SMS segment count): the text of the hint alone."""
    action = designer.action_type(request.path_params["key"])
    name = request.path_params["param"]
    if action is None or name not in action.hinted_params:
        return HTMLResponse("", status_code=404)
    value = (await request.form()).get(f"p.{name}")
    hints = designer.param_hints(action, {name: value if isinstance(value, str) else ""})
    return HTMLResponse(html.escape(hints.get(name, "")))


@page(admin=True)
async def rule_new(request: Request) -> Response:
    stage = await pipelines.load_stage(int(request.path_params["stage_id"]))
    action = designer.action_type(str(request.query_params.get("type") or ""))
    if action is None:
        return render(request, "rule_catalogue.html", {"stage": stage, "pipeline": stage.pipeline,
                                                       "catalogue": designer.catalogue(), "groups": designer.GROUPS})
    if request.method == "GET":
        form = await designer.new_rule_form(stage, action, actor=request.state.actor)
        return render(request, "rule_form.html", _form_context(form, form.values, {}))
    data, errors = rule_form.parse_rule(action, await request.form())
    if not errors:
        try:
            await rule_service.create_rule(stage.id, data, actor=request.state.actor)
            return redirect(request, f"/admin/pipelines/{stage.pipeline_id}#stage-{stage.id}")
        except ValidationFailed as exc:
            errors = error_map(exc)
    form = await designer.new_rule_form(stage, action, actor=request.state.actor)
    return _form_response(request, _form_context(form, _values_from(data), errors), status_code=422)


@page(admin=True)
async def rule_edit(request: Request) -> Response:
    form = await designer.edit_rule_form(int(request.path_params["rule_id"]), actor=request.state.actor)
    if request.method == "GET":
        return render(request, "rule_form.html", _form_context(form, form.values, {}))
    assert form.rule is not None  # an edit form has its rule
    data, errors = rule_form.parse_rule(form.action, await request.form())
    data.key = data.key or form.rule.key
    if not errors:
        try:
            await rule_service.update_rule(form.rule.id, data, actor=request.state.actor)
            return redirect(request, f"/admin/pipelines/{form.stage.pipeline_id}#rule-{form.rule.id}")
        except ValidationFailed as exc:
            errors = error_map(exc)
    return _form_response(request, _form_context(form, _values_from(data), errors), status_code=422)


@page(admin=True)
async def rule_delete(request: Request) -> Response:
    rule = await rule_service.get_rule(int(request.path_params["rule_id"]))
    stage = await pipelines.load_stage(rule.stage_id)
    if request.method == "GET":
        becomes_first = rule_service.first_rule_after(await rule_service.list_rules(stage.id), rule.id)
        return render(request, "rule_delete.html", {"rule": rule, "stage": stage, "pipeline": stage.pipeline,
                                                    "becomes_first": becomes_first})
    await rule_service.delete_rule(rule.id, actor=request.state.actor)
    return redirect(request, f"/admin/pipelines/{stage.pipeline_id}#stage-{stage.id}")


@page(admin=True)
async def rule_move(request: Request) -> Response:
    rule = await rule_service.get_rule(int(request.path_params["rule_id"]))
    form = await request.form()
    await rule_service.move_rule(rule.id, "up" if form.get("direction") == "up" else "down", actor=request.state.actor)
    stage = await pipelines.load_stage(rule.stage_id)
    return redirect(request, f"/admin/pipelines/{stage.pipeline_id}#rule-{rule.id}")


@page(admin=True)
async def rule_lane(request: Request) -> Response:
    """Toggle parallel / after previous from the board."""
    rule = await rule_service.get_rule(int(request.path_params["rule_id"]))
    form = await request.form()
    lane = "after_previous" if form.get("lane") == "after_previous" else "parallel"
    stage = await pipelines.load_stage(rule.stage_id)
    try:
        await rule_service.update_rule(rule.id, RuleInput(lane=lane), actor=request.state.actor)
    except ValidationFailed:
        pass  # the rule's stored params went stale; its edit form shows why
    return redirect(request, f"/admin/pipelines/{stage.pipeline_id}#rule-{rule.id}")


routes = [
    Route("/actions/{key}/hints/{param}", param_hint, methods=["POST"]),
    Route("/stages/{stage_id:int}/rules/new", rule_new, methods=["GET", "POST"]),
    Route("/rules/{rule_id:int}/edit", rule_edit, methods=["GET", "POST"]),
    Route("/rules/{rule_id:int}/delete", rule_delete, methods=["GET", "POST"]),
    Route("/rules/{rule_id:int}/move", rule_move, methods=["POST"]),
    Route("/rules/{rule_id:int}/lane", rule_lane, methods=["POST"]),
]
