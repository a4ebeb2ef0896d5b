"""Creates with an idempotency key: a retry after a lost answer gets the first result, not a second element."""

import asyncio
from datetime import timedelta

from server.models import Contact, Deal, IdempotencyKey, Lead, RuleRun, TimelineEntry
from server.services import idempotency
from tests.support import add_rule, make_pipeline, make_token, wait_for_runs
from tests.support.api import api, data, refused_fields

CREATE_DEAL = """mutation($input: CreateDealInput!, $key: String) {
  createDeal(input: $input, idempotencyKey: $key) {
    __typename ... on Deal { id title } ... on ValidationError { errors { field message } } } }"""


async def _sales_with_rules() -> str:
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "add_comment", {"text": "Welcome"})
    await add_rule(stages["new"], "history_entry", {"text": "Entered"})
    return str(stages["new"].id)


async def test_a_create_deal_retried_with_the_same_key_makes_one_deal_with_one_set_of_runs(admin_client):
    stage = await _sales_with_rules()
    given = {"title": "Order 17", "stageId": stage}
    first = (await data(admin_client, CREATE_DEAL, input=given, key="order-17"))["createDeal"]
    again = (await data(admin_client, CREATE_DEAL, input=given, key="order-17"))["createDeal"]
    assert again == first
    deal_id = int(first["id"])
    runs = await wait_for_runs("deal", deal_id, 2)
    assert await Deal.filter(title="Order 17").count() == 1
    assert len(runs) == 2, "the retry started no runs of its own"
    assert await RuleRun.all().count() == 2


async def test_the_idempotency_key_header_works_as_the_argument(admin_client):
    stage = await _sales_with_rules()
    query = 'mutation($s: ID!) { createDeal(input: {title: "By header", stageId: $s}) { ... on Deal { id } } }'
    answers = []
    for _ in range(2):
        response = await admin_client.post("/graphql", json={"query": query, "variables": {"s": stage}},
                                           headers={"Idempotency-Key": "header-1"})
        answers.append(response.json()["data"]["createDeal"]["id"])
    assert answers[0] == answers[1]
    assert await Deal.filter(title="By header").count() == 1


async def test_without_a_key_each_create_makes_its_own_deal(admin_client):
    stage = await _sales_with_rules()
    for _ in range(2):
        await data(admin_client, CREATE_DEAL, input={"title": "Twice", "stageId": stage})
    assert await Deal.filter(title="Twice").count() == 2


async def test_concurrent_creates_with_one_key_make_one_deal_and_answer_it_to_both(db):
    stage = await _sales_with_rules()
    _, token = await make_token("admin")
    given = {"title": "Raced", "stageId": stage}

    async def create() -> dict:
        async with api(token) as client:
            return (await data(client, CREATE_DEAL, input=given, key="race-1"))["createDeal"]

    answers = await asyncio.gather(*(create() for _ in range(4)))
    assert {a["__typename"] for a in answers} == {"Deal"}
    assert len({a["id"] for a in answers}) == 1
    assert await Deal.filter(title="Raced").count() == 1
    assert await IdempotencyKey.all().count() == 1


async def test_the_same_key_with_other_input_is_refused_naming_the_key(admin_client):
    stage = await _sales_with_rules()
    await data(admin_client, CREATE_DEAL, input={"title": "First", "stageId": stage}, key="k-1")
    refused = (await data(admin_client, CREATE_DEAL, input={"title": "Second", "stageId": stage}, key="k-1"))["createDeal"]
    assert "idempotencyKey" in refused_fields(refused)
    assert await Deal.filter(title="Second").count() == 0


async def test_a_key_is_the_users_own_and_the_operations_own(db):
    stage = await _sales_with_rules()
    _, ann = await make_token("admin", "Ann")
    _, bob = await make_token("admin", "Bob")
    given = {"title": "Shared key", "stageId": stage}
    async with api(ann) as client:
        first = (await data(client, CREATE_DEAL, input=given, key="same"))["createDeal"]
        contact = (await data(client, 'mutation { createContact(input: {name: "Cleo"}, idempotencyKey: "same") '
                                      '{ __typename } }'))["createContact"]
    async with api(bob) as client:
        other = (await data(client, CREATE_DEAL, input=given, key="same"))["createDeal"]
    assert contact == {"__typename": "Contact"}
    assert first["id"] != other["id"]
    assert await Deal.filter(title="Shared key").count() == 2


async def test_a_refused_create_keeps_its_key_free(admin_client):
    stage = await _sales_with_rules()
    refused = (await data(admin_client, CREATE_DEAL, input={"title": " ", "stageId": stage}, key="k-2"))["createDeal"]
    assert refused["__typename"] == "ValidationError"
    made = (await data(admin_client, CREATE_DEAL, input={"title": "Fixed", "stageId": stage}, key="k-2"))["createDeal"]
    assert made["__typename"] == "Deal"


async def test_a_contact_create_retried_makes_one_contact(admin_client):
    query = 'mutation { createContact(input: {name: "Dora"}, idempotencyKey: "c-1") { ... on Contact { id } } }'
    first = await data(admin_client, query)
    assert await data(admin_client, query) == first
    assert await Contact.filter(name="Dora").count() == 1


async def test_an_overlong_key_is_refused_naming_it(admin_client):
    stage = await _sales_with_rules()
    refused = (await data(admin_client, CREATE_DEAL, input={"title": "Long", "stageId": stage}, key="x" * 201))["createDeal"]
    assert "idempotencyKey" in refused_fields(refused)


async def test_keys_expire_after_the_retention(admin_client, clock_control):
    stage = await _sales_with_rules()
    given = {"title": "Next day", "stageId": stage}
    first = (await data(admin_client, CREATE_DEAL, input=given, key="daily"))["createDeal"]
    clock_control.advance(timedelta(hours=25))
    second = (await data(admin_client, CREATE_DEAL, input=given, key="daily"))["createDeal"]
    assert second["id"] != first["id"]
    clock_control.advance(timedelta(hours=25))
    assert await idempotency.prune() == 1
    assert await IdempotencyKey.all().count() == 0



async def test_a_comment_retried_with_the_same_key_is_on_the_timeline_once(admin_client):
    stage = await _sales_with_rules()
    deal = (await data(admin_client, CREATE_DEAL, input={"title": "Talked", "stageId": stage}))["createDeal"]
    query = """mutation($id: ID!) { addComment(elementType: "deal", elementId: $id, text: "Called back",
      idempotencyKey: "call-1") { ... on TimelineEntry { id text } } }"""
    first = await data(admin_client, query, id=deal["id"])
    assert await data(admin_client, query, id=deal["id"]) == first
    assert await TimelineEntry.filter(kind="comment", text="Called back").count() == 1


async def test_a_lead_create_retried_makes_one_lead(admin_client):
    await make_pipeline("lead", "Leads")
    query = 'mutation { createLead(input: {title: "Walk-in"}, idempotencyKey: "l-1") { ... on Lead { id } } }'
    first = await data(admin_client, query)
    assert await data(admin_client, query) == first
    assert await Lead.filter(title="Walk-in").count() == 1
