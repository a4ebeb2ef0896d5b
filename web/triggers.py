"""A stage's triggers: the trigger catalogue, the trigger form (new and edit, from the type's settings model),
delete, and a new secret URL for an inbound webhook (admins only)."""

import json
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.errors import ValidationFailed
from server.services import designer, pipelines
from server.services import triggers as trigger_service
from server.services.designer import OPERATOR_LABELS, ParamSpec, TriggerForm, TriggerType
from server.services.triggers import TriggerInput
from web import rule_form
from web.guard import page
from web.templating import error_map, is_htmx, redirect, render


def webhook_url(request: Request, path: str | None) -> str | None:
    return f"{str(request.base_url).rstrip('/')}{path}" if path else None


def _setting(spec: ParamSpec, form: FormData) -> tuple[bool, Any]:
    """(given, value) of one setting: `s.<name>`; a setting left empty keeps its default."""
    key = f"s.{spec.name}"
    if spec.kind == "bool":
        return True, key in form
    if spec.kind == "list" and spec.choices:
        return True, [v for v in form.getlist(key) if isinstance(v, str) and v]
    raw = form.get(key)
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        return False, None
    if spec.kind == "list":
        return True, [item.strip() for item in text.split(",") if item.strip()]
    if spec.kind == "int":
        return True, rule_form._number(text)
    if spec.kind == "map":  # a JSON object or list, else the text itself (a number: Decimal reads it)
        try:
            parsed = json.loads(text)
        except ValueError:
            return True, text
        return True, parsed if isinstance(parsed, dict | list) else text
    return True, text


def parse_trigger(kind: TriggerType[Any], form: FormData) -> TriggerInput:
    settings = {}
    for spec in designer.trigger_settings_specs(kind):
        given, value = _setting(spec, form)
        if given:
            settings[spec.name] = value
    run_as = rule_form._text(form, "run_as_id")
    return TriggerInput(
        trigger_type=kind.key, name=rule_form._text(form, "name"), settings=settings,
        condition=rule_form.parse_condition(form), allow_back="allow_back" in form,
        run_as_id=int(run_as) if run_as.isdigit() else None, clear_run_as=not run_as.isdigit(),
        enabled="enabled" in form,
    )


def _values_from(data: TriggerInput) -> dict[str, Any]:
    return {"name": data.name, "settings": data.settings or {}, "condition": data.condition or [],
            "allow_back": data.allow_back, "run_as_id": data.run_as_id, "enabled": data.enabled}


def _setting_value(spec: ParamSpec, value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value)
    return rule_form.value_text(value)


def _form_context(request: Request, form: TriggerForm, values: dict[str, Any],
                  errors: dict[str, str]) -> dict[str, Any]:
    rows = [list(group) for group in values.get("condition") or []] + [[]]
    for group in rows:
        group.append({"field": "", "op": "eq", "value": ""})
    # An error on a part of a setting (settings.fields.0) shows beside the setting's input.
    setting_errors: dict[str, list[str]] = {}
    for name, message in errors.items():
        parts = name.split(".")
        if parts[0] == "settings" and len(parts) > 1:
            setting_errors.setdefault(parts[1], []).append(message)
    return {
        "stage": form.stage, "pipeline": form.stage.pipeline, "kind": form.kind, "trigger": form.trigger,
        "values": values, "errors": errors, "fields": form.fields, "setting_errors": setting_errors,
        "users": form.users, "condition_fields": form.condition_fields, "element_fields": form.element_fields,
        "condition_rows": rows, "operators": OPERATOR_LABELS, "value_text": rule_form.value_text,
        "setting_value": _setting_value,
        "webhook_url": webhook_url(request, designer.webhook_path(form.trigger)) if form.trigger else None,
    }


def _form_response(request: Request, context: dict[str, Any], *, status_code: int) -> Response:
    name = "_trigger_form.html" if is_htmx(request) else "trigger_form.html"
    return render(request, name, context, status_code=status_code)


