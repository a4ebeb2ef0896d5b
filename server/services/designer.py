"""What the admin's rule designer shows: the action catalogue, a pipeline's rules as cards in their lanes,
and what a rule's form offers. Each comes from where the engine defines it, so the designer cannot offer
a name, an operator or a lane the engine would read differently."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from server.errors import NotFound
from server.models import MailSender, Pipeline, Rule, Stage, User
from server.rules import elements, placeholders
from server.rules.actions import get_action, registry
from server.rules.actions.base import GROUPS as GROUPS  # the catalogue's headings
from server.rules.actions.base import NO_NAMES, Names, load_names
from server.rules.actions.base import Action as Action  # the faces hold actions the catalogue gives them
from server.rules.actions.params import ParamSpec as ParamSpec
from server.rules.actions.params import describe_params
from server.rules.conditions import LIST_OPERATORS as LIST_OPERATORS
from server.rules.conditions import NO_VALUE_OPERATORS as NO_VALUE_OPERATORS
from server.rules.conditions import OPERATOR_LABELS as OPERATOR_LABELS
from server.rules.conditions import Comparison
from server.rules.engine import lane_numbers
from server.rules.timing import Timing
from server.services import messages, pipelines, rules, users
from server.services.access import Acting, require_admin

# ---------------------------------------------------------------- the catalogue


def action_type(key: str) -> Action[Any] | None:
    return get_action(key)


def param_hints(action: Action[Any], params: dict[str, Any]) -> dict[str, str]:
    """The live notes of the rule form (an SMS text's segment count) for the values as typed."""
    return {name: hint for name, hint in action.param_hints(params).items() if name in action.hinted_params}


def catalogue() -> dict[str, list[Action[Any]]]:
    """Every action by group, the groups in the order of GROUPS (a group it does not know comes last)."""
    grouped: dict[str, list[Action[Any]]] = {group: [] for group in GROUPS}
    for action in registry().values():
        grouped.setdefault(action.group, []).append(action)
    return grouped


def param_specs(action: Action[Any]) -> list[ParamSpec]:
    """The widgets of an action's params: the same reader feeds GraphQL's `actionTypes`."""
    return describe_params(action.Params)


# ---------------------------------------------------------------- describing a rule


def describe(action: Action[Any] | None, params: dict[str, Any], names: Names = NO_NAMES) -> str:
    if action is None:
        return "unknown action"
    try:
        return action.describe(action.Params.model_validate(params or {}), names)
    except ValueError:
        return f"{action.title} (its params no longer validate: edit the rule)"


def timing_text(timing: dict[str, Any]) -> str:
    try:
        return Timing.model_validate(timing or {}).describe()
    except ValueError:
        return str(timing)


def condition_text(condition: list[list[dict[str, Any]]]) -> str:
    groups = []
    for group in condition or []:
        parts = []
        for comparison in group:
            try:
                parts.append(Comparison.model_validate(comparison).describe())
            except ValueError:
                parts.append(str(comparison))
        groups.append(" and ".join(parts))
    if len(groups) > 1:
        return " or ".join(f"({g})" for g in groups)
    return groups[0] if groups else ""


# ---------------------------------------------------------------- the board


@dataclass(frozen=True)
class RuleCard:
    """A rule as the board shows it: its lane (1, 2, … in the stage), what it does, when and only if what."""

    rule: Rule
    lane: int
    says: str
    when: str
    condition: str
    group: str


async def board(pipeline_id: int, *, actor: Acting) -> list[tuple[Stage, list[RuleCard]]]:
    """Each stage of the pipeline with its rules, in order, numbered in lanes as the engine runs them."""
    require_admin(actor)
    names = await load_names()
    columns = []
    for stage in await pipelines.list_stages(pipeline_id):
        stage_rules = await rules.list_rules(stage.id)
        cards = []
        for rule, lane in zip(stage_rules, lane_numbers([r.lane for r in stage_rules]), strict=True):
            action = get_action(rule.action_type)
            cards.append(RuleCard(rule, lane + 1, describe(action, rule.params, names), timing_text(rule.timing),
                                  condition_text(rule.condition), action.group if action else ""))
        columns.append((stage, cards))
    return columns


# ---------------------------------------------------------------- the rule form


@dataclass(frozen=True)
class RuleForm:
    """What the rule form shows beside what the admin typed: where the rule is, its action's widgets, its
    stored values (a new rule's defaults), and the choices the form offers."""

    stage: Stage  # with its pipeline loaded
    rule: Rule | None  # None: a new rule, which goes last
    action: Action[Any]
    fields: list[ParamSpec]
    values: dict[str, Any]
    placeholders: list[tuple[str, str]]  # (placeholder, label) for the template pickers
    condition_fields: list[str]  # names a condition row may compare
    element_fields: list[str]  # fields a rule may change
    date_fields: list[str]  # fields a timing may count from
    first_rule: bool  # nothing above it to wait for: "after previous" would start with the stage
    users: list[User]
    stages: list[Stage]  # of the rule's pipeline
    pipelines: list[Pipeline]
    mail_senders: list[MailSender]  # for `mail_sender` params (Send email's sender)


async def new_rule_form(stage: Stage, action: Action[Any], *, actor: Acting) -> RuleForm:
    """The form for a new `action` rule at the end of `stage` (as pipelines.load_stage gives it)."""
    values = {"title": action.title, "lane": "parallel", "params": {}, "timing": {"kind": "immediately"},
              "condition": [], "enabled": True}
    return await _rule_form(stage, action, None, values, actor=actor)


async def edit_rule_form(rule_id: int, *, actor: Acting) -> RuleForm:
    rule = await rules.get_rule(rule_id)
    action = get_action(rule.action_type)
    if action is None:
        raise NotFound("action type", rule.action_type)
    values = {"title": rule.title, "key": rule.key, "lane": rule.lane, "params": dict(rule.params or {}),
              "condition": rule.condition or [], "timing": dict(rule.timing or {}), "run_as_id": rule.run_as_id,
              "enabled": rule.enabled, "stop_lane_on_failure": rule.stop_lane_on_failure}
    return await _rule_form(await pipelines.load_stage(rule.stage_id), action, rule, values, actor=actor)


def _paths(record: placeholders.Record, prefix: str = "") -> Iterator[str]:
    """Every dotted name below `record` that ends at a value; open records (any name) are not listed."""
    for name, shape in record.fields.items():
        if isinstance(shape, placeholders.Value):
            yield f"{prefix}{name}"
        elif not shape.open:
            yield from _paths(shape, f"{prefix}{name}.")


async def _rule_form(stage: Stage, action: Action[Any], rule: Rule | None, values: dict[str, Any], *,
                     actor: Acting) -> RuleForm:
    """The placeholders and condition fields are the names the save check accepts at the rule's place."""
    require_admin(actor)
    entity_type = stage.pipeline.entity_type
    names = await rules.names_for(stage.id, rule_id=rule.id if rule is not None else None)
    element, above = names.fields[entity_type], names.fields["rules"]
    assert isinstance(element, placeholders.Record) and isinstance(above, placeholders.Record)  # run_context's shape
    element_paths = list(_paths(element))
    output_paths = list(_paths(above, "rules."))
    existing = await rules.list_rules(stage.id)
    titles = {r.key: r.title for r in existing}
    options = [(f"{{{{{entity_type}.{path}}}}}", f"{entity_type} · {path}") for path in element_paths]
    for path in output_paths:
        _, key, output = path.split(".", 2)
        options.append((f"{{{{{path}}}}}", f"rule “{titles.get(key, key)}” · {output}"))
    options += [(f"{{{{{value}}}}}", value) for value in placeholders.SYSTEM_VALUES]
    types = await elements.field_types(entity_type)
    return RuleForm(
        stage=stage, rule=rule, action=action, fields=param_specs(action), values=values,
        placeholders=options,
        condition_fields=element_paths + output_paths,
        element_fields=["title", *[name for name in types if name != "title"]],
        date_fields=await rules.date_fields(entity_type),
        first_rule=not existing if rule is None else existing[0].id == rule.id,
        users=await users.list_users(actor=actor),
        stages=await pipelines.list_stages(stage.pipeline_id),
        pipelines=await pipelines.list_pipelines(),
        mail_senders=await messages.mail_senders(actor=actor),
    )
