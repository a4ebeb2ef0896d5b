"""Stage runs and rule runs: entering and leaving stages, lanes, due times, execution, loop guard.

Every status change of a rule run is a compare-and-set on (status, attempts), and an action's
effects commit in the same transaction as its run's final status: a run delivered twice, or
taken over after its lease expired, has its effect once.
"""

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from tortoise.expressions import Q

from server import clock, events, lease
from server.channels import outbox
from server.config import settings
from server.db import transaction
from server.kinds import Lane, RunStatus, StageRunStatus
from server.errors import ActionError, LoopStopped, NotFound, TransientActionError, ValidationFailed
from server.models import (
    ELEMENT_MODELS,
    AuditEntry,
    Element,
    FeedPost,
    Message,
    Notification,
    RuleRun,
    Stage,
    StageRun,
    TimelineEntry,
    TriggerActivation,
    User,
)
from server.rules import activities, conditions, dispatch, elements, feed, notifications, pausing, revisions, triggering
from server.rules.actions import get_action, registry, released_by
from server.rules.actions.base import TEMPLATE, Action, Block, Skipped
from server.rules.context import RunContext
from server.rules.metadata import MARKER_COLUMN, METADATA
from server.rules.triggers.base import FIELD_CHANGED, RESPONSIBLE_CHANGED
from server.rules.templates import render_async
from server.rules.timing import Timing, WorkingTime, compute_due

log = logging.getLogger(__name__)

UNFINISHED = (RunStatus.scheduled, RunStatus.queued, RunStatus.running, RunStatus.waiting)
FINISHED = (RunStatus.succeeded, RunStatus.skipped, RunStatus.failed, RunStatus.cancelled, RunStatus.stopped)


@dataclass(frozen=True)
class Cause:
    """Why an element enters a stage. Automatic moves continue the chain of the run that made them.

    Built here only: a person's move starts a chain (`enter_stage`), a rule's continues one (`EngineRunContext`).
    """

    text: str
    actor_id: int | None = None
    chain_id: str | None = None
    depth: int = 0
    rule_run_id: int | None = None


async def run_event(run: RuleRun, status: RunStatus, **extra: Any) -> None:
    """A rule run changed status: an event for `ruleRuns` subscribers, in the change's transaction."""
    await events.emit("rule_run", {
        "id": run.id, "status": status, "rule_id": run.rule_id, "rule_key": run.rule_key, "title": run.title,
        "action_type": run.action_type, "stage_id": run.spec.get("stage_id"), "stage_run_id": run.stage_run_id,
        "attempts": run.attempts, **extra,
    }, element_type=run.element_type, element_id=run.element_id)


class Superseded(Exception):
    """This attempt lost its run (cancelled, or taken over after its lease expired): roll back."""


# ---------------------------------------------------------------- entering and leaving stages


async def enter_stage(element_type: str, element: Element, stage: Stage, *, reason: str,
                      actor_id: int | None = None) -> StageRun:
    """Move `element` into `stage` on a person's behalf (`reason`: created, moved) and start its rules; a new
    chain of automatic moves begins. Call inside `transaction()`. "created": the element was made in this
    transaction, so it has no stay to leave (none is looked for)."""
    return await _enter_stage(element_type, element, stage, cause=Cause(reason, actor_id=actor_id),
                              new_element=reason == CREATED)


CREATED = "created"  # `enter_stage`'s reason for an element made in the same transaction


async def fire_triggers(occurrence: triggering.Occurrence) -> list[TriggerActivation]:
    """An event happened: each element it reaches moves into the stage of the first matching trigger
    (`rules/triggering.py` decides), and each evaluation is recorded. Call inside the event's transaction.

    A loop the move would continue (a trigger and a Change stage rule sending the element back and forth) ends
    the rule run that caused the event as `stopped`; from any other cause it is recorded on the activation."""
    activations = []
    for element_type, element_id in await triggering.reached(occurrence):
        decision = await triggering.decide(occurrence, element_type, element_id)
        if decision is None:
            continue
        activation, winner, target = decision.activation, decision.winner, decision.target
        if winner is not None and target is not None:
            try:
                await _enter_stage_by_trigger(element_type, decision.element, target, trigger=winner.name,
                                              actor_id=winner.run_as_id or decision.element.responsible_id,
                                              rule_run_id=occurrence.rule_run_id)
            except LoopStopped as exc:
                if occurrence.rule_run_id is not None:
                    raise
                activation.outcome, activation.reason = "stopped", str(exc)
            else:
                activation.outcome, activation.reason = "moved", f"“{winner.name}” moved it to “{target.name}”"
        await activation.save()
        activations.append(activation)
    return activations


async def _enter_stage_by_trigger(element_type: str, element: Element, stage: Stage, *, trigger: str,
                                  actor_id: int | None, rule_run_id: int | None) -> StageRun:
    """An event a rule run caused (a field it changed) continues that run's chain, so the loop guard sees a
    trigger and a Change stage rule sending an element back and forth; any other event starts a chain."""
    text = f"trigger '{trigger}'"
    if rule_run_id is None:
        return await _enter_stage(element_type, element, stage, cause=Cause(text, actor_id=actor_id))
    run = await RuleRun.get(id=rule_run_id)
    stage_run = await StageRun.get(id=run.stage_run_id)
    return await _enter_stage(element_type, element, stage, cause=Cause(
        f"{text} (after rule '{run.title}', run {run.id})", actor_id=actor_id, chain_id=stage_run.chain_id,
        depth=stage_run.depth + 1, rule_run_id=run.id))