@page(admin=True)
async def trigger_new(request: Request) -> Response:
    stage = await pipelines.load_stage(int(request.path_params["stage_id"]))
    kind = designer.trigger_type(str(request.query_params.get("type") or ""))
    if kind is None:
        return render(request, "trigger_catalogue.html", {
            "stage": stage, "pipeline": stage.pipeline, "catalogue": designer.trigger_catalogue(),
            "groups": designer.TRIGGER_GROUPS})
    form = await designer.new_trigger_form(stage, kind, actor=request.state.actor)
    if request.method == "GET":
        return render(request, "trigger_form.html", _form_context(request, form, form.values, {}))
    data = parse_trigger(kind, await request.form())
    try:
        trigger = await trigger_service.create_trigger(stage.id, data, actor=request.state.actor)
        return redirect(request, f"/admin/pipelines/{stage.pipeline_id}#trigger-{trigger.id}")
    except ValidationFailed as exc:
        errors = error_map(exc)
    return _form_response(request, _form_context(request, form, _values_from(data), errors), status_code=422)


@page(admin=True)
async def trigger_edit(request: Request) -> Response:
    form = await designer.edit_trigger_form(int(request.path_params["trigger_id"]), actor=request.state.actor)
    if request.method == "GET":
        return render(request, "trigger_form.html", _form_context(request, form, form.values, {}))
    assert form.trigger is not None  # an edit form has its trigger
    data = parse_trigger(form.kind, await request.form())
    try:
        await trigger_service.update_trigger(form.trigger.id, data, actor=request.state.actor)
        return redirect(request, f"/admin/pipelines/{form.stage.pipeline_id}#trigger-{form.trigger.id}")
    except ValidationFailed as exc:
        errors = error_map(exc)
    return _form_response(request, _form_context(request, form, _values_from(data), errors), status_code=422)


@page(admin=True)
async def trigger_delete(request: Request) -> Response:
    trigger = await trigger_service.get_trigger(int(request.path_params["trigger_id"]))
    stage = await pipelines.load_stage(trigger.stage_id)
    if request.method == "GET":
        return render(request, "trigger_delete.html", {"trigger": trigger, "stage": stage, "pipeline": stage.pipeline,
                                                       "card": designer.trigger_card(trigger)})
    await trigger_service.delete_trigger(trigger.id, actor=request.state.actor)
    return redirect(request, f"/admin/pipelines/{stage.pipeline_id}#stage-{stage.id}")


@page(admin=True)
async def trigger_rotate(request: Request) -> Response:
    """A new secret URL for an inbound webhook trigger, after a confirmation: the old URL stops working."""
    trigger = await trigger_service.get_trigger(int(request.path_params["trigger_id"]))
    stage = await pipelines.load_stage(trigger.stage_id)
    if request.method == "GET":
        return render(request, "trigger_rotate.html", {
            "trigger": trigger, "stage": stage, "pipeline": stage.pipeline,
            "webhook_url": webhook_url(request, designer.webhook_path(trigger))})
    try:
        await trigger_service.rotate_webhook_url(trigger.id, actor=request.state.actor)
    except ValidationFailed as exc:
        return render(request, "error.html", {"status": 422, "message": "; ".join(error_map(exc).values())},
                      status_code=422)
    return redirect(request, f"/admin/triggers/{trigger.id}/edit#webhook-url")


routes = [
    Route("/stages/{stage_id:int}/triggers/new", trigger_new, methods=["GET", "POST"]),
    Route("/triggers/{trigger_id:int}/edit", trigger_edit, methods=["GET", "POST"]),
    Route("/triggers/{trigger_id:int}/delete", trigger_delete, methods=["GET", "POST"]),
    Route("/triggers/{trigger_id:int}/rotate", trigger_rotate, methods=["GET", "POST"]),
]
