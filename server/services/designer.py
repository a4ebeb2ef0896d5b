"""What the admin's rule designer shows: the action catalogue, a pipeline's rules as cards in their lanes,
and what a rule's form offers. Each comes from where the engine defines it, so the designer cannot offer
a name, an operator or a lane the engine would read differently."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from server import i18n
from server.errors import NotFound
from server.models import MailSender, Pipeline, Rule, Stage, Trigger, TriggerActivation, User
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
from server.rules.conditions import describe_condition, shown
from server.rules.engine import lane_numbers
from server.rules.timing import Timing
from server.rules.triggers import base as trigger_events
from server.rules.triggers import get_trigger_type
from server.rules.triggers import registry as trigger_registry
from server.rules.triggers.base import TriggerType as TriggerType  # the faces hold types the catalogue gives them
from server.services import messages, pipelines, rules, triggers, users
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


# ---------------------------------------------------------------- describing a trigger

# The trigger catalogue's headings, by the event a type listens to (a type on a new event goes under "Other").
TRIGGER_GROUPS = {"email": i18n.N_("Email"), "calls": i18n.N_("Calls"), "web": i18n.N_("Web, chat and webhooks"),
                  "element": i18n.N_("Changes to the element"), "sales": i18n.N_("Payments, documents and bookings"),
                  "other": i18n.N_("Other")}
_EVENT_GROUPS = {
    trigger_events.EMAIL_RECEIVED: "email", trigger_events.EMAIL_OPENED: "email", trigger_events.LINK_CLICKED: "email",
    trigger_events.CALL: "calls", trigger_events.FORM_SUBMITTED: "web", trigger_events.CHAT_MESSAGE: "web",
    trigger_events.WEBHOOK: "web", trigger_events.FIELD_CHANGED: "element",
    trigger_events.RESPONSIBLE_CHANGED: "element", trigger_events.TASK_STATUS_CHANGED: "element",
    trigger_events.PAYMENT_RECEIVED: "sales", trigger_events.DOCUMENT_VIEWED: "sales",
    trigger_events.RESOURCE_BOOKED: "sales",
}


def trigger_type(key: str) -> TriggerType[Any] | None:
    return get_trigger_type(key)


def trigger_group(kind: TriggerType[Any]) -> str:
    return _EVENT_GROUPS.get(kind.event, "other")


def trigger_catalogue() -> dict[str, list[TriggerType[Any]]]:
    """Every trigger type by group, in the order of TRIGGER_GROUPS (empty groups stay, the face skips them)."""
    grouped: dict[str, list[TriggerType[Any]]] = {group: [] for group in TRIGGER_GROUPS}
    for kind in trigger_registry().values():
        grouped[trigger_group(kind)].append(kind)
    return grouped


def trigger_settings_specs(kind: TriggerType[Any]) -> list[ParamSpec]:
    """The widgets of a trigger type's settings: the same reader as an action's params."""
    return describe_params(kind.Settings)


@dataclass(frozen=True)
class TriggerCard:
    """A trigger as the board shows it: what makes it fire, in words."""

    trigger: Trigger
    says: str
    title: str  # its type's title
    webhook_path: str | None  # an inbound webhook's secret URL path


def webhook_path(trigger: Trigger) -> str | None:
    return f"/hooks/triggers/{trigger.token}" if trigger.token else None


def trigger_card(trigger: Trigger, names: placeholders.Record | None = None) -> TriggerCard:
    kind = get_trigger_type(trigger.trigger_type)
    return TriggerCard(trigger, triggers.describe_trigger(trigger, names), kind.title if kind else trigger.trigger_type,
                       webhook_path(trigger))


# ---------------------------------------------------------------- the trigger form


@dataclass(frozen=True)
class TriggerForm:
    """What the trigger form shows: where the trigger is, its type's settings widgets, its stored values (a new
    trigger's defaults), the names a condition may compare and the users it may move as."""

    stage: Stage  # with its pipeline loaded
    trigger: Trigger | None  # None: a new trigger
    kind: TriggerType[Any]
    fields: list[ParamSpec]
    values: dict[str, Any]
    condition_fields: list[str]  # the element's names and event.<name> of the type's data
    element_fields: list[str]  # fields a Field changed trigger may watch
    users: list[User]


async def new_trigger_form(stage: Stage, kind: TriggerType[Any], *, actor: Acting) -> TriggerForm:
    values = {"name": i18n.gettext(kind.title), "settings": {}, "condition": [], "allow_back": False, "run_as_id": None,
              "enabled": True}
    return await _trigger_form(stage, kind, None, values, actor=actor)


async def edit_trigger_form(trigger_id: int, *, actor: Acting) -> TriggerForm:
    require_admin(actor)
    trigger = await triggers.get_trigger(trigger_id)
    kind = get_trigger_type(trigger.trigger_type)
    if kind is None:
        raise NotFound("trigger type", trigger.trigger_type)
    values = {"name": trigger.name, "settings": dict(trigger.settings or {}), "condition": trigger.condition or [],
              "allow_back": trigger.allow_back, "run_as_id": trigger.run_as_id, "enabled": trigger.enabled}
    return await _trigger_form(await pipelines.load_stage(trigger.stage_id), kind, trigger, values, actor=actor)


async def _trigger_form(stage: Stage, kind: TriggerType[Any], trigger: Trigger | None, values: dict[str, Any], *,
                        actor: Acting) -> TriggerForm:
    require_admin(actor)
    entity_type = stage.pipeline.entity_type
    element = await placeholders.element_record(entity_type)
    types = await elements.field_types(entity_type)
    return TriggerForm(
        stage=stage, trigger=trigger, kind=kind, fields=trigger_settings_specs(kind), values=values,
        condition_fields=[*_paths(element), *[f"event.{name}" for name in kind.data_fields]],
        element_fields=["title", *[name for name in types if name != "title"]],
        users=await users.list_users(actor=actor),
    )