async def _enter_stage(element_type: str, element: Element, stage: Stage, *, cause: Cause,
                       new_element: bool = False) -> StageRun:
    if cause.chain_id is not None:
        limit = settings().max_chain_depth
        if cause.depth > limit:
            raise LoopStopped(f"stopped: loop (chain of automatic moves deeper than {limit})")
        if await StageRun.exists(chain_id=cause.chain_id, element_type=element_type,
                                 element_id=element.id, stage_id=stage.id):
            raise LoopStopped(f"stopped: loop ({element_type} already entered stage '{stage.name}' in this chain)")
    current = None if new_element else await StageRun.filter(
        element_type=element_type, element_id=element.id, status=StageRunStatus.active
    ).first()
    previous_stage = await METADATA.stage(element.stage_id) if element.stage_id and current is not None else None
    if current is not None:
        await leave_stage(current, reason=f"left stage for '{stage.name}'", except_run_id=cause.rule_run_id)
    if element.stage_id != stage.id:
        element.stage_id = stage.id
        element.pipeline_id = stage.pipeline_id
        element.waiting_for_customer = False
        await element.save()
    if previous_stage is not None and current is not None:
        await AuditEntry.create(
            element_type=element_type, element_id=element.id, field="stage",
            old_value=json.dumps(previous_stage.code), new_value=json.dumps(stage.code), actor_id=cause.actor_id, rule_run_id=cause.rule_run_id,
        )
        await elements.add_timeline_entry(
            element_type, element.id, "history",
            f"Stage changed from '{previous_stage.name}' to '{stage.name}' ({cause.text})",
            author_id=cause.actor_id, rule_run_id=cause.rule_run_id,
        )
        await elements.element_event(element_type, element, "moved", from_stage_id=previous_stage.id,
                                     actor_id=cause.actor_id, rule_run_id=cause.rule_run_id)
    revision, rules = await revisions.rules_in_force(stage)
    stage_run = await StageRun.create(
        element_type=element_type, element_id=element.id, stage_id=stage.id, revision=revision,
        chain_id=cause.chain_id or str(uuid.uuid4()), depth=cause.depth, cause=cause.text[:255],
        actor_id=cause.actor_id, caused_by_rule_run_id=cause.rule_run_id,
    )
    await _create_rule_runs(stage_run, element, [r for r in rules if r.get("enabled", True)])
    return stage_run


async def leave_stage(stage_run: StageRun, *, reason: str, except_run_id: int | None = None) -> None:
    """Cancel every unfinished run of the stay; the run making the move finishes on its own."""
    now = clock.utcnow()
    query = RuleRun.filter(stage_run_id=stage_run.id, status__in=UNFINISHED)
    if except_run_id is not None:
        query = query.exclude(id=except_run_id)
    runs = await query
    await query.update(status=RunStatus.cancelled, reason=f"cancelled: {reason}", finished_at=now, lease_until=None)
    for run in runs:
        await run_event(run, RunStatus.cancelled, reason=f"cancelled: {reason}")
    await StageRun.filter(id=stage_run.id).update(status=StageRunStatus.left, left_at=now)
    await activities.complete_on_stage_change(stage_run.element_type, stage_run.element_id)


async def cancel_element_runs(element_type: str, element_id: int, *, reason: str,
                              except_run_id: int | None = None) -> int:
    """The element is going away: end its stay and cancel pending runs. The run log stays.

    `except_run_id`: the Delete element run doing this, which finishes on its own.
    """
    now = clock.utcnow()
    query = RuleRun.filter(element_type=element_type, element_id=element_id, status__in=UNFINISHED)
    if except_run_id is not None:
        query = query.exclude(id=except_run_id)
    runs = await query
    cancelled = await query.update(status=RunStatus.cancelled, reason=f"cancelled: {reason}", finished_at=now, lease_until=None)
    for run in runs:
        await run_event(run, RunStatus.cancelled, reason=f"cancelled: {reason}")
    await StageRun.filter(element_type=element_type, element_id=element_id, status=StageRunStatus.active).update(
        status=StageRunStatus.deleted, left_at=now
    )
    return cancelled


def lane_numbers(lanes: Sequence[str]) -> list[int]:
    """The lane (0, 1, …) of each rule of a stage, given in stage order: "after_previous" joins the lane
    of the rule above; any other rule, and the first whatever it says, starts a new lane."""
    numbers: list[int] = []
    for lane in lanes:
        if numbers and lane == Lane.after_previous:
            numbers.append(numbers[-1])
        else:
            numbers.append(numbers[-1] + 1 if numbers else 0)
    return numbers


async def _create_rule_runs(stage_run: StageRun, element: Element, rules: list[dict[str, Any]]) -> None:
    """A run per rule, in lanes, written in one INSERT per step of the longest lane (one for a stage of
    parallel rules). A lane's first run that is due at once (immediate, no working hours) is written with
    its due time, and claimed in this transaction when a worker takes claimed runs (`dispatch.RUNS.taker`):
    written queued with its lease and handed over after the commit, with no claim of its own. The others get
    their due time from `_make_eligible`. Each run's spec says whether a run follows it in its lane
    (`FOLLOWED`), so finishing the last of a lane looks for no follower."""
    now = clock.utcnow()
    ordered = sorted(rules, key=lambda r: (r["position"], r["id"]))
    lanes = lane_numbers([r["lane"] for r in ordered])
    runs: list[RuleRun] = []
    for index, (rule, lane) in enumerate(zip(ordered, lanes, strict=True)):
        follows = index > 0 and lanes[index - 1] == lane
        spec = {**rule, FOLLOWED: index + 1 < len(lanes) and lanes[index + 1] == lane}
        runs.append(RuleRun(
            stage_run_id=stage_run.id, element_type=stage_run.element_type, element_id=element.id,
            rule_id=rule["id"], rule_key=rule["key"], action_type=rule["action_type"], title=rule["title"],
            position=rule["position"], lane=lane, after_run_id=None, spec=spec, status=RunStatus.scheduled,
            due_at=now if not follows and not _timing_needs_context(spec) else None,
            reason=f"waits for '{ordered[index - 1]['title']}' to finish" if follows else None,
        ))
    due_now = [run for run in runs if run.due_at is not None]
    if due_now and dispatch.RUNS.taker is not None:  # a paused rule's due run waits to be claimed after its resume
        paused = await METADATA.paused_rule_ids()
        due_now = [run for run in due_now if run.rule_id not in paused]
    claimed = dispatch.RUNS.taker is not None and bool(due_now)
    if claimed:
        lease_until = await queued_lease_until(now, joining=len(due_now))
        for run in due_now:
            run.status, run.lease_until = RunStatus.queued, lease_until
    # Each step inserts the runs whose lane predecessor (if any) has its id by now.
    step = [index for index in range(len(runs)) if index == 0 or lanes[index - 1] != lanes[index]]
    while step:
        await _insert_runs([runs[index] for index in step])
        step = [index + 1 for index in step if index + 1 < len(runs) and lanes[index + 1] == lanes[index]]
        for index in step:
            runs[index].after_run_id = runs[index - 1].id
    for run in runs:  # a new run is "scheduled" to subscribers, claimed or not (the claim has no event)
        await run_event(run, RunStatus.scheduled)
    if claimed:
        dispatch.RUNS.claimed([run.id for run in due_now])
    else:
        dispatch.RUNS.now([run.id for run in due_now])
    pending = [run for run in runs if run.due_at is None and run.after_run_id is None]
    if pending:
        timing_context = await _TimingContext.load(stage_run.element_type, element)
        for run in pending:
            await _make_eligible(run, base=now, timing_context=timing_context)


