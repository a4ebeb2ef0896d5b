"""Stage metadata cached in the process: stages with their pipeline, the rules of a stage revision, the paused
rules, the custom fields and pipelines of an element type, the stages and enabled triggers of a pipeline, the work calendar.

Correct across processes: every write to a table it holds changes the token of `config_marker` in the writing
transaction (database triggers, migration 0016, so no writer can forget it). A unit of work (a transaction) reads
the token once, the first time it needs metadata, and the cache drops everything it holds when the token changed:
an edit committed in the admin is what the next run in any process sees. A transaction sees the metadata as of
its first read (an edit it makes later in the same transaction is seen by the next one).

The values are shared between units: read them, never change them.
"""

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tortoise import connections

from server import db
from server.models import CustomField, Pipeline, Rule, Stage, StageRevision, Trigger, WorkCalendar

T = TypeVar("T")

MAX_ENTRIES = 1024  # stages, revisions, element types and pipelines together; the oldest read goes first
_MARKER_SQL = 'SELECT "token" FROM "config_marker" WHERE "id" = 1'
MARKER_COLUMN = f'({_MARKER_SQL}) AS "config_token"'  # the token, read by a statement sent anyway


async def read_marker() -> str:
    """The configuration's current token ("" when the marker row is missing: the next edit writes it)."""
    rows = await connections.get("default").execute_query_dict(_MARKER_SQL)
    return str(rows[0]["token"]) if rows else ""


class MetadataCache:
    """One process's stage metadata, valid for one marker token."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.token: str | None = None
        self.generation = 0  # bumped on every drop, so a load begun before it is not kept
        self._entries: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def stage(self, stage_id: int) -> Stage | None:
        """The stage with its pipeline loaded (`stage.pipeline`)."""
        return await self._get(("stage", stage_id),
                               lambda: Stage.get_or_none(id=stage_id).select_related("pipeline"))

    async def revision_rules(self, stage_id: int, number: int) -> list[dict[str, Any]]:
        """The rules snapshot of the stage's revision `number` (revision 0: no rules)."""
        if number == 0:
            return []

        async def load() -> list[dict[str, Any]]:
            revision = await StageRevision.get(stage_id=stage_id, number=number)
            return list(revision.rules)
        return await self._get(("revision", stage_id, number), load)

    async def paused_rule_ids(self) -> frozenset[int]:
        async def load() -> frozenset[int]:
            return frozenset(await db.column(Rule.filter(paused_at__not_isnull=True), "id"))
        return await self._get(("paused",), load)

    async def custom_fields(self, element_type: str) -> list[CustomField]:
        async def load() -> list[CustomField]:
            return list(await CustomField.filter(entity_type=element_type))
        return await self._get(("custom_fields", element_type), load)

    async def pipelines(self, element_type: str) -> list[Pipeline]:
        """The element type's pipelines, the default first, then in their order."""
        async def load() -> list[Pipeline]:
            return list(await Pipeline.filter(entity_type=element_type).order_by("-is_default", "position", "id"))
        return await self._get(("pipelines", element_type), load)

    async def pipeline_stages(self, pipeline_id: int) -> list[Stage]:
        """The pipeline's stages in their order."""
        async def load() -> list[Stage]:
            return list(await Stage.filter(pipeline_id=pipeline_id).order_by("position", "id"))
        return await self._get(("stages", pipeline_id), load)

    async def pipeline_triggers(self, pipeline_id: int) -> list[Trigger]:
        """The enabled triggers of the pipeline's stages, by position."""
        async def load() -> list[Trigger]:
            return list(await Trigger.filter(stage__pipeline_id=pipeline_id, enabled=True))
        return await self._get(("triggers", pipeline_id), load)

    async def work_calendar(self) -> WorkCalendar | None:
        """The company's calendar (None: every day, all day)."""
        return await self._get(("work_calendar",), WorkCalendar.first)

    async def _get(self, key: tuple[Any, ...], load: Callable[[], Awaitable[T]]) -> T:
        await self._follow_marker()
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]  # type: ignore[no-any-return]
        generation = self.generation
        value = await load()
        if generation == self.generation:  # no newer token arrived while it loaded
            self._entries[key] = value
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def saw_marker(self, token: str | None) -> None:
        """The token as a statement this unit of work sends anyway read it (a run's start): no read of its own."""
        if db.in_unit():
            db.unit_memo("config_marker")[id(self)] = token or ""

    async def _follow_marker(self) -> None:
        """Read the token once per unit of work (every time outside one) and drop all on a change."""
        memo = db.unit_memo("config_marker") if db.in_unit() else None
        if memo is not None and id(self) in memo:
            token = memo[id(self)]
        else:
            token = await read_marker()
            if memo is not None:
                memo[id(self)] = token
        if token != self.token:
            self._entries.clear()
            self.token = token
            self.generation += 1


METADATA = MetadataCache()  # this process's cache
