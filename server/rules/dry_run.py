"""Dry run: what would happen if an element entered a stage now, by reads only.

For each rule of the stage's revision in force: the condition with the values it sees, the due time (working time
included), the params rendered with the element's real context, and the effect in words from the action's
`simulate`, which gets a `PreviewContext` (rules/preview.py): no write, no send, no outside connection can be
reached from it. Rules further down a lane are computed as if the rules above finished at their due time; what
earlier rules would output appears as a placeholder ("‹offer.document_id›").
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from server import clock
from server.errors import ActionError, NotFound
from server.models import Element, Stage, Trigger, User
from server.rules import conditions, elements, engine, notifications, revisions
from server.rules.actions import get_action
from server.rules.actions.base import FIELD_MAP, TEMPLATE, Action, Names, load_names
from server.rules.templates import render_async
from server.rules.timing import Timing, WorkingTime, compute_due, zone
from server.rules.triggers import get_trigger_type


@dataclass(frozen=True)
class RulePreview:
    """One rule of the stage as the dry run sees it."""

    rule_id: int
    key: str
    title: str
    action_type: str
    action_title: str
    lane: int  # 1, 2, … as the board numbers them
    enabled: bool
    timing: str  # the timing in words ("after 2 hours, in working time")
    due_at: datetime | None  # None: the rule would be skipped (empty anchor) or is disabled
    due: str  # the due time in words, or why there is none
    condition_met: bool | None  # None: the rule has no condition
    condition: str  # the outcome in words, with the values seen
    params: dict[str, Any]  # rendered against the element
    effect: str  # what the action would do, in words
    problem: str | None = None  # the error the run would fail with

    @property
    def would_act(self) -> bool:
        return self.enabled and self.due_at is not None and self.condition_met is not False and self.problem is None

    @property
    def sentence(self) -> str:
        """The rule's outcome in one sentence a person reads."""
        if not self.enabled:
            return f"“{self.title}” is disabled: it would not run."
        if self.due_at is None:
            return f"“{self.title}” would be skipped: {self.due}."
        if self.condition_met is False:
            return f"“{self.title}” would be skipped, {self.condition}."
        if self.problem is not None:
            return f"“{self.title}” would fail, {self.due}: {self.problem}."
        return f"“{self.title}” {self.due}: {self.effect}."


@dataclass(frozen=True)
class DryRun:
    element_type: str
    element_id: int
    element_title: str
    stage_id: int
    stage_name: str
    revision: int
    at: datetime  # the moment the element is pretended to enter
    rules: list[RulePreview] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)  # the stage's triggers in words


@dataclass
class _Preview:
    """The engine's side of `PreviewContext`: reads, nothing else (no method here writes or sends)."""

    element_type: str
    element: Element
    actor_id: int | None
    names: Names
    now: datetime
    company: WorkingTime
    data: dict[str, Any]
    _timezones: dict[int, str] = field(default_factory=dict)

    async def context(self) -> dict[str, Any]:
        return self.data

    async def audience(self, user_ids: Iterable[int] = (), roles: Iterable[str] = ()) -> list[int]:
        return await notifications.audience(user_ids, roles)

    async def timezone_of(self, user_id: int | None) -> str:
        if user_id is None:
            return self.company.timezone
        if user_id not in self._timezones:
            user = await User.get_or_none(id=user_id)
            self._timezones[user_id] = user.timezone if user else self.company.timezone
        return self._timezones[user_id]

    def when(self, moment: datetime, tz_name: str | None = None) -> str:
        return moment_words(moment, tz_name or self.company.timezone)


def moment_words(moment: datetime, tz_name: str) -> str:
    """"Thu 3 Dec 2026 10:00 Europe/Berlin": a due time as a person reads it."""
    local = moment.astimezone(zone(tz_name))
    return f"{local:%a} {local.day} {local:%b %Y %H:%M} {tz_name}"


def _outputs_placeholder(rule: dict[str, Any]) -> dict[str, str]:
    action = get_action(rule["action_type"])
    return {name: f"‹{rule['key']}.{name}›" for name in (action.outputs if action else ())}


async def _render(params: Any, context: dict[str, Any]) -> Any:
    """Template fields and templated field-map values rendered, as the engine (and the actions) would."""
    update: dict[str, Any] = {}
    for name, info in type(params).model_fields.items():
        value = getattr(params, name)
        if TEMPLATE in info.metadata and isinstance(value, str) and "{" in value:
            update[name] = await render_async(value, context)
        elif FIELD_MAP in info.metadata and isinstance(value, dict):
            update[name] = {k: await render_async(v, context) if isinstance(v, str) and "{" in v else v
                            for k, v in value.items()}
    return params.model_copy(update=update) if update else params


