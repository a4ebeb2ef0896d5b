"""Explain: for an element, why each rule ran, was skipped, cancelled, failed, stopped or is waiting, and which
trigger moved it and why the other candidates did not match, in sentences (and the fields they come from).

Everything is read from what the engine recorded when it happened (a run's reason, error, attempts and due
time; a stay's cause and chain; a trigger activation's candidates), never recomputed from today's values.
"""

from dataclasses import dataclass, field
from datetime import datetime

from server.kinds import RunStatus
from server.models import RuleRun, Stage, StageRun, WorkCalendar
from server.rules.dry_run import moment_words
from server.services import designer
from server.services import triggers as trigger_service
from server.services.access import Acting
from server.services.designer import ActivationView
from server.services.elements import require_visible

MAX_STAYS = 50


@dataclass(frozen=True)
class RunExplanation:
    run_id: int
    rule_id: int
    title: str
    action_type: str
    status: str
    sentence: str
    reason: str | None
    error: str | None
    attempts: int
    due_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class StayExplanation:
    """One stay of the element in a stage: how it got there and what each rule of it did."""

    stage_run_id: int
    stage_id: int
    stage_name: str
    status: str
    entered_at: datetime
    left_at: datetime | None
    revision: int
    sentence: str
    runs: list[RunExplanation] = field(default_factory=list)


@dataclass(frozen=True)
class Explanation:
    element_type: str
    element_id: int
    stays: list[StayExplanation]  # newest first
    activations: list[ActivationView]  # newest first


def _reason(text: str | None, prefix: str) -> str:
    return (text or "").removeprefix(prefix).strip()


def run_sentence(run: RuleRun, *, tz_name: str, chain: str = "") -> str:
    """Why the run is where it is, in one sentence."""
    title = f"“{run.title}”"

    def at(moment: datetime | None) -> str:
        return moment_words(moment, tz_name) if moment else "an unknown time"

    status = RunStatus(run.status)
    tries = f"{run.attempts} attempt{'s' if run.attempts != 1 else ''}"
    if status == RunStatus.succeeded:
        how = f" ({run.reason})" if run.reason and run.reason != "no condition" else ""
        return f"{title} ran and succeeded at {at(run.finished_at)}{how}."
    if status == RunStatus.skipped:
        return f"{title} was skipped: {_reason(run.reason, 'skipped:')}."
    if status == RunStatus.cancelled:
        return f"{title} was cancelled at {at(run.finished_at)}: {_reason(run.reason, 'cancelled:')}."
    if status == RunStatus.failed:
        return f"{title} failed after {tries}: {run.error}."
    if status == RunStatus.stopped:
        loop = f" The chain of moves: {chain}." if chain else ""
        return f"{title} was stopped: {_reason(run.reason, 'stopped:')}.{loop}"
    if status == RunStatus.waiting:
        until = f" (it times out at {at(run.due_at)})" if run.due_at else " (with no time limit)"
        return f"{title} is {run.reason or 'waiting'}{until}."
    if status == RunStatus.scheduled:
        if run.error:
            return f"{title} failed attempt {run.attempts} ({run.error}); next retry at {at(run.due_at)}."
        if run.due_at is None:
            return f"{title} {run.reason or 'waits for the rule above it'}."
        return f"{title} is due at {at(run.due_at)}."
    return f"{title} is {status.value} (attempt {run.attempts})."


async def _chains(stays: list[StageRun], names: dict[int, str]) -> dict[str, str]:
    """Each chain of automatic moves as the stages entered in it, in order: "“Offer” → “Won” → “Offer”"."""
    chain_ids = {s.chain_id for s in stays}
    runs = await StageRun.filter(chain_id__in=list(chain_ids)).order_by("depth", "id") if chain_ids else []
    chains: dict[str, list[str]] = {}
    for stay in runs:
        chains.setdefault(stay.chain_id, []).append(f"“{names.get(stay.stage_id, f'stage {stay.stage_id}')}”")
    return {key: " → ".join(steps) for key, steps in chains.items()}


async def explain(element_type: str, element_id: int, *, actor: Acting, stays: int = MAX_STAYS) -> Explanation:
    """The element's stays, newest first, with each run's outcome explained, and its trigger activations."""
    await require_visible(actor, element_type, element_id)
    calendar = await WorkCalendar.first()
    tz_name = calendar.timezone if calendar else "UTC"
    rows = await StageRun.filter(element_type=element_type, element_id=element_id).order_by("-id").limit(
        max(1, min(stays, MAX_STAYS)))
    stay_ids = [s.id for s in rows]
    runs = await RuleRun.filter(stage_run_id__in=stay_ids).order_by("position", "id") if stay_ids else []
    names = dict(await Stage.filter(id__in=list({s.stage_id for s in rows})).values_list("id", "name")) if rows else {}
    chains = await _chains(rows, names)
    by_stay: dict[int, list[RuleRun]] = {}
    for run in runs:
        by_stay.setdefault(run.stage_run_id, []).append(run)
    explained = []
    for stay in rows:
        stage_name = names.get(stay.stage_id, f"stage {stay.stage_id}")
        cause = stay.cause or "no cause recorded"
        entered = f"Entered “{stage_name}” at {moment_words(stay.entered_at, tz_name)} ({cause})"
        if stay.left_at is not None:
            entered += f"; {'left' if stay.status == 'left' else stay.status} at {moment_words(stay.left_at, tz_name)}"
        explained.append(StayExplanation(
            stage_run_id=stay.id, stage_id=stay.stage_id, stage_name=stage_name, status=stay.status,
            entered_at=stay.entered_at, left_at=stay.left_at, revision=stay.revision, sentence=entered + ".",
            runs=[RunExplanation(
                run_id=r.id, rule_id=r.rule_id, title=r.title, action_type=r.action_type, status=r.status,
                sentence=run_sentence(r, tz_name=tz_name, chain=chains.get(stay.chain_id, "")), reason=r.reason,
                error=r.error, attempts=r.attempts, due_at=r.due_at, finished_at=r.finished_at,
            ) for r in by_stay.get(stay.id, [])],
        ))
    activations = await trigger_service.activations(element_type, element_id, actor=actor, first=MAX_STAYS)
    return Explanation(element_type=element_type, element_id=element_id, stays=explained,
                       activations=await designer.explain_activations(activations))
