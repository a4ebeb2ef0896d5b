"""Pipelines and stages, the rule designer board, and the rule form (admins only)."""

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.errors import NotFound, ValidationFailed
from server.models import Rule, Stage
from server.rules import elements as element_fields
from server.rules.actions import get_action, registry
from server.rules.actions.base import Names, load_names
from server.services import pipelines, rules, users
from web import rule_form
from web.guard import page
from web.templating import error_map, is_htmx, redirect, render


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


# Pipelines and stages ---------------------------------------------------------------------------

async def _pipelines_page(request: Request, *, errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    rows = []
    for pipeline in await pipelines.list_pipelines():
        rows.append((pipeline, await pipelines.list_stages(pipeline.id)))
    return render(request, "pipelines.html", {"rows": rows, "errors": errors or {},
                                              "semantics": pipelines.SEMANTICS, "failed": request.query_params},
                  status_code=status_code)


@page(admin=True)
async def pipeline_list(request: Request) -> Response:
    if request.method == "GET":
        return await _pipelines_page(request)
    form = await request.form()
    try:
        pipeline = await pipelines.create_pipeline(str(form.get("name") or ""), str(form.get("entity_type") or ""),
                                                   actor=request.state.actor)
    except ValidationFailed as exc:
        return await _pipelines_page(request, errors={f"new.{k}": v for k, v in error_map(exc).items()}, status_code=422)
    return redirect(request, f"/admin/pipelines#pipeline-{pipeline.id}")


@page(admin=True)
async def pipeline_rename(request: Request) -> Response:
    pipeline_id = int(request.path_params["pipeline_id"])
    form = await request.form()
    try:
        await pipelines.rename_pipeline(pipeline_id, str(form.get("name") or ""), actor=request.state.actor)
    except ValidationFailed as exc:
        return await _pipelines_page(request, errors={f"pipeline-{pipeline_id}.{k}": v for k, v in error_map(exc).items()},
                                     status_code=422)
    return redirect(request, f"/admin/pipelines#pipeline-{pipeline_id}")


@page(admin=True)
async def stage_create(request: Request) -> Response:
    pipeline_id = int(request.path_params["pipeline_id"])
    form = await request.form()
    try:
        await pipelines.create_stage(pipeline_id, str(form.get("name") or ""),
                                     semantic=str(form.get("semantic") or "in_progress"), actor=request.state.actor)
    except ValidationFailed as exc:
        return await _pipelines_page(request, errors={f"new-stage-{pipeline_id}.{k}": v for k, v in error_map(exc).items()},
                                     status_code=422)
    return redirect(request, f"/admin/pipelines#pipeline-{pipeline_id}")


@page(admin=True)
async def stage_update(request: Request) -> Response:
    stage_id = int(request.path_params["stage_id"])
    form = await request.form()
    try:
        stage = await pipelines.update_stage(stage_id, name=str(form.get("name") or ""),
                                             semantic=str(form.get("semantic") or ""), actor=request.state.actor)
    except ValidationFailed as exc:
        return await _pipelines_page(request, errors={f"stage-{stage_id}.{k}": v for k, v in error_map(exc).items()},
                                     status_code=422)
    return redirect(request, f"/admin/pipelines#stage-{stage.id}")


@page(admin=True)
async def stage_move(request: Request) -> Response:
    stage_id = int(request.path_params["stage_id"])
    form = await request.form()
    await pipelines.move_stage(stage_id, -1 if form.get("direction") == "up" else 1, actor=request.state.actor)
    return redirect(request, f"/admin/pipelines#stage-{stage_id}")


# The board --------------------------------------------------------------------------------------

@dataclass
class Card:
    rule: Rule
    lane: int
    says: str
    when: str
    condition: str
    group: str


async def _cards(stage: Stage, names: Names) -> list[Card]:
    cards = []
    lane = 0
    for rule in await rules.list_rules(stage.id):
        if rule.lane != "after_previous" or lane == 0:
            lane += 1
        action = get_action(rule.action_type)
        cards.append(Card(rule, lane, rule_form.describe(action, rule.params, names), rule_form.timing_text(rule.timing),
                          rule_form.condition_text(rule.condition), action.group if action else ""))
    return cards


@page(admin=True)
async def board(request: Request) -> Response:
    pipeline = await pipelines.get_pipeline(int(request.path_params["pipeline_id"]))
    names = await load_names()
    columns = [(stage, await _cards(stage, names)) for stage in await pipelines.list_stages(pipeline.id)]
    return render(request, "board.html", {"pipeline": pipeline, "columns": columns,
                                          "all_pipelines": await pipelines.list_pipelines()})


# The rule form ----------------------------------------------------------------------------------

async def _stage_or_404(stage_id: int) -> Stage:
    stage = await Stage.get_or_none(id=stage_id).prefetch_related("pipeline")
    if stage is None:
        raise NotFound("stage", stage_id)
    return stage


async def _placeholders(stage: Stage, entity_type: str, rule: Rule | None) -> list[tuple[str, str]]:
    """(placeholder, label): the element's fields, outputs of the rules above this one, system values."""
    fields = [
        "title", "id", "amount", "currency", "stage.name", "pipeline.name", "responsible.name", "responsible.email",
        "contact.name", "contact.email", "contact.phone", "company.name", "company.email",
    ]
    fields += ["source"] if entity_type == "lead" else ["close_date"]
    types = await element_fields.field_types(entity_type)
    fields += [name for name in types if name not in fields and name not in ("responsible", "contact", "company")]
    options = [(f"{{{{{entity_type}.{name}}}}}", f"{entity_type} · {name}") for name in fields]
    for other in await rules.list_rules(stage.id):
        if rule is not None and (other.position, other.id) >= (rule.position, rule.id):
            break
        action = get_action(other.action_type)
        for output in action.outputs if action else ():
            options.append((f"{{{{rules.{other.key}.{output}}}}}", f"rule “{other.title}” · {output}"))
    options += [("{{now}}", "now"), ("{{today}}", "today")]
    return options


async def _form_context(request: Request, stage: Stage, action: Any, rule: Rule | None, values: dict[str, Any],
                        errors: dict[str, str]) -> dict[str, Any]:
    entity_type = stage.pipeline.entity_type
    types = await element_fields.field_types(entity_type)
    date_fields = ["created_at"] + [n for n, (t, _) in types.items() if t in ("date", "datetime")]
    condition = values.get("condition") or []
    rows = [list(group) for group in condition] + [[]]
    for group in rows:
        group.append({"field": "", "op": "eq", "value": ""})
    return {
        "stage": stage, "pipeline": stage.pipeline, "action": action, "rule": rule, "values": values,
        "errors": errors, "fields": rule_form.param_fields(action), "groups": rule_form.GROUPS,
        "users": await users.list_users(actor=request.state.actor),
        "stages": await pipelines.list_stages(stage.pipeline_id),
        "all_pipelines": await pipelines.list_pipelines(),
        "placeholders": await _placeholders(stage, entity_type, rule),
        "element_fields": ["title", *[n for n in types if n != "title"]], "date_fields": date_fields,
        "condition_fields": ["title", "amount", "stage.code", "responsible.id", "contact.email", *types],
        "condition_rows": rows, "operators": rule_form.OPERATORS, "timing_kinds": rule_form.TIMING_KINDS,
        "working_time": rule_form.WORKING_TIME, "value_text": rule_form.value_text,
        "entity_type": entity_type, "first_rule": await _is_first(stage, rule),
    }


async def _is_first(stage: Stage, rule: Rule | None) -> bool:
    """A new rule of an empty stage, or the rule at the top: nothing above it to wait for."""
    existing = await rules.list_rules(stage.id)
    return not existing if rule is None else existing[0].id == rule.id


def _values_of(rule: Rule) -> dict[str, Any]:
    return {"title": rule.title, "key": rule.key, "lane": rule.lane, "params": dict(rule.params or {}),
            "condition": rule.condition or [], "timing": dict(rule.timing or {}), "run_as_id": rule.run_as_id,
            "enabled": rule.enabled, "stop_lane_on_failure": rule.stop_lane_on_failure}


def _values_from(data: rules.RuleInput) -> dict[str, Any]:
    return {"title": data.title, "key": data.key, "lane": data.lane, "params": data.params or {},
            "condition": data.condition or [], "timing": data.timing or {}, "run_as_id": data.run_as_id,
            "enabled": data.enabled, "stop_lane_on_failure": data.stop_lane_on_failure}


def _form_response(request: Request, context: dict[str, Any], *, status_code: int) -> Response:
    """The whole page, or only the form for htmx (it swaps the form in place, errors inline)."""
    name = "_rule_form.html" if is_htmx(request) else "rule_form.html"
    return render(request, name, context, status_code=status_code)


@page(admin=True)
async def rule_new(request: Request) -> Response:
    stage = await _stage_or_404(int(request.path_params["stage_id"]))
    action = get_action(str(request.query_params.get("type") or ""))
    if action is None:
        catalogue: dict[str, list[Any]] = {group: [] for group in rule_form.GROUPS}
        for candidate in registry().values():
            catalogue.setdefault(candidate.group, []).append(candidate)
        return render(request, "rule_catalogue.html", {"stage": stage, "pipeline": stage.pipeline,
                                                       "catalogue": catalogue, "groups": rule_form.GROUPS})
    if request.method == "GET":
        values = {"title": action.title, "lane": "parallel", "params": {}, "timing": {"kind": "immediately"},
                  "condition": [], "enabled": True}
        return render(request, "rule_form.html", await _form_context(request, stage, action, None, values, {}))
    form = await request.form()
    data, errors = rule_form.parse_rule(action, form)
    if not errors:
        try:
            await rules.create_rule(stage.id, data, actor=request.state.actor)
            return redirect(request, f"/admin/pipelines/{stage.pipeline_id}#stage-{stage.id}")
        except ValidationFailed as exc:
            errors = error_map(exc)
    context = await _form_context(request, stage, action, None, _values_from(data), errors)
    return _form_response(request, context, status_code=422)


async def _rule_or_404(request: Request) -> Rule:
    rule = await Rule.get_or_none(id=int(request.path_params["rule_id"]))
    if rule is None:
        raise NotFound("rule", request.path_params["rule_id"])
    return rule


@page(admin=True)
async def rule_edit(request: Request) -> Response:
    rule = await _rule_or_404(request)
    stage = await _stage_or_404(rule.stage_id)
    action = get_action(rule.action_type)
    if action is None:
        raise NotFound("action type", rule.action_type)
    if request.method == "GET":
        return render(request, "rule_form.html", await _form_context(request, stage, action, rule, _values_of(rule), {}))
    form = await request.form()
    data, errors = rule_form.parse_rule(action, form)
    data.key = data.key or rule.key
    if not errors:
        try:
            await rules.update_rule(rule.id, data, actor=request.state.actor)
            return redirect(request, f"/admin/pipelines/{stage.pipeline_id}#rule-{rule.id}")
        except ValidationFailed as exc:
            errors = error_map(exc)
    context = await _form_context(request, stage, action, rule, _values_from(data), errors)
    return _form_response(request, context, status_code=422)


@page(admin=True)
async def rule_delete(request: Request) -> Response:
    rule = await _rule_or_404(request)
    stage = await _stage_or_404(rule.stage_id)
    if request.method == "GET":
        becomes_first = rules.first_rule_after(await rules.list_rules(stage.id), rule.id)
        return render(request, "rule_delete.html", {"rule": rule, "stage": stage, "pipeline": stage.pipeline,
                                                    "becomes_first": becomes_first})
    await rules.delete_rule(rule.id, actor=request.state.actor)
    return redirect(request, f"/admin/pipelines/{stage.pipeline_id}#stage-{stage.id}")


@page(admin=True)
async def rule_move(request: Request) -> Response:
    rule = await _rule_or_404(request)
    form = await request.form()
    ids = [r.id for r in await rules.list_rules(rule.stage_id)]
    index = ids.index(rule.id)
    target = max(0, min(len(ids) - 1, index + (-1 if form.get("direction") == "up" else 1)))
    ids.insert(target, ids.pop(index))
    await rules.reorder_rules(rule.stage_id, ids, actor=request.state.actor)
    stage = await _stage_or_404(rule.stage_id)
    return redirect(request, f"/admin/pipelines/{stage.pipeline_id}#rule-{rule.id}")


@page(admin=True)
async def rule_lane(request: Request) -> Response:
    """Toggle parallel / after previous from the board."""
    rule = await _rule_or_404(request)
    form = await request.form()
    lane = "after_previous" if form.get("lane") == "after_previous" else "parallel"
    stage = await _stage_or_404(rule.stage_id)
    try:
        await rules.update_rule(rule.id, rules.RuleInput(lane=lane), actor=request.state.actor)
    except ValidationFailed:
        pass  # the rule's stored params went stale; its edit form shows why
    return redirect(request, f"/admin/pipelines/{stage.pipeline_id}#rule-{rule.id}")


routes = [
    Route("/pipelines", pipeline_list, methods=["GET", "POST"]),
    Route("/pipelines/{pipeline_id:int}", board),
    Route("/pipelines/{pipeline_id:int}/rename", pipeline_rename, methods=["POST"]),
    Route("/pipelines/{pipeline_id:int}/stages", stage_create, methods=["POST"]),
    Route("/stages/{stage_id:int}", stage_update, methods=["POST"]),
    Route("/stages/{stage_id:int}/move", stage_move, methods=["POST"]),
    Route("/stages/{stage_id:int}/rules/new", rule_new, methods=["GET", "POST"]),
    Route("/rules/{rule_id:int}/edit", rule_edit, methods=["GET", "POST"]),
    Route("/rules/{rule_id:int}/delete", rule_delete, methods=["GET", "POST"]),
    Route("/rules/{rule_id:int}/move", rule_move, methods=["POST"]),
    Route("/rules/{rule_id:int}/lane", rule_lane, methods=["POST"]),
]