# ---------------------------------------------------------------- an element's trigger activations


@dataclass(frozen=True)
class ActivationView:
    """One event matched against an element's triggers, in sentences: what happened, and for each trigger
    tried why it fired or not."""

    activation: TriggerActivation
    event: str  # the event in words
    outcome: str  # "“Paid” moved it from “Invoice” to “Won”", "No trigger matched"
    evaluations: list[str]


EVENT_WORDS = {
    trigger_events.EMAIL_RECEIVED: "An email came in", trigger_events.EMAIL_OPENED: "The customer opened an email",
    trigger_events.LINK_CLICKED: "The customer clicked a link", trigger_events.CALL: "A call",
    trigger_events.FORM_SUBMITTED: "A web form was submitted", trigger_events.CHAT_MESSAGE: "A chat message came in",
    trigger_events.WEBHOOK: "A webhook URL was called", trigger_events.FIELD_CHANGED: "A field changed",
    trigger_events.RESPONSIBLE_CHANGED: "The responsible changed",
    trigger_events.PAYMENT_RECEIVED: "A payment was received",
    trigger_events.DOCUMENT_VIEWED: "A document was viewed",
    trigger_events.TASK_STATUS_CHANGED: "A task's status changed",
    trigger_events.RESOURCE_BOOKED: "A resource was booked",
}


def _event_words(activation: TriggerActivation) -> str:
    data = activation.data or {}
    words = EVENT_WORDS.get(activation.event, activation.event.replace("_", " ").capitalize())
    if activation.event == trigger_events.CALL and data.get("direction"):
        return f"A{'n' if data['direction'] in ('incoming', 'outgoing') else ''} {data['direction']} call"
    if activation.event == trigger_events.FIELD_CHANGED and data.get("field"):
        return f"{data['field']} changed from {shown(data.get('old'))} to {shown(data.get('new'))}"
    if activation.event == trigger_events.PAYMENT_RECEIVED and data.get("amount") is not None:
        return f"A payment of {i18n.money(data['amount'], data.get('currency'))} was received"
    if activation.event == trigger_events.TASK_STATUS_CHANGED and data.get("status"):
        return f"The task “{data.get('title')}” became {data['status']}"
    if data.get("subject"):
        return f"{words}: “{data['subject']}”"
    return words


async def explain_activations(activations: list[TriggerActivation]) -> list[ActivationView]:
    """The activations an element's page lists (services/triggers.activations gives them, access checked)."""
    stage_ids = [i for a in activations for i in (a.from_stage_id, a.to_stage_id) if i is not None]
    names = {i: s.name for i, s in (await pipelines.stages_by_id(stage_ids=stage_ids)).items()}

    def stage(stage_id: int | None) -> str:
        return f"“{names.get(stage_id, f'stage {stage_id}')}”" if stage_id is not None else "no stage"

    views = []
    for activation in activations:
        fired = next((e for e in activation.evaluations or [] if e.get("trigger_id") == activation.trigger_id), None)
        name = f"“{fired['name']}”" if fired else "A trigger"
        if activation.outcome == "moved":
            outcome = (f"{name} moved it from {stage(activation.from_stage_id)} to {stage(activation.to_stage_id)}")
        elif activation.outcome == "stopped":
            outcome = (f"{name} matched, but the move to {stage(activation.to_stage_id)} was stopped: "
                       f"{activation.reason}")
        else:
            outcome = f"No trigger matched: it stayed in {stage(activation.from_stage_id)}"
        lines = []
        for e in activation.evaluations or []:
            if e.get("matched"):
                lines.append(f"“{e.get('name')}” (on “{e.get('stage')}”) matched.")
            else:
                lines.append(f"“{e.get('name')}” (on “{e.get('stage')}”) did not match: {e.get('why')}.")
        views.append(ActivationView(activation, _event_words(activation), outcome, lines))
    return views


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


async def _condition_names(pipeline_id: int) -> placeholders.Record:
    """What a condition on the pipeline's elements compares, typed, so its values read as money, dates, …"""
    entity_type = (await pipelines.get_pipeline(pipeline_id)).entity_type
    element = await placeholders.element_record(entity_type)
    return placeholders.Record({**element.fields, entity_type: element, "element": element})


async def board(pipeline_id: int, *, actor: Acting) -> list[tuple[Stage, list[TriggerCard], list[RuleCard]]]:
    """Each stage of the pipeline with its triggers in words and its rules, in order, numbered in lanes as the
    engine runs them."""
    require_admin(actor)
    names = await load_names()
    columns = []
    shape = await _condition_names(pipeline_id)
    for stage in await pipelines.list_stages(pipeline_id):
        stage_rules = await rules.list_rules(stage.id)
        cards = []
        for rule, lane in zip(stage_rules, lane_numbers([r.lane for r in stage_rules]), strict=True):
            action = get_action(rule.action_type)
            cards.append(RuleCard(rule, lane + 1, describe(action, rule.params, names), timing_text(rule.timing),
                                  describe_condition(rule.condition, shape), action.group if action else ""))
        columns.append((stage, [trigger_card(t, shape) for t in await triggers.list_triggers(stage.id)], cards))
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
    values = {"title": i18n.gettext(action.title), "lane": "parallel", "params": {}, "timing": {"kind": "immediately"},
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
