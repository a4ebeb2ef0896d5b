"""The rule form, derived from an action's params model: widgets out, typed values back in.

Form names: `p.<param>` (params), `t.<part>` (timing), `c.<group>.<row>.<field|op|value>` (condition).
The service validates; this module only translates between HTML inputs and the service's input.
"""

import json
from typing import Any

from starlette.datastructures import FormData

from server.i18n import N_
from server.services.designer import LIST_OPERATORS, NO_VALUE_OPERATORS, Action, ParamSpec, param_specs
from server.services.rules import RuleInput

TIMING_KINDS = {
    "immediately": N_("Immediately"), "after": N_("After a delay"), "before_field": N_("Before a date field"),
    "after_field": N_("After a date field"), "at_field": N_("At a date field"),
}
WORKING_TIME = {"": N_("Any time"), "company": N_("Only in the company's working time"),
                "responsible": N_("Only in the responsible's working hours")}
# The parts of a condition row an error names (`condition.<group>.<row>.<part>`), as _rule_form.html shows them.
CONDITION_PARTS = (N_("Field"), N_("Op"), N_("Value"))


def param_fields(action: Action[Any]) -> list[ParamSpec]:
    return param_specs(action)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text  # the params model reports it as "not a valid integer"


def parse_params(action: Action[Any], form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    """The params dict from the form, plus errors the form itself can tell (bad JSON)."""
    params: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in param_fields(action):
        key = f"p.{f.name}"
        raw = form.get(key)
        text = raw if isinstance(raw, str) else ""
        if f.kind == "bool":
            params[f.name] = key in form
        elif f.kind in ("users", "roles"):
            values = [v for v in form.getlist(key) if isinstance(v, str) and v]
            params[f.name] = [_number(v) for v in values] if f.kind == "users" else values
        elif f.kind == "field_map":
            mapping = {}
            for index in range(50):
                name = _text(form, f"{key}.{index}.field")
                if name:
                    mapping[name] = form.get(f"{key}.{index}.value") or ""
            params[f.name] = mapping
        elif f.kind in ("int", "user", "stage", "pipeline", "mail_sender", "document_template"):
            if text.strip():
                params[f.name] = _number(text.strip())
            elif f.required:
                params[f.name] = None
        elif f.kind == "list":
            items = [item.strip() for item in text.split(",") if item.strip()]
            params[f.name] = [_number(i) for i in items] if f.item_kind == "int" else items
        elif f.kind == "map":
            if text.strip():
                try:
                    params[f.name] = json.loads(text)
                except ValueError:
                    errors[f"params.{f.name}"] = "must be JSON, e.g. {\"key\": \"value\"}"
        elif text.strip() or f.required:
            params[f.name] = text  # template, string, choice
    return params, errors


# the parts of the timing each kind reads (working time: every kind); the form shows only these (admin.css)
TIMING_PARTS: dict[str, tuple[str, ...]] = {
    "immediately": (), "after": ("amount", "unit"), "before_field": ("amount", "unit", "field", "time_of_day"),
    "after_field": ("amount", "unit", "field", "time_of_day"), "at_field": ("field", "time_of_day"),
}


def parse_timing(form: FormData) -> dict[str, Any]:
    kind = _text(form, "t.kind") or "immediately"
    timing: dict[str, Any] = {"kind": kind}
    for part in TIMING_PARTS.get(kind, ("amount", "unit", "field", "time_of_day")):
        text = _text(form, f"t.{part}")
        if text:
            timing[part] = _number(text) if part == "amount" else text
    if _text(form, "t.working_time"):
        timing["working_time"] = _text(form, "t.working_time")
    return timing


def parse_condition(form: FormData) -> list[list[dict[str, Any]]]:
    """Groups (OR) of rows (AND); rows without a field are left out, empty groups too."""
    groups = []
    for g in range(20):
        rows = []
        for c in range(20):
            name = _text(form, f"c.{g}.{c}.field")
            if not name:
                continue
            op = _text(form, f"c.{g}.{c}.op") or "eq"
            text = _text(form, f"c.{g}.{c}.value")
            value: Any = None
            if op in LIST_OPERATORS:
                value = [v.strip() for v in text.split(",") if v.strip()]
            elif op not in NO_VALUE_OPERATORS:
                value = text
            rows.append({"field": name, "op": op, "value": value})
        if rows:
            groups.append(rows)
    return groups


def parse_rule(action: Action[Any], form: FormData) -> tuple[RuleInput, dict[str, str]]:
    params, errors = parse_params(action, form)
    run_as = _text(form, "run_as_id")
    data = RuleInput(
        action_type=action.key, title=_text(form, "title"), key=_text(form, "key") or None,
        lane=_text(form, "lane") or "parallel", params=params, condition=parse_condition(form),
        timing=parse_timing(form), run_as_id=int(run_as) if run_as.isdigit() else None,
        clear_run_as="run_as_id" in form and not run_as.isdigit(),  # the form shows the whole rule
        enabled="enabled" in form, stop_lane_on_failure="stop_lane_on_failure" in form,
    )
    return data, errors


def value_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)
