"""The queued lease's figure of runs queued ahead (engine.QueuedFigure): counted at most every `max_age_s`, not
on every create, with the runs this process queued since added on."""

from server.actor import SYSTEM
from server.kinds import RunStatus
from server.models import RuleRun
from server.rules import dispatch
from server.rules.engine import QueuedFigure
from server.services import elements as element_service
from tests.support import add_rule, make_pipeline
from tests.support.statements import traced


async def test_the_queued_figure_counts_once_then_adds_what_this_process_queued(db, worker_paused, monkeypatch):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "hello"})

    async def take(run_ids: list[int]) -> None:
        pass

    monkeypatch.setattr(dispatch.RUNS, "taker", take)  # runs are claimed (queued) at creation
    for title in ("one", "two"):
        await element_service.create_element("deal", {"title": title}, stage_id=stages["offer"].id, actor=SYSTEM)
    assert await RuleRun.filter(status=RunStatus.queued).count() == 2

    figure = QueuedFigure(max_age_s=3600)
    sent: list[str] = []
    async with traced(db.kind, monkeypatch, sent.append):
        assert await figure.ahead() == 2
        figure.joined(3)
        assert await figure.ahead() == 5
    assert sum("COUNT" in statement.upper() for statement in sent) == 1

    fresh = QueuedFigure(max_age_s=0)
    assert await fresh.ahead() == 2
    fresh.joined(3)
    assert await fresh.ahead() == 2  # counted again: the database's figure wins