# Every column of a rule run but its id, in the order of `_insert_runs`' VALUES.
_RUN_COLUMNS = ("stage_run_id", "element_type", "element_id", "rule_id", "rule_key", "action_type", "title",
                "position", "lane", "after_run_id", "spec", "status", "due_at", "attempts", "lease_until",
                "waiting_since", "outputs", "error", "reason", "created_at", "started_at", "finished_at")


async def _insert_runs(runs: list[RuleRun]) -> None:
    """One INSERT … RETURNING for `runs`; each gets its id (ids follow the rows' order on both backends: one
    statement, one sequence or AUTOINCREMENT counter)."""
    connection = RuleRun._meta.db
    fields = RuleRun._meta.fields_map
    values: list[Any] = []
    for run in runs:
        values += [fields[name].to_db_value(getattr(run, name), run) for name in _RUN_COLUMNS]
    width = len(_RUN_COLUMNS)
    if connection.capabilities.dialect == "postgres":
        tuples = ", ".join(
            "(" + ", ".join(f"${i * width + j + 1}" for j in range(width)) + ")" for i in range(len(runs)))
    else:
        tuples = ", ".join("(" + ", ".join("?" * width) + ")" for _ in runs)
    columns = ", ".join(f'"{name}"' for name in _RUN_COLUMNS)
    returned = await connection.execute_query_dict(
        f'INSERT INTO "rule_run" ({columns}) VALUES {tuples} RETURNING "id"', values)
    for run, found in zip(runs, sorted(r["id"] for r in returned), strict=True):
        run.id = found
        run._saved_in_db = True


async def queued_lease_until(now: datetime, *, joining: int) -> datetime:
    """When a run sent to the broker now counts as lost if no worker has started it: the base wait, plus the
    time the workers need for every run queued ahead of it (a fixed wait would re-send a long backlog over
    and over while the workers are still draining it). Call inside the claim's transaction."""
    config = settings()
    ahead = await QUEUED.ahead()
    QUEUED.joined(joining)
    backlog_ms = (ahead + joining) * config.queued_lease_per_run_ms
    return now + timedelta(seconds=config.queued_lease_s, milliseconds=backlog_ms)


class QueuedFigure:
    """This process's figure of the runs queued, for the queued lease: counted at most every `max_age_s` (not on
    every create), plus the runs this process queued since. A figure a little off moves a lease by a few
    `queued_lease_per_run_ms`, never whether a run is sent."""

    def __init__(self, *, max_age_s: float = 0.25) -> None:
        self.max_age_s = max_age_s
        self.count = 0
        self.counted_at: float | None = None

    async def ahead(self) -> int:
        now = time.monotonic()
        if self.counted_at is None or now - self.counted_at >= self.max_age_s:
            self.count = await RuleRun.filter(status=RunStatus.queued).count()
            self.counted_at = now
        return self.count

    def joined(self, runs: int) -> None:
        self.count += runs


QUEUED = QueuedFigure()


# ---------------------------------------------------------------- due times and lanes


@dataclass
class _TimingContext:
    data: dict[str, Any]
    company: WorkingTime
    responsible: WorkingTime | None

    @classmethod
    async def load(cls, element_type: str, element: Element) -> "_TimingContext":
        calendar = await METADATA.work_calendar()
        company = (
            WorkingTime(calendar.timezone, tuple(calendar.work_days), calendar.day_start, calendar.day_end,
                        frozenset(calendar.holidays))
            if calendar else WorkingTime()
        )
        responsible = None
        if element.responsible_id:
            user = await User.get_or_none(id=element.responsible_id)
            if user is not None and user.working_hours:
                responsible = WorkingTime.from_user(user.timezone, user.working_hours)
        data = await elements.build_context(element_type, element)
        return cls(data, company, responsible)


async def timing_context(element_type: str, element: Element) -> _TimingContext:
    """The calendar, the responsible's working hours and the element's data its due times are computed from
    (read only: a dry run computes due times with it too)."""
    return await _TimingContext.load(element_type, element)


FOLLOWED = "followed"  # in a run's spec: a run of the same stay waits for it in its lane


def _timing_needs_context(spec: dict[str, Any]) -> bool:
    """An immediate run outside working hours' rules is due at its base: no calendar, no element data."""
    timing = Timing.model_validate(spec.get("timing") or {})
    return timing.kind != "immediately" or timing.working_time is not None


def _needs_timing_context(run: RuleRun) -> bool:
    return _timing_needs_context(run.spec)


