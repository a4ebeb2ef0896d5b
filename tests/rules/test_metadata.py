"""The stage-metadata cache (server/rules/metadata.py): an edit through any path is what the next run uses, in this
process and in the others (on PostgreSQL the runs execute in the worker's own process), however it was written."""

import sqlite3
from datetime import timezone

import asyncpg
import pytest

from server.actor import SYSTEM
from server.db import transaction
from server.errors import ValidationFailed
from server.kinds import RunStatus
from server.models import CustomField, Deal, RuleRun, Stage, TimelineEntry, WorkCalendar
from server.rules import metadata
from server.rules.metadata import METADATA, MetadataCache
from server.services import elements as element_service
from server.services import pipelines as pipeline_service
from server.services import reruns as rerun_service
from server.services import revisions as revision_service
from server.services import rules as rule_service
from server.services import triggers as trigger_service
from tests.support import add_rule, make_pipeline, wait_for_runs, wait_until
from tests.support.statements import traced

pytestmark = pytest.mark.production_backend

NAMES = "{{deal.stage.name}} of {{deal.pipeline.name}}"


async def _comment_of_a_new_deal(stage: Stage, title: str) -> str:
    deal = await element_service.create_element("deal", {"title": title}, stage_id=stage.id, actor=SYSTEM)
    await wait_for_runs("deal", deal.id, 1)
    [entry] = await TimelineEntry.filter(element_type="deal", element_id=deal.id, kind="comment")
    return entry.text


async def test_every_edit_of_a_stage_is_what_the_next_run_uses(db):
    pipeline, stages = await make_pipeline()
    offer = stages["offer"]
    rule = await add_rule(offer, "add_comment", {"text": NAMES})
    assert await _comment_of_a_new_deal(offer, "first") == "Offer of Sales"

    await pipeline_service.update_stage(offer.id, name="Proposal", actor=SYSTEM)
    assert await _comment_of_a_new_deal(offer, "stage renamed") == "Proposal of Sales"

    await pipeline_service.rename_pipeline(pipeline.id, "Retail", actor=SYSTEM)
    assert await _comment_of_a_new_deal(offer, "pipeline renamed") == "Proposal of Retail"

    await rule_service.update_rule(rule.id, rule_service.RuleInput(params={"text": "now " + NAMES}), actor=SYSTEM)
    assert await _comment_of_a_new_deal(offer, "rule edited") == "now Proposal of Retail"

    await revision_service.rollback_stage(offer.id, 1, actor=SYSTEM)
    assert await _comment_of_a_new_deal(offer, "rolled back") == "Proposal of Retail"

    await rerun_service.pause_rule(rule.id, actor=SYSTEM)
    held = await element_service.create_element("deal", {"title": "paused"}, stage_id=offer.id, actor=SYSTEM)

    async def waiting() -> RuleRun | None:
        run = await RuleRun.get(element_id=held.id)
        return run if run.reason and run.reason.startswith("rule paused") else None

    assert (await wait_until(waiting, timeout_s=10, what="the paused rule's run to wait")).status == RunStatus.scheduled
    await rerun_service.resume_rule(rule.id, actor=SYSTEM)
    assert [run.status for run in await wait_for_runs("deal", held.id, 1)] == [RunStatus.succeeded]


async def test_a_new_custom_field_is_accepted_by_the_next_create(db):
    _, stages = await make_pipeline()
    with pytest.raises(ValidationFailed) as refused:
        await element_service.create_element("deal", {"title": "sized", "size": "5"}, stage_id=stages["new"].id,
                                             actor=SYSTEM)
    assert "size" in str(refused.value)

    await CustomField.create(entity_type="deal", code="size", name="Size", type="number")  # as demo seeding does
    deal = await element_service.create_element("deal", {"title": "sized", "size": "5"}, stage_id=stages["new"].id,
                                                actor=SYSTEM)
    assert (await Deal.get(id=deal.id)).custom == {"size": "5"}


async def test_a_new_trigger_moves_the_element_a_rule_changes_next(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "modify_element", {"fields": {"currency": "USD"}})
    first = await element_service.create_element("deal", {"title": "before"}, stage_id=stages["offer"].id, actor=SYSTEM)
    await wait_for_runs("deal", first.id, 1)
    assert (await Deal.get(id=first.id)).stage_id == stages["offer"].id

    await trigger_service.create_trigger(stages["invoice"].id, trigger_service.TriggerInput(
        trigger_type="field_changed", name="Priced in dollars", settings={"fields": ["currency"]}), actor=SYSTEM)
    second = await element_service.create_element("deal", {"title": "after"}, stage_id=stages["offer"].id, actor=SYSTEM)
    await wait_for_runs("deal", second.id, 1)
    assert (await Deal.get(id=second.id)).stage_id == stages["invoice"].id


