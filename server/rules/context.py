"""What an action sees while it runs: its run, the element, the rendered context, and the moves it may make."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from server.models import Element, RuleRun, Stage, StageRun, TimelineEntry


@dataclass
class RunContext:
    run: RuleRun
    element_type: str
    element: Element
    actor_id: int | None  # the user on whose behalf the rule acts
    load_context: Callable[[], Awaitable[dict[str, Any]]] | None = None
    _context: dict[str, Any] | None = field(default=None, repr=False)

    async def context(self) -> dict[str, Any]:
        """The element as templates and conditions see it; built on first use (it costs queries)."""
        if self._context is None:
            self._context = await self.load_context() if self.load_context else {}
        return self._context

    async def add_entry(self, kind: str, text: str, *, author_id: int | None = None) -> TimelineEntry:
        """A timeline entry attributed to this run (and to its author, by default the run-as user)."""
        from server.rules.elements import add_timeline_entry

        return await add_timeline_entry(self.element_type, self.element.id, kind, text,
                                        author_id=author_id or self.actor_id, rule_run_id=self.run.id)

    async def move_to(self, stage: Stage, *, actor_id: int | None = None) -> None:
        """An automatic stage change: it continues this run's causal chain (the loop guard counts it)."""
        from server.rules.engine import Cause, enter_stage

        stage_run = await StageRun.get(id=self.run.stage_run_id)
        cause = Cause(
            text=f"rule '{self.run.title}' (run {self.run.id})",
            actor_id=actor_id or self.actor_id,
            chain_id=stage_run.chain_id,
            depth=stage_run.depth + 1,
            rule_run_id=self.run.id,
        )
        await enter_stage(self.element_type, self.element, stage, cause=cause)