def _due(run: RuleRun, base: datetime, timing_context: _TimingContext | None) -> tuple[datetime | None, str | None]:
    timing = Timing.model_validate(run.spec.get("timing") or {})
    if timing_context is None:  # only for runs that need none (_needs_timing_context)
        return base, None
    due = compute_due(timing, base=base, element=timing_context.data,
                      company=timing_context.company, responsible=timing_context.responsible)
    return due.at, due.skip_reason


async def _make_eligible(run: RuleRun, *, base: datetime, timing_context: _TimingContext | None = None) -> None:
    """The run may start (or its anchor moved): give it a due time, or skip it when its anchor date is empty."""
    if timing_context is None and _needs_timing_context(run):
        timing_context = await _TimingContext.load(run.element_type, await elements.load(run.element_type, run.element_id))
    due_at, skip_reason = _due(run, base, timing_context)
    if due_at is None:
        await RuleRun.filter(id=run.id, status=RunStatus.scheduled).update(
            status=RunStatus.skipped, reason=f"skipped: {skip_reason}", finished_at=clock.utcnow()
        )
        run.status = RunStatus.skipped
        await advance_lane(run)
        return
    await RuleRun.filter(id=run.id, status=RunStatus.scheduled).update(due_at=due_at, reason=None)
    if due_at <= clock.utcnow():
        dispatch.RUNS.now([run.id])


async def advance_lane(finished: RuleRun) -> None:
    """The rule after `finished` in its lane may start now (or the lane stops after a failure)."""
    if finished.spec.get(FOLLOWED) is False:  # runs made before specs said so have no key: look
        return
    follower = await RuleRun.filter(after_run_id=finished.id, status=RunStatus.scheduled, due_at=None).first()
    if follower is None:
        return
    if finished.status == RunStatus.failed and finished.spec.get("stop_lane_on_failure"):
        now = clock.utcnow()
        while follower is not None:
            reason = f"cancelled: lane stopped because '{finished.title}' failed"
            if await RuleRun.filter(id=follower.id, status=RunStatus.scheduled).update(
                status=RunStatus.cancelled, reason=reason, finished_at=now,
            ):
                await run_event(follower, RunStatus.cancelled, reason=reason)
            follower = await RuleRun.filter(after_run_id=follower.id, status=RunStatus.scheduled).first()
        return
    await _make_eligible(follower, base=clock.utcnow())


async def element_changed(element_type: str, element: Element, changes: Sequence[elements.FieldChange], *,
                          rule_run_id: int | None = None) -> None:
    """Fields of the element changed (by a person or a rule run): runs anchored on a changed date move, and
    "field changed" / "responsible changed" triggers fire. Call inside the change's transaction."""
    await reschedule_anchored(element_type, element, [change.name for change in changes])
    for change in changes:
        events = [triggering.Event(FIELD_CHANGED, {"field": change.name, "old": change.old, "new": change.new})]
        if change.name == "responsible":
            events.append(triggering.Event(RESPONSIBLE_CHANGED, {"old": change.old, "new": change.new}))
        for event in events:
            await fire_triggers(triggering.Occurrence(event, element_type=element_type, element_id=element.id,
                                                      rule_run_id=rule_run_id))


_DATE_TYPES = ("date", "datetime")


async def reschedule_anchored(element_type: str, element: Element, changed_fields: list[str]) -> None:
    """Live date anchors: runs timed against a changed date field get a new due time. Built-in fields that are
    no dates (title, amount, currency, …) anchor no run: a change of only those looks for none."""
    builtin = elements.BUILTIN_FIELDS[element_type]
    if all(name in builtin and builtin[name] not in _DATE_TYPES for name in changed_fields):
        return
    waiting = await RuleRun.filter(
        element_type=element_type, element_id=element.id, status=RunStatus.scheduled, due_at__not_isnull=True
    )
    anchored = [r for r in waiting if (r.spec.get("timing") or {}).get("field") in changed_fields]
    if not anchored:
        return
    timing_context = await _TimingContext.load(element_type, element)
    for run in anchored:
        base = run.created_at
        if run.after_run_id:
            before = await RuleRun.get_or_none(id=run.after_run_id)
            base = before.finished_at if before and before.finished_at else base
        await _make_eligible(run, base=base, timing_context=timing_context)


# ---------------------------------------------------------------- what an action may do


