"""Inbound webhook triggers under concurrency and odd input: one move per event and element, retries answered
with the first answer, a trigger or stage gone meanwhile, and payloads that are large, deep or not quite JSON."""

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from server.actor import SYSTEM
from server.app import create_app
from server.models import Deal, Stage, StageRun, TriggerActivation
from server.rules.triggering import MAX_DATA_CHARS
from server.services import elements as element_service
from server.services import triggers as trigger_service
from tests.rules.test_triggers import add_trigger, deal_in, six_stages, stage_of

pytestmark = pytest.mark.production_backend


@pytest.fixture
async def hooks(db) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process, answering a crash as the server would (500) instead of raising it into the test."""
    transport = httpx.ASGITransport(app=create_app(runtime=False), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def event(deal: Deal, **payload) -> dict:
    return {"element_type": "deal", "element_id": deal.id, **payload}


async def test_one_idempotency_key_sent_for_two_deals_at_once_moves_one_and_answers_the_other_with_it(hooks):
    stages = await six_stages()
    trigger = await add_trigger(stages["s3"], "webhook", name="Paid")
    pairs = [(await deal_in(stages["s1"]), await deal_in(stages["s1"])) for _ in range(4)]

    for n, (one, other) in enumerate(pairs):
        answers = await asyncio.gather(*(hooks.post(f"/hooks/triggers/{trigger.token}", json=event(deal),
                                                    headers={"Idempotency-Key": f"order-{n}"})
                                         for deal in (one, other)))

        assert [a.status_code for a in answers] == [200, 200]
        bodies = sorted((a.json() for a in answers), key=lambda b: b["duplicate"])
        assert bodies[0]["outcome"] == "moved" and bodies[1] == {**bodies[0], "duplicate": True}
        assert sorted([await stage_of(one), await stage_of(other)]) == ["s1", "s3"]
        assert await TriggerActivation.filter(idempotency_key=f"{trigger.id}:order-{n}").count() == 1


async def test_two_events_for_one_deal_at_once_move_it_once_and_the_second_meets_it_in_the_new_stage(hooks):
    stages = await six_stages()
    trigger = await add_trigger(stages["s3"], "webhook", name="Paid")
    deal = await deal_in(stages["s1"])

    answers = await asyncio.gather(*(hooks.post(f"/hooks/triggers/{trigger.token}", json=event(deal, n=n),
                                                headers={"Idempotency-Key": f"event-{n}"}) for n in range(2)))

    assert [a.status_code for a in answers] == [200, 200]
    assert sorted(a.json()["outcome"] for a in answers) == ["moved", "no_match"]
    later = await TriggerActivation.get(element_id=deal.id, outcome="no_match")
    assert later.from_stage_id == stages["s3"].id
    assert later.evaluations[0]["why"] == "the element is in its stage already"
    assert await StageRun.filter(element_id=deal.id, stage_id=stages["s3"].id).count() == 1


async def test_an_event_for_a_deal_being_deleted_moves_it_before_or_finds_it_gone(hooks):
    stages = await six_stages()
    trigger = await add_trigger(stages["s3"], "webhook", name="Paid")
    deal = await deal_in(stages["s1"])

    answer, _ = await asyncio.gather(hooks.post(f"/hooks/triggers/{trigger.token}", json=event(deal)),
                                     element_service.delete_element("deal", deal.id, actor=SYSTEM))

    assert not await Deal.exists(id=deal.id)
    if answer.status_code == 200:  # it came first: moved, then deleted
        assert answer.json()["outcome"] == "moved"
    else:
        assert answer.status_code == 422
        assert answer.json()["fields"] == [{"field": "element_id", "message": f"deal {deal.id} does not exist"}]


async def _meanwhile(hooks: httpx.AsyncClient, url: str, body: dict, change) -> httpx.Response:
    """POST while the deal's row is locked by a transaction that makes `change`, then commits."""
    from server.db import transaction
    from server.rules import elements

    request = asyncio.ensure_future(hooks.post(url, json=body))
    async with transaction():
        await elements.load("deal", body["element_id"], lock=True)
        await asyncio.sleep(0.3)  # the request has found its trigger and waits for the row
        await change()
    return await request


async def test_an_event_whose_trigger_stage_is_deleted_meanwhile_answers_no_webhook(hooks):
    stages = await six_stages()
    trigger = await add_trigger(stages["s3"], "webhook", name="Paid")
    deal = await deal_in(stages["s1"])

    answer = await _meanwhile(hooks, f"/hooks/triggers/{trigger.token}", event(deal),
                              lambda: Stage.filter(id=stages["s3"].id).delete())

    assert answer.status_code == 404
    assert await stage_of(deal) == "s1"


async def test_an_event_on_a_url_rotated_meanwhile_moves_nothing(hooks):
    stages = await six_stages()
    trigger = await add_trigger(stages["s3"], "webhook", name="Paid")
    deal = await deal_in(stages["s1"])

    answer = await _meanwhile(hooks, f"/hooks/triggers/{trigger.token}", event(deal),
                              lambda: trigger_service.rotate_webhook_url(trigger.id, actor=SYSTEM))

    assert answer.status_code == 404
    assert await stage_of(deal) == "s1"
    assert not await TriggerActivation.exists(element_id=deal.id)


async def test_a_huge_payload_keeps_a_bounded_record_even_when_its_condition_quotes_it(hooks):
    stages = await six_stages()
    trigger = await add_trigger(stages["s3"], "webhook", name="Paid",
                                condition=[[{"field": "event.payload.note", "op": "eq", "value": "paid"}]])
    deal = await deal_in(stages["s1"])

    answer = await hooks.post(f"/hooks/triggers/{trigger.token}", json=event(deal, note="x" * 200_000))

    assert answer.status_code == 200 and answer.json()["outcome"] == "no_match"
    activation = await TriggerActivation.get(element_id=deal.id)
    assert len(json.dumps(activation.data)) <= MAX_DATA_CHARS + 100
    assert len(json.dumps(activation.evaluations)) < 2_000
    assert activation.evaluations[0]["why"].startswith("condition not met: event.payload.note is “paid” (")


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"element_type": "deal", "element_id": 1, '
                                                                   b'"x": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
                                  b'{"element_type": "deal", "element_id": 1, "amount": NaN}',
                                  b'{"element_type": "deal", "element_id": 1, "amount": -Infinity}'])
async def test_a_body_that_is_not_plain_json_is_refused_as_such(hooks, body):
    stages = await six_stages()
    trigger = await add_trigger(stages["s3"], "webhook", name="Paid")

    answer = await hooks.post(f"/hooks/triggers/{trigger.token}", content=body)

    assert answer.status_code == 400
    assert answer.json()["error"].startswith("the body is not JSON")


async def test_a_condition_on_a_payload_key_the_event_lacks_is_not_met_and_says_so(hooks):
    stages = await six_stages()
    trigger = await add_trigger(stages["s3"], "webhook", name="From the shop",
                                condition=[[{"field": "event.payload.source", "op": "eq", "value": "shop"}],
                                           [{"field": "event.payload.order.id", "op": "gt", "value": 10}]])
    deal = await deal_in(stages["s1"])

    answer = await hooks.post(f"/hooks/triggers/{trigger.token}", json=event(deal, order="not an object"))

    assert answer.status_code == 200 and answer.json()["outcome"] == "no_match"
    [activation] = await TriggerActivation.filter(element_id=deal.id)
    assert activation.evaluations[0]["why"] == (
        "condition not met: event.payload.source is “shop” (event.payload.source is empty); "
        "or event.payload.order.id is more than 10 (event.payload.order.id is empty)")
