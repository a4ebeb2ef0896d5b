"""The kanban board of a pipeline: its stages as columns with counts and sums, the newest cards of each, and the
runs the current stay of each card started (so a card shows what a move set going)."""

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from tortoise.functions import Count, Sum

from server.errors import ValidationFailed
from server.kinds import RunStatus
from server.models import Pipeline, RuleRun, Stage, StageRun, model_for
from server.clock import utcnow
from server.services.runs import UNFINISHED
from server.services.access import Acting, element_scope
from server.services.elements import get_element
from server.services.paging import MAX_PAGE, page_size

CARDS_PER_COLUMN = 20  # a column shows this many cards, newest first, then a "more" link
SOON_S = 10  # a card refreshes itself while a run is queued, running or due within this many seconds


@dataclass(frozen=True)
class CardRuns:
    """The rule runs of the element's current stay, counted by status."""

    by_status: dict[str, int] = field(default_factory=dict)
    moving: bool = False  # a run is queued, running or about to be due: the card refreshes itself

    @property
    def unfinished(self) -> int:
        return sum(n for status, n in self.by_status.items() if status in UNFINISHED)

    def in_order(self) -> list[tuple[str, int]]:
        """(status, count) in the order a run goes through its life, for the card's badges."""
        order = [s.value for s in RunStatus]
        return sorted(self.by_status.items(), key=lambda i: order.index(i[0]) if i[0] in order else len(order))


@dataclass(frozen=True)
class Card:
    element: Any
    runs: CardRuns


@dataclass(frozen=True)
class Column:
    stage: Stage
    count: int
    sums: list[tuple[Decimal, str]]  # (amount, currency), one per currency, largest first
    cards: list[Card]
    has_more: bool


async def _card_runs(element_type: str, elements: list[Any]) -> dict[int, CardRuns]:
    """Per element, its runs in the stage it is in now (the latest stage run there): two statements for a page."""
    if not elements:
        return {}
    current = {e.id: e.stage_id for e in elements}
    rows = await (StageRun.filter(element_type=element_type, element_id__in=list(current),
                                  stage_id__in=set(current.values()))
                  .order_by("id").values("id", "element_id", "stage_id"))
    latest: dict[int, int] = {}
    for row in rows:
        if current.get(row["element_id"]) == row["stage_id"]:
            latest[row["element_id"]] = row["id"]
    if not latest:
        return {}
    # a stay has as many runs as its stage has rules (bounded by the designer), so the rows are few
    runs = await (RuleRun.filter(stage_run_id__in=list(latest.values()))
                  .values("stage_run_id", "status", "due_at"))
    soon = utcnow() + timedelta(seconds=SOON_S)
    by_stay: dict[int, dict[str, int]] = {}
    moving: set[int] = set()
    for row in runs:
        counted = by_stay.setdefault(row["stage_run_id"], {})
        counted[row["status"]] = counted.get(row["status"], 0) + 1
        if row["status"] in (RunStatus.queued, RunStatus.running) or (
                row["status"] == RunStatus.scheduled and row["due_at"] is not None and row["due_at"] <= soon):
            moving.add(row["stage_run_id"])
    return {element_id: CardRuns(by_stay.get(stay, {}), stay in moving) for element_id, stay in latest.items()}


async def cards(element_type: str, stage: Stage, *, first: int = CARDS_PER_COLUMN, after: int | None = None,
                actor: Acting) -> tuple[list[Card], bool]:
    """The newest cards of a stage (after the element id `after`), and whether there are more."""
    page_size(first)
    query = model_for(element_type).filter(stage_id=stage.id, **element_scope(actor))
    if after is not None:
        query = query.filter(id__lt=after)
    rows = await query.order_by("-id").limit(first + 1)
    shown = rows[:first]
    runs = await _card_runs(element_type, shown)
    return [Card(e, runs.get(e.id, CardRuns())) for e in shown], len(rows) > first


async def card(element_type: str, element_id: int, *, actor: Acting) -> Card:
    element = await get_element(element_type, element_id, actor=actor)
    runs = await _card_runs(element_type, [element])
    return Card(element, runs.get(element.id, CardRuns()))


async def columns(pipeline: Pipeline, *, first: int = CARDS_PER_COLUMN, actor: Acting) -> list[Column]:
    """Every stage of the pipeline in order, with how many elements it holds, their amounts summed per currency and
    the newest `first` of them."""
    if first > MAX_PAGE:
        raise ValidationFailed.one("first", f"must be between 1 and {MAX_PAGE}")
    element_type = pipeline.entity_type
    stages = await Stage.filter(pipeline_id=pipeline.id).order_by("position", "id")
    model = model_for(element_type)
    totals = await (model.filter(pipeline_id=pipeline.id, **element_scope(actor))
                    .annotate(n=Count("id"), total=Sum("amount")).group_by("stage_id", "currency")
                    .values("stage_id", "currency", "n", "total"))
    counts: dict[int, int] = {}
    sums: dict[int, list[tuple[Decimal, str]]] = {}
    for row in totals:
        counts[row["stage_id"]] = counts.get(row["stage_id"], 0) + row["n"]
        if row["total"] is not None:
            sums.setdefault(row["stage_id"], []).append((Decimal(str(row["total"])), row["currency"] or ""))
    result = []
    for stage in stages:
        shown, more = await cards(element_type, stage, first=first, actor=actor) if counts.get(stage.id) else ([], False)
        result.append(Column(stage, counts.get(stage.id, 0),
                             sorted(sums.get(stage.id, []), key=lambda s: (-s[0], s[1])), shown, more))
    return result