@dataclass
class EngineRunContext:
    """The engine's side of the `RunContext` port (rules/context.py): each effect an action has, done here."""

    run: RuleRun
    element_type: str
    element: Element
    actor_id: int | None  # the user on whose behalf the rule acts
    load_context: Callable[[], Awaitable[dict[str, Any]]] | None = None
    _context: dict[str, Any] | None = field(default=None, repr=False)

    async def context(self) -> dict[str, Any]:
        if self._context is None:
            self._context = await self.load_context() if self.load_context else {}
        return self._context

    async def add_entry(self, kind: str, text: str, *, author_id: int | None = None) -> TimelineEntry:
        return await elements.add_timeline_entry(self.element_type, self.element.id, kind, text,
                                                 author_id=author_id or self.actor_id, rule_run_id=self.run.id)

    async def change_fields(self, changes: dict[str, Any], *, actor_id: int | None = None) -> list[str]:
        changed = await elements.apply_changes(self.element_type, self.element, changes,
                                               actor_id=actor_id or self.actor_id, rule_run_id=self.run.id)
        await element_changed(self.element_type, self.element, changed, rule_run_id=self.run.id)
        return [change.name for change in changed]

    async def audience(self, user_ids: Iterable[int] = (), roles: Iterable[str] = ()) -> list[int]:
        return await notifications.audience(user_ids, roles)

    async def notify(self, recipient_ids: Iterable[int], text: str, *, kind: str,
                     sender_id: int | None = None) -> list[Notification]:
        return await notifications.notify(recipient_ids, text, sender_id=sender_id or self.actor_id, kind=kind,
                                          element_type=self.element_type, element_id=self.element.id,
                                          rule_run_id=self.run.id)

    async def post_to_feed(self, *, title: str, body: str, author_id: int | None = None, user_ids: Iterable[int] = (),
                           roles: Iterable[str] = (), everyone: bool = False) -> FeedPost:
        return await feed.post(title=title, body=body, author_id=author_id or self.actor_id, user_ids=user_ids,
                               roles=roles, everyone=everyone, element_type=self.element_type,
                               element_id=self.element.id, rule_run_id=self.run.id)

    async def move_to(self, stage: Stage, *, actor_id: int | None = None) -> None:
        cause = await self._chain(f"rule '{self.run.title}' (run {self.run.id})", actor_id or self.actor_id)
        await _enter_stage(self.element_type, self.element, stage, cause=cause)

    async def enter_stage(self, element_type: str, element: Element, stage: Stage, *, reason: str) -> None:
        cause = await self._chain(f"{reason} by rule '{self.run.title}' (run {self.run.id})", self.actor_id)
        await _enter_stage(element_type, element, stage, cause=cause)

    async def delete_element(self, *, reason: str) -> None:
        await cancel_element_runs(self.element_type, self.element.id, reason=reason, except_run_id=self.run.id)
        await self.element.delete()

    async def fire_event(self, kind: str, data: dict[str, Any]) -> None:
        await fire_triggers(triggering.Occurrence(triggering.Event(kind, data), element_type=self.element_type,
                                                  element_id=self.element.id, rule_run_id=self.run.id))

    async def send_message(self, *, channel: str, recipient: str, text: str, sender: str, sender_name: str = "",
                           subject: str = "", html: str = "", meta: dict[str, Any] | None = None) -> Message:
        return await outbox.queue(channel=channel, recipient=recipient, text=text, sender=sender,
                                  sender_name=sender_name, subject=subject, html=html, meta=meta,
                                  element_type=self.element_type, element_id=self.element.id,
                                  rule_run_id=self.run.id, author_id=self.actor_id)

    async def _chain(self, text: str, actor_id: int | None) -> Cause:
        """A move made by this run: one step further along the chain of the stay it runs in."""
        stage_run = await StageRun.get(id=self.run.stage_run_id)
        return Cause(text=text, actor_id=actor_id, chain_id=stage_run.chain_id, depth=stage_run.depth + 1,
                     rule_run_id=self.run.id)


# ---------------------------------------------------------------- executing a run


def _one_process_writes() -> bool:
    """SQLite: one process writes, one transaction at a time (BEGIN IMMEDIATE)."""
    return RuleRun._meta.db.capabilities.dialect == "sqlite"


class _RolledBack(Exception):
    """The one-transaction attempt of a database-only run raised, and its transaction rolled back."""


async def execute(run_id: int) -> RunStatus | None:
    """Run one queued rule run (what the worker actor calls). Returns the final status, if any.

    A run of a database-only action (`Action.database_only`) that is not ending a wait starts, acts and
    finishes in one transaction: its effects, statuses and events commit together or not at all, so a
    process that dies meanwhile leaves it queued, to be sent again when its queued lease runs out, and a
    cancel either comes first (the start's compare-and-set finds it cancelled) or finds it finished. When
    the action raises, the attempt is recorded as any other: started, then failed, retried or stopped.
    Any other run commits its start and keeps a lease while it acts.

    Only on SQLite (`_one_process_writes`): on PostgreSQL worker hosts are processes of their own, and a
    run held in the open transaction of a frozen host could not be taken over when a lease runs out, only
    once the server ends that transaction (tests/workers/test_faults.py freezes a host to check this)."""
    try:
        async with transaction():
            started = await _take(run_id)
            if started is None:
                return None
            run, attempt = started
            action = get_action(run.action_type)
            if action is not None and action.database_only and run.waiting_since is None and _one_process_writes():
                try:
                    return await _perform(run, action, attempt)
                except Exception as exc:
                    raise _RolledBack() from exc
    except _RolledBack as rolled_back:
        error = rolled_back.__cause__
        assert isinstance(error, Exception)
        if isinstance(error, Superseded):
            return None
        started = await _start(run_id)
        if started is None:
            return None
        return await _outcome_of(*started, error)
    return await _execute_started(run, attempt)


TOGETHER = 16  # at most this many handed-over runs act in one transaction (a commit's runs come in stage order)


async def execute_together(run_ids: Sequence[int]) -> list[int]:
    """Run together what runs together of the queued runs a commit handed over (`dispatch.RUNS.taker`), in
    their order; returns the others, each to be run on its own (`execute`), at the same time as the others.

    Together: the database-only ones not ending a wait. One start UPDATE for all, the element read once (each
    run sees the changes of the runs before it, as one after the other), one finish per run, the events in one
    INSERT. The lanes hold as one run at a time: only lane leaders are handed over, and a follower is made due
    by its leader's finish, to be claimed after the commit.

    SQLite (one process writes): start, act and finish in ONE transaction. If any raises, it all rolls back
    (they are queued again, with their lease) and every one is returned to run on its own, so every effect
    happens once: the failing run is recorded as any failing attempt, its siblings act in transactions of their own.

    PostgreSQL: the start commits (running, with a lease), then one transaction acts for all under one
    heartbeat, so a frozen host's runs are taken over when their lease ends (`execute`). If it raises, it
    rolls back and each started run acts again on its own, under its attempt."""
    if len(run_ids) < 2:
        return list(run_ids)
    if _one_process_writes():
        done: set[int] = set()
        try:
            async with transaction():
                for run, attempt, action in await _take_together(run_ids):
                    await _perform(run, action, attempt)
                    done.add(run.id)
        except Exception as exc:  # rolled back: every run of the batch is queued again
            log.info("a batch of %d rule runs rolled back (%s: %s); each runs on its own",
                     len(run_ids), type(exc).__name__, exc)
            return list(run_ids)
        return [run_id for run_id in run_ids if run_id not in done]
    async with transaction():
        taken = await _take_together(run_ids)
    started = {run.id for run, _, _ in taken}
    try:
        async with lease.kept(lambda: _renew_leases(taken), lease_s=settings().lease_s,
                              what=f"{len(taken)} rule runs acting together") as heartbeat:
            async with transaction():
                for run, attempt, action in taken:
                    await _perform(run, action, attempt)
                heartbeat.stop()  # the outcomes are ours under the runs' row locks until the commit
    except Exception as exc:  # rolled back: each started run acts again on its own, under its attempt
        log.info("%d rule runs acting together rolled back (%s: %s); each acts on its own",
                 len(taken), type(exc).__name__, exc)
        for run, attempt, _ in taken:
            await _execute_started(run, attempt)
    return [run_id for run_id in run_ids if run_id not in started]


