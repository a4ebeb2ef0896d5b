"""GraphQL `dryRun` and `explain`: per rule what entering a stage would do, and why each run did what it did, for
whoever may see the element (an employee only their own leads and deals)."""

import pytest

from server.actor import SYSTEM
from server.models import Message, RuleRun
from server.services import elements as element_service
from tests.support import add_rule, make_pipeline, make_token, wait_for_runs

pytestmark = pytest.mark.production_backend

DRY_RUN = """query($e: ID!, $s: ID!) { dryRun(elementId: $e, stageId: $s) {
  __typename
  ... on DryRun { elementType stageName revision triggers
    rules { title actionType lane timing due dueAt conditionMet condition params effect problem wouldAct sentence } }
  ... on ForbiddenError { message } ... on NotFoundError { message }
  ... on ValidationError { errors { field message } } } }"""

EXPLAIN = """query($t: String!, $e: ID!) { explain(elementType: $t, elementId: $e) {
  __typename
  ... on Explanation { stays { stageName status sentence runs { title status sentence reason error attempts } }
                       activations { outcome evaluations } }
  ... on ForbiddenError { message } } }"""


async def board():
    _, stages = await make_pipeline("deal", "Sales")
    offer = stages["offer"]
    await add_rule(offer, "add_comment", {"text": "Offer for {{deal.title}}"}, title="Note the offer")
    await add_rule(offer, "add_comment", {"text": "Big one"}, title="Flag big deals",
                   condition=[[{"field": "deal.amount", "op": "gt", "value": 5000}]])
    return stages


async def test_dry_run_answers_each_rule_in_words_and_writes_nothing(db, api):
    stages = await board()
    _, token = await make_token("manager", "Mia")
    deal = await element_service.create_element("deal", {"title": "Acme roof", "amount": 1200},
                                                stage_id=stages["new"].id, actor=SYSTEM)

    data = await api.as_(token, DRY_RUN, e=str(deal.id), s=str(stages["offer"].id))

    run = data["dryRun"]
    assert (run["__typename"], run["elementType"], run["stageName"]) == ("DryRun", "deal", "Offer")
    note, flag = run["rules"]
    assert note["params"] == {"text": "Offer for Acme roof", "author": None}
    assert note["sentence"] == "“Note the offer” would run now: Adds the comment “Offer for Acme roof”."
    assert note["wouldAct"] and note["conditionMet"] is None
    assert flag["conditionMet"] is False and "(deal.amount is 1,200)" in flag["condition"]
    assert not flag["wouldAct"]
    assert await RuleRun.all().count() == 0 and await Message.all().count() == 0


async def test_an_employee_dry_runs_and_explains_only_their_own_deals(db, api):
    stages = await board()
    owner, own_token = await make_token("employee", "Olga")
    _, other_token = await make_token("employee", "Otto")
    deal = await element_service.create_element("deal", {"title": "Olga's", "responsible": owner.id},
                                                stage_id=stages["offer"].id, actor=SYSTEM)
    await wait_for_runs("deal", deal.id, 2)

    own = await api.as_(own_token, DRY_RUN, e=str(deal.id), s=str(stages["won"].id))
    other = await api.as_(other_token, DRY_RUN, e=str(deal.id), s=str(stages["won"].id))
    explained = await api.as_(own_token, EXPLAIN, t="deal", e=str(deal.id))
    refused = await api.as_(other_token, EXPLAIN, t="deal", e=str(deal.id))

    assert own["dryRun"]["__typename"] == "DryRun" and own["dryRun"]["rules"] == []
    assert other["dryRun"]["__typename"] == "ForbiddenError"
    assert refused["explain"]["__typename"] == "ForbiddenError"
    [stay] = explained["explain"]["stays"]
    assert [(r["title"], r["status"]) for r in stay["runs"]] == [("Note the offer", "succeeded"),
                                                                 ("Flag big deals", "skipped")]
    assert stay["runs"][1]["sentence"] == ("“Flag big deals” was skipped: condition not met: deal.amount is more than "
                                           "5,000 (deal.amount is empty).")


async def test_a_stage_of_another_pipeline_or_a_bad_id_is_refused_naming_the_argument(db, api):
    stages = await board()
    _, other = await make_pipeline("deal", "Service")
    _, token = await make_token("admin", "Ada")
    deal = await element_service.create_element("deal", {"title": "Acme"}, stage_id=stages["new"].id, actor=SYSTEM)

    wrong = await api.as_(token, DRY_RUN, e=str(deal.id), s=str(other["new"].id))
    missing = await api.as_(token, DRY_RUN, e=str(deal.id), s="999999")
    bad = await api.as_(token, DRY_RUN, e="abc", s=str(stages["new"].id))

    assert wrong["dryRun"]["errors"] == [{"field": "stageId",
                                          "message": f"stage “New” is not in the pipeline of deal {deal.id}"}]
    assert missing["dryRun"] == {"__typename": "NotFoundError", "message": "stage 999999 does not exist"}
    assert bad["dryRun"]["errors"] == [{"field": "elementId", "message": "'abc' is not an id"}]
