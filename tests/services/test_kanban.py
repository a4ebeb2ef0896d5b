"""The kanban board's service: counts and sums per stage, a page of the newest cards per column, what an employee
sees, and the runs of each card's current stay."""

from decimal import Decimal

import pytest

from server.actor import SYSTEM
from server.models import Deal
from server.services import elements, kanban
from server.services.access import Actor
from tests.support import add_rule, make_pipeline, make_user, wait_for_runs

pytestmark = pytest.mark.production_backend


async def test_a_full_column_shows_its_newest_cards_and_pages_through_the_rest(db):
    pipeline, stages = await make_pipeline()
    await Deal.bulk_create([Deal(title=f"deal {n}", pipeline=pipeline, stage=stages["new"], amount=Decimal(10))
                            for n in range(45)])
    new, *others = await kanban.columns(pipeline, first=20, actor=SYSTEM)
    assert new.count == 45 and len(new.cards) == 20 and new.has_more
    assert new.sums == [(Decimal("450.00"), "EUR")]
    assert [c.element.title for c in new.cards[:2]] == ["deal 44", "deal 43"]
    assert all(c.count == 0 and c.cards == [] and c.sums == [] for c in others)

    seen = [c.element.id for c in new.cards]
    more, again = await kanban.cards("deal", stages["new"], first=20, after=seen[-1], actor=SYSTEM)
    rest, last = await kanban.cards("deal", stages["new"], first=20, after=more[-1].element.id, actor=SYSTEM)
    assert again and not last and len(rest) == 5
    assert len(set(seen) | {c.element.id for c in more + rest}) == 45


async def test_sums_are_per_currency_and_empty_amounts_add_nothing(db):
    pipeline, stages = await make_pipeline()
    for amount, currency in ((100, "EUR"), (250, "EUR"), (70, "USD"), (None, "EUR")):
        await Deal.create(title="d", pipeline=pipeline, stage=stages["offer"], amount=amount, currency=currency)
    offer = next(c for c in await kanban.columns(pipeline, actor=SYSTEM) if c.stage.code == "offer")
    assert offer.count == 4
    assert offer.sums == [(Decimal("350.00"), "EUR"), (Decimal("70.00"), "USD")]


async def test_an_employee_counts_and_sees_only_their_own_cards(db):
    pipeline, stages = await make_pipeline()
    ann, bob = await make_user("Ann"), await make_user("Bob")
    await Deal.create(title="Ann's", pipeline=pipeline, stage=stages["new"], responsible=ann, amount=5)
    await Deal.create(title="Bob's", pipeline=pipeline, stage=stages["new"], responsible=bob, amount=7)
    new = (await kanban.columns(pipeline, actor=Actor(ann.id, ann.role)))[0]
    assert new.count == 1 and [c.element.title for c in new.cards] == ["Ann's"]
    assert new.sums == [(Decimal("5.00"), "EUR")]


async def test_a_card_counts_the_runs_of_its_current_stay_only(db):
    pipeline, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "offer sent"}, key="one")
    await add_rule(stages["offer"], "add_comment", {"text": "again"}, key="two")
    await add_rule(stages["invoice"], "add_comment", {"text": "invoice"}, key="three")
    deal = await elements.create_element("deal", {"title": "Moving"}, stage_id=stages["offer"].id, actor=SYSTEM)
    await wait_for_runs("deal", deal.id, 2)
    card = await kanban.card("deal", deal.id, actor=SYSTEM)
    assert card.runs.by_status == {"succeeded": 2} and not card.runs.moving and card.runs.unfinished == 0

    await elements.move_element("deal", deal.id, stages["invoice"].id, actor=SYSTEM)
    await wait_for_runs("deal", deal.id, 3)
    assert (await kanban.card("deal", deal.id, actor=SYSTEM)).runs.by_status == {"succeeded": 1}