async def _renew_leases(taken: Sequence[tuple[RuleRun, int, Action[Any]]]) -> bool:
    """The heartbeat of attempts acting together: False once any of them is no longer its run's."""
    lease_until = clock.utcnow() + timedelta(seconds=settings().lease_s)
    ours = Q(*(Q(id=run.id, attempts=attempt) for run, attempt, _ in taken), join_type=Q.OR)
    renewed = await RuleRun.filter(ours, status=RunStatus.running).update(lease_until=lease_until)
    return renewed == len(taken)


def _database_only_keys() -> list[str]:
    """The database-only actions' keys, for the batch's start (from the catalogue at each batch)."""
    return sorted(key for key, action in registry().items() if action.database_only)


async def _take_together(run_ids: Sequence[int]) -> list[tuple[RuleRun, int, Action[Any]]]:
    """queued → running for those of `run_ids` that run together (database-only, not ending a wait): one
    compare-and-set for all (UPDATE … RETURNING), in the order of `run_ids`. Call inside `transaction()`."""
    now = clock.utcnow()
    lease_until = now + timedelta(seconds=settings().lease_s)
    connection = RuleRun._meta.db
    fields = RuleRun._meta.fields_map
    keys = _database_only_keys()
    ids = list(dict.fromkeys(run_ids))
    values: list[Any] = [RunStatus.running.value, fields["started_at"].to_db_value(now, RuleRun),
                         fields["lease_until"].to_db_value(lease_until, RuleRun), RunStatus.queued.value, *ids, *keys]
    if connection.capabilities.dialect == "postgres":
        marks = [f"${n}" for n in range(1, len(values) + 1)]
    else:
        marks = ["?"] * len(values)
    id_marks = ", ".join(marks[4:4 + len(ids)])
    key_marks = ", ".join(marks[4 + len(ids):])
    rows = await connection.execute_query_dict(
        f'UPDATE "rule_run" SET "status" = {marks[0]}, "attempts" = "attempts" + 1, "started_at" = {marks[1]}, '
        f'"lease_until" = {marks[2]} WHERE "status" = {marks[3]} AND "id" IN ({id_marks}) '
        f'AND "waiting_since" IS NULL AND "action_type" IN ({key_marks}) RETURNING *, {_OWNER}, {MARKER_COLUMN}',
        values)
    order = {run_id: index for index, run_id in enumerate(ids)}
    taken = []
    for found in sorted((dict(row) for row in rows), key=lambda row: order[row["id"]]):
        METADATA.saw_marker(found.pop("config_token"))
        events.owner_known(found["element_type"], events.Owner(found["element_id"], found.pop("owner_id")))
        run = RuleRun._init_from_db(**found)
        await run_event(run, RunStatus.running)
        action = get_action(run.action_type)
        assert action is not None  # its key came from the catalogue
        taken.append((run, run.attempts, action))
    return taken


async def _execute_started(run: RuleRun, attempt: int) -> RunStatus | None:
    """Act for a run whose start has committed, under a lease kept alive until the outcome is ours."""
    action = get_action(run.action_type)
    try:
        async with lease.kept(lambda: _renew_lease(run, attempt), lease_s=settings().lease_s,
                              what=f"rule run {run.id} (attempt {attempt})") as heartbeat:
            async with transaction():
                if action is None:
                    raise ActionError(f"unknown action type '{run.action_type}'")
                status = await _perform(run, action, attempt)
                heartbeat.stop()  # the outcome is ours under the run's row lock until the commit
        return status
    except Exception as exc:
        return await _outcome_of(run, attempt, exc)


async def _outcome_of(run: RuleRun, attempt: int, exc: Exception) -> RunStatus | None:
    """What an attempt that raised `exc` (its transaction rolled back) ends as."""
    if isinstance(exc, (Superseded, lease.LeaseLost)):
        return None
    if isinstance(exc, LoopStopped):
        return await _conclude(run, attempt, RunStatus.stopped, reason=str(exc))
    if isinstance(exc, NotFound):
        return await _conclude(run, attempt, RunStatus.cancelled, reason=f"cancelled: {exc}")
    if isinstance(exc, TransientActionError):
        return await _retry_or_fail(run, attempt, str(exc))
    if isinstance(exc, (ActionError, ValidationFailed)):
        return await _conclude(run, attempt, RunStatus.failed, error=str(exc))
    if isinstance(exc, (OverflowError, RecursionError, MemoryError)):  # the same input fails the same way
        return await _conclude(run, attempt, RunStatus.failed, error=f"{type(exc).__name__}: {exc} (not retried)")
    if isinstance(exc, ValidationError):  # params the action's current version no longer accepts
        return await _conclude(run, attempt, RunStatus.failed, error=f"invalid params: {exc}")
    # a database hiccup or a bug: retried, then failed with the error shown
    log.error("rule run %s attempt %s raised", run.id, attempt, exc_info=exc)
    return await _retry_or_fail(run, attempt, f"{type(exc).__name__}: {exc}")


