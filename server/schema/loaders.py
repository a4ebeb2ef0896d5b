"""Per-request DataLoaders, so a list of leads or deals costs a few statements, not one per row."""

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader
from tortoise.expressions import Subquery
from tortoise.models import Model

from server.kinds import ElementType
from server.models import (
    Company, Contact, Deal, DealContact, DeliveryAttempt, Lead, Pipeline, RuleRun, Stage, StageRun, TimelineEntry,
    User,
)

ElementKey = tuple[str, int]  # (element_type, element_id)
_Record = TypeVar("_Record", bound=Model)
_ElementRow = TypeVar("_ElementRow", RuleRun, TimelineEntry)  # rows kept per element, newest first


async def _stages(ids: Sequence[int]) -> list[Stage | None]:
    found = {s.id: s for s in await Stage.filter(id__in=list(ids))}
    return [found.get(i) for i in ids]


async def _stages_of_pipelines(pipeline_ids: Sequence[int]) -> list[list[Stage]]:
    grouped: dict[int, list[Stage]] = defaultdict(list)
    for stage in await Stage.filter(pipeline_id__in=list(pipeline_ids)).order_by("position", "id"):
        grouped[stage.pipeline_id].append(stage)
    return [grouped[i] for i in pipeline_ids]


def _by_id(model: type[_Record]) -> DataLoader[int, _Record | None]:
    async def load(ids: Sequence[int]) -> list[_Record | None]:
        found = {row.pk: row for row in await model.filter(id__in=list(ids))}
        return [found.get(i) for i in ids]

    return DataLoader(load)


async def _deal_contacts(deal_ids: Sequence[int]) -> list[list[Contact]]:
    grouped: dict[int, list[Contact]] = defaultdict(list)
    links = DealContact.filter(deal_id__in=list(deal_ids)).select_related("contact").order_by("position", "id")
    for link in await links:
        grouped[link.deal_id].append(link.contact)
    return [grouped[i] for i in deal_ids]


async def _elements(keys: Sequence[ElementKey]) -> list[Lead | Deal | None]:
    """Leads and deals by (element_type, id): one statement per element type, whatever the number of keys."""
    found: dict[ElementKey, Lead | Deal] = {}
    models: dict[str, type[Lead] | type[Deal]] = {ElementType.lead: Lead, ElementType.deal: Deal}
    for element_type in {t for t, _ in keys}:
        model = models.get(element_type)
        if model is None:
            continue  # a type no element has: nothing to find
        for row in await model.filter(id__in=[i for t, i in keys if t == element_type]):
            found[(element_type, row.id)] = row
    return [found.get(k) for k in keys]


async def _current_runs(keys: Sequence[ElementKey]) -> list[list[RuleRun]]:
    grouped: dict[ElementKey, list[RuleRun]] = defaultdict(list)
    for element_type in {t for t, _ in keys}:
        ids = [i for t, i in keys if t == element_type]
        active = StageRun.filter(element_type=element_type, element_id__in=ids, status="active").values("id")
        for run in await RuleRun.filter(stage_run_id__in=Subquery(active)).order_by("position", "id"):
            grouped[(element_type, run.element_id)].append(run)
    return [grouped[k] for k in keys]


LatestKey = tuple[str, int, int]  # (element_type, element_id, how many of the latest rows)


async def _latest(
    model: type[_ElementRow], table: str, keys: Sequence[LatestKey]
) -> dict[LatestKey, list[_ElementRow]]:
    """The `last` newest rows (by id) of each element, in one statement per element type and size:
    a window function ranks each element's rows, so one element's long history cannot swell the answer."""
    grouped: dict[LatestKey, list[_ElementRow]] = defaultdict(list)
    for element_type, last in {(t, n) for t, _, n in keys}:
        assert element_type in tuple(ElementType)  # a ClassVar of the GraphQL type, never client text
        ids = ", ".join(str(int(i)) for t, i, n in keys if (t, n) == (element_type, last))
        ranked = (f"SELECT id, ROW_NUMBER() OVER (PARTITION BY element_id ORDER BY id DESC) AS newest FROM {table} "
                  f"WHERE element_type = '{element_type}' AND element_id IN ({ids})")
        rows: list[_ElementRow] = await model.raw(f"SELECT * FROM {table} WHERE id IN "
                               f"(SELECT id FROM ({ranked}) AS ranked WHERE newest <= {int(last)})")
        for row in rows:
            grouped[(element_type, row.element_id, last)].append(row)
    return grouped


async def _rule_runs(keys: Sequence[LatestKey]) -> list[list[RuleRun]]:
    grouped = await _latest(RuleRun, "rule_run", keys)
    return [sorted(grouped[k], key=lambda r: (r.stage_run_id, r.position, r.id)) for k in keys]


async def _timelines(keys: Sequence[LatestKey]) -> list[list[TimelineEntry]]:
    grouped = await _latest(TimelineEntry, "timeline_entry", keys)
    return [sorted(grouped[k], key=lambda e: e.id) for k in keys]


# ---------------------------------------------------------------- messages (customer channels)


async def _delivery_attempts(message_ids: Sequence[int]) -> list[list[DeliveryAttempt]]:
    """Each message's attempts, oldest first: for messages a resolver was allowed to show (services/messages.py)."""
    grouped: dict[int, list[DeliveryAttempt]] = defaultdict(list)
    for attempt in await DeliveryAttempt.filter(message_id__in=list(message_ids)).order_by("message_id", "number"):
        grouped[attempt.message_id].append(attempt)
    return [grouped[i] for i in message_ids]


class Loaders:
    def __init__(self) -> None:
        self.stage = DataLoader(_stages)
        self.stages_of_pipeline = DataLoader(_stages_of_pipelines)
        self.deal_contacts = DataLoader(_deal_contacts)
        self.current_runs = DataLoader(_current_runs)
        self.element = DataLoader(_elements)
        self.user = _by_id(User)
        self.contact = _by_id(Contact)
        self.company = _by_id(Company)
        self.pipeline = _by_id(Pipeline)
        self.stage_run = _by_id(StageRun)
        self.rule_runs = DataLoader(_rule_runs)
        self.timeline = DataLoader(_timelines)
        self.delivery_attempts = DataLoader(_delivery_attempts)
        self._views: dict[str, DataLoader[Any, Any]] = {}

    def view(self, name: str, build: Callable[[Sequence[Any]], Awaitable[list[Any]]]) -> DataLoader[Any, Any]:
        """A loader of GraphQL objects built once per key from a row loader above: a list page's relation
        resolvers return its future from a plain (not async) resolver, so graphql-core makes no coroutine
        per row and field, and each (type, key) is built once per request however many rows share it."""
        loader = self._views.get(name)
        if loader is None:
            loader = self._views[name] = DataLoader(build)
        return loader
