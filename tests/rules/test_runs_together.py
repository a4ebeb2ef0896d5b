"""The runs a create hands over run together (engine.execute_together: the database-only ones in one
transaction, on PostgreSQL after a start of their own): what a user sees is what running them one after the other
gives, a failing rule fails alone, and every effect happens once."""

from typing import Any

import pytest

from server.actor import SYSTEM
from server.kinds import RunStatus
from server.models import AuditEntry, Contact, Deal, DealContact, RuleRun, TimelineEntry
from server.rules import dispatch, engine, queue
from server.services import elements as element_service
from tests.support import add_rule, make_pipeline

pytestmark = pytest.mark.production_backend


@pytest.fixture
def handed(worker_paused: None, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The runs creates hand over after their commit, collected instead of run (the test plays the worker)."""
    taken: list[int] = []

    async def take(run_ids: list[int]) -> None:
        taken.extend(run_ids)

    monkeypatch.setattr(dispatch.RUNS, "taker", take)
    return taken


async def _run_handed(handed: list[int]) -> list[int]:
    """What the embedded worker does with them: together, then each of the rest on its own (returned)."""
    run_ids = list(handed)
    handed.clear()
    alone = await engine.execute_together(run_ids)
    for run_id in alone:
        await engine.execute(run_id)
    return alone


async def _create(stage: Any, title: str = "Roof") -> Deal:
    return await element_service.create_element("deal", {"title": title, "amount": "1200"}, stage_id=stage.id,
                                                actor=SYSTEM)


async def _runs(deal: Deal) -> dict[str, RuleRun]:
    return {run.rule_key: run for run in await RuleRun.filter(element_type="deal", element_id=deal.id)}


async def test_runs_of_a_stage_entry_see_the_changes_of_the_rules_above_them(db, handed):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "modify_element", {"fields": {"currency": "USD"}}, key="usd")
    await add_rule(stages["offer"], "add_comment", {"text": "{{deal.title}} priced in {{deal.currency}}"},
                   key="comment")
    await add_rule(stages["offer"], "modify_element", {"fields": {"title": "{{deal.title}} ({{deal.currency}})"}},
                   key="retitle")

    deal = await _create(stages["offer"])
    alone = await _run_handed(handed)

    assert alone == [], "they ran together"
    runs = await _runs(deal)
    assert {key: run.status for key, run in runs.items()} == dict.fromkeys(("usd", "comment", "retitle"),
                                                                           RunStatus.succeeded)
    [comment] = await TimelineEntry.filter(element_type="deal", element_id=deal.id, kind="comment")
    assert comment.text == "Roof priced in USD"
    await deal.refresh_from_db()
    assert (deal.title, deal.currency) == ("Roof (USD)", "USD")
    assert sorted(await AuditEntry.filter(element_type="deal", element_id=deal.id).values_list("field", flat=True)) \
        == ["currency", "title"]


async def test_a_failing_rule_fails_alone_and_its_siblings_act_once(db, handed):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "Entered {{deal.stage.name}}"}, key="comment")
    await add_rule(stages["offer"], "modify_element", {"fields": {"amount": "{{deal.title}}"}}, key="broken")
    await add_rule(stages["offer"], "generate_code", {"length": 8}, key="code")

    deal = await _create(stages["offer"])
    alone = await _run_handed(handed)

    # rolled back: SQLite gives each back to run on its own; PostgreSQL acts for each started run on its own itself
    assert len(alone) == (3 if db.kind == "sqlite" else 0)
    runs = await _runs(deal)
    assert runs["broken"].status == RunStatus.failed
    assert "amount" in (runs["broken"].error or "")
    assert (runs["comment"].status, runs["code"].status) == (RunStatus.succeeded, RunStatus.succeeded)
    # the rolled-back batch left no trace: one attempt each, one comment, the amount unchanged
    assert {key: run.attempts for key, run in runs.items()} == {"comment": 1, "broken": 1, "code": 1}
    assert await TimelineEntry.filter(element_type="deal", element_id=deal.id, kind="comment").count() == 1
    await deal.refresh_from_db()
    assert str(deal.amount) == "1200.00"
    assert len(runs["code"].outputs["code"]) == 8


async def test_a_run_handed_over_twice_acts_once(db, handed):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "Hello"}, key="comment")
    await add_rule(stages["offer"], "generate_code", {"length": 8}, key="code")

    deal = await _create(stages["offer"])
    twice = list(handed) * 2  # a duplicate delivery, and the same ids again later
    for run_id in await engine.execute_together(twice):
        await engine.execute(run_id)
    assert await engine.execute_together(twice) == twice  # nothing queued is left: each finds its run taken
    for run_id in twice:
        assert await engine.execute(run_id) is None

    runs = await _runs(deal)
    assert {run.status for run in runs.values()} == {RunStatus.succeeded}
    assert {run.attempts for run in runs.values()} == {1}
    assert await TimelineEntry.filter(element_type="deal", element_id=deal.id, kind="comment").count() == 1


async def test_a_lane_follower_starts_after_its_leader_of_the_batch_succeeded(db, handed):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "generate_code", {"length": 6}, key="code")
    await add_rule(stages["offer"], "add_comment", {"text": "Code {{rules.code.code}}"}, key="told",
                   lane="after_previous")
    await add_rule(stages["offer"], "modify_element", {"fields": {"currency": "USD"}}, key="usd")

    deal = await _create(stages["offer"])
    runs = await _runs(deal)
    assert sorted(handed) == sorted([runs["code"].id, runs["usd"].id]), "the follower is not handed over"
    await _run_handed(handed)

    runs = await _runs(deal)
    assert (runs["code"].status, runs["usd"].status) == (RunStatus.succeeded, RunStatus.succeeded)
    assert runs["told"].status == RunStatus.scheduled and runs["told"].due_at is not None  # due once the lane's leader succeeded
    assert await queue.claim([runs["told"].id]) == [runs["told"].id]
    assert await engine.execute(runs["told"].id) == RunStatus.succeeded
    [comment] = await TimelineEntry.filter(element_type="deal", element_id=deal.id, kind="comment")
    assert comment.text == f"Code {runs['code'].outputs['code']}"


async def test_a_rule_naming_the_contact_renders_it_and_one_that_does_not_still_runs(db, handed):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "Call {{deal.contact.name}}"}, key="call")
    await add_rule(stages["offer"], "add_comment", {"text": "Entered {{deal.stage.name}}"}, key="entered")
    # The element as a whole (every related record's name) is read with its contact too.
    await add_rule(stages["offer"], "add_comment", {"text": "{{ deal }}"}, key="whole")
    deal = await _create(stages["new"])
    contact = await Contact.create(name="Katrin Vogel")
    await DealContact.create(deal_id=deal.id, contact_id=contact.id, position=0)

    await element_service.move_element("deal", deal.id, stages["offer"].id, actor=SYSTEM)
    await _run_handed(handed)

    texts = await TimelineEntry.filter(element_type="deal", element_id=deal.id, kind="comment").values_list(
        "text", flat=True)
    assert sorted(texts)[:2] == ["Call Katrin Vogel", "Entered Offer"]
    assert "Katrin Vogel" in sorted(texts)[2]


async def test_a_run_anchored_on_a_date_a_rule_of_the_batch_changes_moves_with_it(db, handed):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "modify_element", {"fields": {"close_date": "2030-03-01"}}, key="close")
    await add_rule(stages["offer"], "add_comment", {"text": "Closing"}, key="closing",
                   timing={"kind": "at_field", "field": "close_date", "time_of_day": "09:00"})

    deal = await element_service.create_element("deal", {"title": "Roof", "close_date": "2029-01-01"},
                                                stage_id=stages["offer"].id, actor=SYSTEM)
    await _run_handed(handed)

    runs = await _runs(deal)
    assert runs["close"].status == RunStatus.succeeded
    assert runs["closing"].status == RunStatus.scheduled
    assert runs["closing"].due_at is not None and runs["closing"].due_at.date().isoformat() == "2030-03-01"