# The responsible of the run's element, read with the run by the start's UPDATE … RETURNING (its event's owner).
_OWNER = "COALESCE({}) AS owner_id".format(", ".join(
    f'(SELECT "responsible_id" FROM "{model._meta.db_table}" WHERE "id" = "rule_run"."element_id" '
    f"AND \"rule_run\".\"element_type\" = '{element_type}')" for element_type, model in ELEMENT_MODELS.items()) + ", NULL")


async def _start(run_id: int) -> tuple[RuleRun, int] | None:
    """queued → running in a transaction of its own (the status and its event commit together)."""
    async with transaction():
        return await _take(run_id)


async def _take(run_id: int) -> tuple[RuleRun, int] | None:
    """queued → running, counting the attempt and taking a lease. None if the run is not ours.

    One compare-and-set that gives the run back (UPDATE … RETURNING). Call inside `transaction()`."""
    now = clock.utcnow()
    lease_until = now + timedelta(seconds=settings().lease_s)
    connection = RuleRun._meta.db
    fields = RuleRun._meta.fields_map
    marks = ["$1", "$2", "$3", "$4", "$5"] if connection.capabilities.dialect == "postgres" else ["?"] * 5
    rows = await connection.execute_query_dict(
        f'UPDATE "rule_run" SET "status" = {marks[0]}, "attempts" = "attempts" + 1, "started_at" = {marks[1]}, '
        f'"lease_until" = {marks[2]} WHERE "id" = {marks[3]} AND "status" = {marks[4]} RETURNING *, {_OWNER}',
        [RunStatus.running.value, fields["started_at"].to_db_value(now, RuleRun),
         fields["lease_until"].to_db_value(lease_until, RuleRun), run_id, RunStatus.queued.value])
    if not rows:
        return None
    row = dict(rows[0])
    events.owner_known(row["element_type"], events.Owner(row["element_id"], row.pop("owner_id")))
    run = RuleRun._init_from_db(**row)
    await run_event(run, RunStatus.running)
    return run, run.attempts


async def _renew_lease(run: RuleRun, attempt: int) -> bool:
    """The heartbeat of a running attempt: its lease runs on while the attempt is still the run's."""
    lease_until = clock.utcnow() + timedelta(seconds=settings().lease_s)
    renewed = await RuleRun.filter(id=run.id, status=RunStatus.running, attempts=attempt).update(lease_until=lease_until)
    return renewed > 0


async def _perform(run: RuleRun, action: Action[Any], attempt: int) -> RunStatus:
    element = await elements.load(run.element_type, run.element_id, lock=True)
    actor_id = run.spec.get("run_as_id") or element.responsible_id
    ctx = EngineRunContext(run=run, element_type=run.element_type, element=element, actor_id=actor_id,
                           load_context=lambda: _template_context(run, element))
    params = action.Params.model_validate(run.spec.get("params") or {})
    if run.waiting_since is not None:  # a blocking rule whose wait timed out
        outputs = await action.release(ctx, params, ended_by="timeout")
        await _finish(run, attempt, RunStatus.succeeded, outputs={**run.outputs, **outputs}, reason="wait ended by timeout")
        return RunStatus.succeeded
    timing = Timing.model_validate(run.spec.get("timing") or {})
    if timing.kind.endswith("_field"):
        rescheduled = await _recheck_anchor(run, attempt, element)
        if rescheduled:
            return rescheduled
    condition = run.spec.get("condition") or []
    explanation = None
    if condition:
        met, explanation = conditions.evaluate(
            [[conditions.Comparison.model_validate(c) for c in group] for group in condition], await ctx.context()
        )
        if not met:
            await _finish(run, attempt, RunStatus.skipped, reason=f"skipped: {explanation}")
            return RunStatus.skipped
    outcome = await action.execute(ctx, await render_params(params, ctx))
    if isinstance(outcome, Block):
        await _finish(run, attempt, RunStatus.waiting, outputs=outcome.outputs, reason=outcome.reason, due_at=outcome.until)
        return RunStatus.waiting
    if isinstance(outcome, Skipped):
        await _finish(run, attempt, RunStatus.skipped, outputs=outcome.outputs, reason=f"skipped: {outcome.reason}")
        return RunStatus.skipped
    await _finish(run, attempt, RunStatus.succeeded, outputs=outcome.outputs, reason=explanation)
    return RunStatus.succeeded


async def _recheck_anchor(run: RuleRun, attempt: int, element: Element) -> RunStatus | None:
    """A date-anchored run checks its anchor again when due: empty skips, moved later waits."""
    timing_context = await _TimingContext.load(run.element_type, element)
    base = run.created_at
    due_at, skip_reason = _due(run, base, timing_context)
    if due_at is None:
        await _finish(run, attempt, RunStatus.skipped, reason=f"skipped: {skip_reason}")
        return RunStatus.skipped
    if due_at > clock.utcnow() + timedelta(seconds=1):
        await _finish(run, attempt, RunStatus.scheduled, due_at=due_at, reason="rescheduled: the anchor date changed")
        return RunStatus.scheduled
    return None


async def render_params(params: Any, ctx: RunContext) -> Any:
    """Params with every template field rendered against the run's context."""
    templated = [
        name for name, info in type(params).model_fields.items()
        if TEMPLATE in info.metadata and isinstance(getattr(params, name), str) and "{" in getattr(params, name)
    ]
    if not templated:
        return params
    context = await ctx.context()
    return params.model_copy(update={name: await render_async(getattr(params, name), context) for name in templated})


def _names(spec: dict[str, Any], word: str) -> bool:
    """Whether the rule's params or condition spell `word` (a name its templates or condition can read)."""
    return word in json.dumps([spec.get("params"), spec.get("condition")])


def _reads_earlier_outputs(spec: dict[str, Any]) -> bool:
    """Whether the rule's params or condition can name `rules` (the outputs of the stay's earlier runs): a
    rule whose templates and condition never spell the word needs no read of them, and sees `rules` empty."""
    return _names(spec, "rules")


