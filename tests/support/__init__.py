"""Helpers the tests share: building pipelines and waiting for runs to finish."""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from server.actor import SYSTEM
from server.models import Pipeline, RuleRun, Stage, User
from server.rules.engine import FINISHED
from server.services import rules as rule_service

STAGES = [("new", "New", "in_progress"), ("offer", "Offer", "in_progress"), ("invoice", "Invoice", "in_progress"),
          ("won", "Won", "success"), ("lost", "Lost", "failure")]


async def make_pipeline(entity_type: str = "deal", name: str = "Sales") -> tuple[Pipeline, dict[str, Stage]]:
    pipeline = await Pipeline.create(name=name, entity_type=entity_type, is_default=True)
    stages = {}
    for position, (code, title, semantic) in enumerate(STAGES):
        stages[code] = await Stage.create(pipeline=pipeline, code=code, name=title, position=position, semantic=semantic)
    return pipeline, stages


async def make_user(name: str = "Ann", **values: Any) -> User:
    return await User.create(name=name, email=f"{name.lower()}@example.com", **values)


async def make_token(role: str = "admin", name: str | None = None) -> tuple[User, str]:
    """A user with `role` and an API token acting as them: (user, secret)."""
    from server.services.tokens import create_token

    user = await make_user(name or f"{role.title()}{await User.all().count() + 1}", role=role)
    _, secret = await create_token(SYSTEM, user_id=user.id, name=f"tests ({role})")
    return user, secret


async def add_rule(stage: Stage, action_type: str, params: dict[str, Any] | None = None, **values: Any) -> Any:
    return await rule_service.create_rule(
        stage.id, rule_service.RuleInput(action_type=action_type, params=params or {}, **values), actor=SYSTEM
    )


async def wait_until(predicate: Any, *, timeout_s: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


async def wait_for_runs(element_type: str, element_id: int, count: int, *, timeout_s: float = 15,
                        statuses: tuple[str, ...] = FINISHED) -> list[RuleRun]:
    """Wait until `count` runs of the element are in one of `statuses`; return all its runs."""

    async def done() -> list[RuleRun] | None:
        runs = await RuleRun.filter(element_type=element_type, element_id=element_id).order_by("id")
        return runs if sum(r.status in statuses for r in runs) >= count else None

    return await wait_until(done, timeout_s=timeout_s, what=f"{count} finished runs of {element_type} {element_id}")


@dataclass
class ClockControl:
    """`server.clock` as the test moves it: the real time plus what the test advanced (time still runs)."""

    real: Callable[[], datetime]
    offset: timedelta = timedelta()

    def now(self) -> datetime:
        return self.real() + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by