async def stage_triggers(stage: Stage) -> list[str]:
    """The stage's enabled triggers in words: what moves an element here."""
    lines = []
    for trigger in await Trigger.filter(stage_id=stage.id, enabled=True).order_by("position", "id"):
        kind = get_trigger_type(trigger.trigger_type)
        if kind is None:
            lines.append(f"“{trigger.name}”: unknown trigger type {trigger.trigger_type}")
            continue
        try:
            words = kind.describe(kind.Settings.model_validate(trigger.settings or {}))
        except ValidationError:
            words = f"When {kind.title.lower()}"
        if trigger.condition:
            words += f", {conditions.describe_condition(trigger.condition)}"
        lines.append(f"“{trigger.name}”: {words}")
    return lines


async def dry_run(element_type: str, element_id: int, stage_id: int, *, at: datetime | None = None) -> DryRun:
    """What entering `stage_id` now would do to the element, rule by rule. Reads only."""
    stage = await Stage.get_or_none(id=stage_id)
    if stage is None:
        raise NotFound("stage", stage_id)
    element = await elements.load(element_type, element_id)
    now = at or clock.utcnow()
    revision, rules = await revisions.rules_in_force(stage)
    timing = await engine.timing_context(element_type, element)
    data = timing.data
    base_context: dict[str, Any] = {
        **data, element_type: data, "element": data,
        "now": now.isoformat(timespec="seconds"), "today": now.date().isoformat(),
    }
    names = await load_names()
    ordered = sorted(rules, key=lambda r: (r["position"], r["id"]))
    lanes = engine.lane_numbers([r["lane"] for r in ordered])
    earlier: dict[str, dict[str, str]] = {}
    lane_ends: dict[int, datetime | None] = {}
    previews = []
    for rule, lane in zip(ordered, lanes, strict=True):
        context = {**base_context, "rules": dict(earlier)}
        preview = _Preview(element_type=element_type, element=element,
                           actor_id=rule.get("run_as_id") or element.responsible_id, names=names, now=now,
                           company=timing.company, data=context)
        follows = lane in lane_ends
        base = lane_ends.get(lane, now) if follows else now
        item = await _preview_rule(rule, lane, preview, base, timing, follows=follows)
        lane_ends[lane] = item.due_at or base
        earlier[rule["key"]] = _outputs_placeholder(rule)
        previews.append(item)
    return DryRun(element_type=element_type, element_id=element.id, element_title=str(getattr(element, "title", "")),
                  stage_id=stage.id, stage_name=stage.name, revision=revision, at=now, rules=previews,
                  triggers=await stage_triggers(stage))


async def _preview_rule(rule: dict[str, Any], lane: int, preview: _Preview, base: datetime | None,
                        timing_context: Any, *, follows: bool) -> RulePreview:
    action = get_action(rule["action_type"])
    timing = Timing.model_validate(rule.get("timing") or {})
    common = {"rule_id": rule["id"], "key": rule["key"], "title": rule["title"], "action_type": rule["action_type"],
              "action_title": action.title if action else rule["action_type"], "lane": lane + 1,
              "enabled": bool(rule.get("enabled", True)), "timing": timing.describe()}
    due = compute_due(timing, base=base or preview.now, element=timing_context.data,
                             company=timing_context.company, responsible=timing_context.responsible)
    if due.at is None:
        due_words = due.skip_reason or "no due time"
    else:
        when = "now" if due.at <= preview.now else preview.when(due.at, _zone_of(timing, timing_context))
        due_words = (f"after the rule above, due {when}" if follows else
                     "would run now" if when == "now" else f"would run {when}")
        if follows and when == "now":
            due_words = "would run after the rule above"
    condition = rule.get("condition") or []
    met: bool | None = None
    condition_words = "no condition"
    if condition:
        met, condition_words = conditions.evaluate(
            [[conditions.Comparison.model_validate(c) for c in group] for group in condition], preview.data)
    if action is None:
        return RulePreview(**common, due_at=due.at, due=due_words, condition_met=met, condition=condition_words,
                           params=rule.get("params") or {}, effect="nothing (unknown action type)",
                           problem=f"unknown action type '{rule['action_type']}'")
    params: dict[str, Any] = rule.get("params") or {}
    problem = None
    effect = ""
    try:
        rendered = await _render(action.Params.model_validate(params), preview.data)
        params = rendered.model_dump(mode="json")
        effect = await _simulate(action, preview, rendered)
        effect = effect[:1].upper() + effect[1:]
    except (ActionError, ValidationError, NotFound) as exc:
        problem = str(exc)
    return RulePreview(**common, due_at=due.at, due=due_words, condition_met=met, condition=condition_words,
                       params=params, effect=effect, problem=problem)


async def _simulate(action: Action[Any], preview: _Preview, params: Any) -> str:
    return await action.simulate(preview, params)


def _zone_of(timing: Timing, timing_context: Any) -> str:
    responsible = timing_context.responsible
    if timing.working_time == "responsible" and responsible is not None:
        return str(responsible.timezone)
    return str(timing_context.company.timezone)