# A template expression, and in it the element used as a whole (`{{ deal }}`, `deal.items()`, `deal[key]`) rather
# than one of its fields (`deal.title`).
_EXPRESSION = re.compile(r"\{[{%].*?[}%]\}", re.S)
_WHOLE_ELEMENT = re.compile(r"\b(?:deal|lead|element)\b(?!\s*\.\s*(?!items\b|values\b|keys\b)\w)")


def _reads_contact(run: RuleRun) -> bool:
    """A database-only action reads its context only through its templates and condition: one that never
    spells "contact" nor uses the element as a whole needs no read of the element's contact (it sees `contact`
    empty). Any other action may read the context itself (a document's template, a recipient), so it always
    gets the contact."""
    action = get_action(run.action_type)
    if action is None or not action.database_only or _names(run.spec, "contact"):
        return True
    text = json.dumps([run.spec.get("params"), run.spec.get("condition")])
    return any(_WHOLE_ELEMENT.search(expression) for expression in _EXPRESSION.findall(text))


async def _template_context(run: RuleRun, element: Element) -> dict[str, Any]:
    data = await elements.build_context(run.element_type, element, with_contact=_reads_contact(run))
    earlier: list[RuleRun] = []
    if _reads_earlier_outputs(run.spec):
        earlier = await RuleRun.filter(
            stage_run_id=run.stage_run_id, status__in=(RunStatus.succeeded, RunStatus.waiting)
        ).exclude(id=run.id)
    now = clock.utcnow()
    return {
        **data,
        run.element_type: data,
        "element": data,
        "rules": {r.rule_key: r.outputs for r in earlier},
        "now": now.isoformat(timespec="seconds"),
        "today": now.date().isoformat(),
    }


async def _finish(
    run: RuleRun, attempt: int, status: RunStatus, *, outputs: dict[str, Any] | None = None,
    reason: str | None = None, error: str | None = None, due_at: datetime | None = None,
) -> None:
    """running → status for this attempt only; anything else means we lost the run."""
    now = clock.utcnow()
    values: dict[str, Any] = {"status": status, "reason": reason, "error": error, "lease_until": None}
    if outputs is not None:
        values["outputs"] = outputs
    if status == RunStatus.waiting:
        values.update(waiting_since=now, due_at=due_at)
    elif status == RunStatus.scheduled:
        values["due_at"] = due_at
    else:
        values["finished_at"] = now
    taken = await RuleRun.filter(id=run.id, status=RunStatus.running, attempts=attempt).update(**values)
    if not taken:
        raise Superseded()
    run.status = status
    await run_event(run, status, reason=reason, error=error, outputs=outputs if outputs is not None else run.outputs)
    if status == RunStatus.failed:
        await pausing.after_failure(run, error or reason or "")
    if status in FINISHED:
        await advance_lane(run)


async def _conclude(run: RuleRun, attempt: int, status: RunStatus, *, reason: str | None = None,
                    error: str | None = None) -> RunStatus | None:
    """Record an outcome after the action's transaction rolled back."""
    try:
        async with transaction():
            await _finish(run, attempt, status, reason=reason, error=error)
    except Superseded:
        return None
    return status


async def _retry_or_fail(run: RuleRun, attempt: int, error: str) -> RunStatus | None:
    config = settings()
    if attempt >= config.max_attempts:
        return await _conclude(run, attempt, RunStatus.failed, error=f"{error} (gave up after {attempt} attempts)")
    delay_ms = config.retry_base_ms * 2 ** (attempt - 1)
    try:
        async with transaction():
            await _finish(run, attempt, RunStatus.scheduled, error=error,
                          due_at=clock.utcnow() + timedelta(milliseconds=delay_ms),
                          reason=f"retry {attempt + 1} of {config.max_attempts} in {delay_ms / 1000:g} s")
    except Superseded:
        return None
    return RunStatus.scheduled


# ---------------------------------------------------------------- ending waits


async def release_waiting(run: RuleRun, *, ended_by: str, outputs: dict[str, Any] | None = None) -> bool:
    """End a blocking run's wait (customer activity, task closed). Call inside `transaction()`."""
    action = get_action(run.action_type)
    element = await elements.load(run.element_type, run.element_id)
    params = action.Params.model_validate(run.spec.get("params") or {}) if action else None
    ctx = EngineRunContext(run=run, element_type=run.element_type, element=element, actor_id=None)
    released = await action.release(ctx, params, ended_by=ended_by) if action else {"ended_by": ended_by}
    taken = await RuleRun.filter(id=run.id, status=RunStatus.waiting).update(
        status=RunStatus.succeeded, outputs={**run.outputs, **released, **(outputs or {})},
        reason=f"wait ended by {ended_by}", finished_at=clock.utcnow(), due_at=None,
    )
    if not taken:
        return False
    run.status = RunStatus.succeeded
    await run_event(run, RunStatus.succeeded, reason=f"wait ended by {ended_by}")
    await advance_lane(run)
    return True


async def fail_waiting(run: RuleRun, *, error: str) -> bool:
    """End a blocking run's wait as failed (what it waits for cannot happen: a PDF that could not be made).
    Call inside `transaction()`."""
    taken = await RuleRun.filter(id=run.id, status=RunStatus.waiting).update(
        status=RunStatus.failed, error=error, finished_at=clock.utcnow(), due_at=None,
    )
    if not taken:
        return False
    run.status = RunStatus.failed
    await run_event(run, RunStatus.failed, error=error)
    await advance_lane(run)
    return True


async def waiting_runs(element_type: str, element_id: int, event: str) -> list[RuleRun]:
    """The element's waiting runs whose wait `event` ends: their action lists it in `released_by`."""
    return await RuleRun.filter(
        element_type=element_type, element_id=element_id, status=RunStatus.waiting, action_type__in=released_by(event)
    )