async def _rename_outside(db, stage_id: int, name: str) -> None:
    """Another process's write, on a connection of its own that knows nothing of the cache."""
    if db.kind == "sqlite":
        from server.config import settings

        connection = sqlite3.connect(settings().database_url.removeprefix("sqlite://"), timeout=10)
        with connection:
            connection.execute('UPDATE "stage" SET "name" = ? WHERE "id" = ?', (name, stage_id))
        connection.close()
        return
    connection = await asyncpg.connect(db.database_url, timeout=10)
    try:
        await connection.execute('UPDATE "stage" SET "name" = $1 WHERE "id" = $2', name, stage_id)
    finally:
        await connection.close()


async def test_a_write_by_another_process_is_seen_by_the_next_unit_of_work(db):
    _, stages = await make_pipeline()
    other = MetadataCache()
    assert (await METADATA.stage(stages["offer"].id)).name == (await other.stage(stages["offer"].id)).name == "Offer"

    await _rename_outside(db, stages["offer"].id, "Quote")

    assert (await METADATA.stage(stages["offer"].id)).name == "Quote"
    assert (await other.stage(stages["offer"].id)).name == "Quote"


async def test_what_a_rolled_back_transaction_read_is_not_kept(db):
    _, stages = await make_pipeline()
    with pytest.raises(RuntimeError):
        async with transaction():
            await pipeline_service.update_stage(stages["offer"].id, name="Never", actor=SYSTEM)
            assert (await METADATA.stage(stages["offer"].id)).name == "Never"  # its own write, uncommitted
            raise RuntimeError("the edit is abandoned")

    # The next edit gets a token of its own, not the abandoned one's (a counter would give it the same number).
    await pipeline_service.update_stage(stages["offer"].id, name="Later", actor=SYSTEM)
    assert (await METADATA.stage(stages["offer"].id)).name == "Later"


async def test_a_unit_of_work_reads_the_marker_once(db, monkeypatch):
    _, stages = await make_pipeline()
    sent: list[str] = []
    async with traced(db.kind, monkeypatch, sent.append):
        async with transaction():
            await METADATA.stage(stages["offer"].id)
            await METADATA.custom_fields("deal")
            await METADATA.paused_rule_ids()
            await METADATA.stage(stages["won"].id)
        in_unit = sum("config_marker" in statement for statement in sent)
        sent.clear()
        await METADATA.stage(stages["offer"].id)
        await METADATA.stage(stages["won"].id)
    assert in_unit == 1
    assert sum("config_marker" in statement for statement in sent) == 2  # outside a transaction, each read is a unit
    assert not any('FROM "stage"' in statement for statement in sent)  # and the stages came from the cache


async def test_the_cache_keeps_at_most_its_bound(db):
    _, stages = await make_pipeline()
    small = MetadataCache(max_entries=2)
    for stage in stages.values():
        assert (await small.stage(stage.id)).name == stage.name
    assert len(small) == 2


async def test_an_emptied_marker_comes_back_with_the_next_edit(db):
    _, stages = await make_pipeline()
    await METADATA.stage(stages["offer"].id)
    from tortoise import connections

    await connections.get("default").execute_script('DELETE FROM "config_marker"')
    assert await metadata.read_marker() == ""
    await pipeline_service.update_stage(stages["offer"].id, name="Back", actor=SYSTEM)
    assert await metadata.read_marker() != ""
    assert (await METADATA.stage(stages["offer"].id)).name == "Back"


async def test_a_new_work_calendar_times_the_next_stage_entry(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "morning"},
                   timing={"kind": "after", "amount": 1, "unit": "days", "time_of_day": "09:00"})

    async def due_hour(title: str) -> int:
        deal = await element_service.create_element("deal", {"title": title}, stage_id=stages["offer"].id,
                                                    actor=SYSTEM)
        [run] = await RuleRun.filter(element_type="deal", element_id=deal.id)
        assert run.due_at is not None
        return run.due_at.astimezone(timezone.utc).hour

    assert await due_hour("no calendar") == 9  # 09:00 UTC
    await WorkCalendar.create(timezone="Asia/Tokyo")  # as demo seeding does
    assert await due_hour("Tokyo") == 0  # 09:00 in Tokyo


async def test_a_create_without_a_stage_follows_a_new_default_pipeline_and_its_new_first_stage(db):
    _, stages = await make_pipeline()
    first = await element_service.create_element("deal", {"title": "first"}, actor=SYSTEM)
    assert first.stage_id == stages["new"].id

    retail = await pipeline_service.create_pipeline("Retail", "deal", actor=SYSTEM)
    door, shelf = [await pipeline_service.create_stage(retail.id, name, actor=SYSTEM) for name in ("Door", "Shelf")]
    assert (await element_service.create_element("deal", {"title": "chosen"}, pipeline_id=retail.id,
                                                 actor=SYSTEM)).stage_id == door.id
    await pipeline_service.reorder_stages(retail.id, [shelf.id, door.id], actor=SYSTEM)
    assert (await element_service.create_element("deal", {"title": "reordered"}, pipeline_id=retail.id,
                                                 actor=SYSTEM)).stage_id == shelf.id
    with pytest.raises(ValidationFailed, match="no deal pipeline"):
        await element_service.create_element("deal", {"title": "nowhere"}, pipeline_id=retail.id + 99, actor=SYSTEM)
