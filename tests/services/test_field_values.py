"""Never save what cannot be read back: every field type refuses values its column (or the JSON of
custom values) cannot hold, with a ValidationError naming the field, through the API and through
Modify element rules, on both backends."""

from typing import Any

import pytest

from server.models import CustomField, Deal, Lead, RuleRun
from tests.support.api import api, data, refused_fields
from tests.support import add_rule, make_pipeline, make_token, wait_for_runs

pytestmark = pytest.mark.production_backend

UPDATE_DEAL = """mutation($id: ID!, $fields: JSON!) { updateDeal(id: $id, fields: $fields) {
  __typename ... on Deal { amount custom closeDate } ... on ValidationError { errors { field message } } } }"""
CREATE_DEAL = """mutation($input: CreateDealInput!) { createDeal(input: $input) {
  __typename ... on Deal { id amount } ... on ValidationError { errors { field message } } } }"""
CREATE_LEAD = """mutation($input: CreateLeadInput!) { createLead(input: $input) {
  __typename ... on Lead { id source } ... on ValidationError { errors { field message } } } }"""
DEALS = "{ deals { totalCount nodes { id title amount custom } } }"


async def test_an_amount_the_column_cannot_hold_is_refused_and_the_deal_list_still_works(db: Any) -> None:
    await make_pipeline()
    _, token = await make_token("admin")
    async with api(token) as client:
        deal = (await data(client, CREATE_DEAL, input={"title": "Probe", "fields": {"amount": "100"}}))["createDeal"]
        result = (await data(client, UPDATE_DEAL, id=deal["id"], fields={"amount": "1e26"}))["updateDeal"]
        assert refused_fields(result) == {"fields.amount": "must be between -9999999999999999.99 and 9999999999999999.99"}
        listed = await data(client, DEALS)
        assert listed["deals"]["nodes"][0]["amount"] == "100.00"
        created = (await data(client, CREATE_DEAL, input={"title": "Huge", "fields": {"amount": 1e26}}))["createDeal"]
        assert set(refused_fields(created)) == {"fields.amount"}
        largest = (await data(client, UPDATE_DEAL, id=deal["id"], fields={"amount": "9999999999999999.99"}))
        assert largest["updateDeal"]["amount"] == "9999999999999999.99"
        assert (await data(client, DEALS))["deals"]["totalCount"] == 1
    assert await Deal.all().count() == 1


FIELD_PROBES: list[tuple[dict[str, Any], str | None]] = [
    ({"amount": "12.345"}, "must have at most 2 decimal places"),
    ({"amount": "NaN"}, "must be a finite number"),
    ({"amount": True}, "must be a number"),
    ({"close_date": "0001-01-01"}, "must be between 1800-01-01 and 2999-12-31"),
    ({"close_date": "9999-12-31"}, "must be between 1800-01-01 and 2999-12-31"),
    ({"title": "x" * 256}, "must be at most 255 characters"),
    ({"responsible": "1e3"}, "must be the id of a user"),
    ({"responsible": "12345678901234567890123"}, "must be the id of a user"),
    ({"responsible": 2**31}, "must be the id of a user"),
    ({"currency": "€UR"}, "must be a three-letter currency code such as EUR"),
    ({"weight": "1" * 13}, "must be between -999999999999 and 999999999999"),
    ({"weight": "0.1234567"}, "must have at most 6 decimal places"),
    ({"notes": "n" * 20_001}, "must be at most 20000 characters"),
    ({"next_call": "2999-12-31T23:00:00"}, None),
    ({"next_call": "0001-01-01T00:00:00"}, "must be between 1800-01-01 and 2999-12-31"),
    ({"booking": {"resource": 1}}, "fields of type 'resource_booking' cannot be set here"),
]


async def test_each_field_type_refuses_what_it_cannot_hold(db: Any) -> None:
    await make_pipeline()
    for code, field_type in (("weight", "number"), ("notes", "text"), ("next_call", "datetime"),
                             ("booking", "resource_booking")):
        await CustomField.create(entity_type="deal", code=code, name=code, type=field_type)
    _, token = await make_token("admin")
    async with api(token) as client:
        deal = (await data(client, CREATE_DEAL, input={"title": "Probe"}))["createDeal"]
        for fields, refused in FIELD_PROBES:
            result = (await data(client, UPDATE_DEAL, id=deal["id"], fields=fields))["updateDeal"]
            name = next(iter(fields))
            if refused is None:
                assert result["__typename"] == "Deal", (fields, result)
            else:
                assert refused_fields(result) == {f"fields.{name}": refused}, fields
            assert len((await data(client, DEALS))["deals"]["nodes"]) == 1


async def test_a_lead_source_longer_than_its_column_is_refused(db: Any) -> None:
    await make_pipeline("lead", "Leads")
    _, token = await make_token("admin")
    async with api(token) as client:
        result = (await data(client, CREATE_LEAD, input={"title": "L", "fields": {"source": "s" * 101}}))["createLead"]
        assert refused_fields(result) == {"fields.source": "must be at most 100 characters"}
        kept = (await data(client, CREATE_LEAD, input={"title": "L", "fields": {"source": "s" * 100}}))["createLead"]
        assert kept["source"] == "s" * 100
    assert await Lead.all().count() == 1


async def test_a_modify_element_rule_cannot_save_an_amount_out_of_range(db: Any) -> None:
    _, stages = await make_pipeline()
    _, token = await make_token("admin")
    async with api(token) as client:
        rule = (await data(client, """mutation($s: ID!) { createRule(stageId: $s, input: {actionType: "modify_element",
            params: {fields: {amount: "1e26"}}}) { __typename ... on ValidationError { errors { field message } } } }""",
                           s=str(stages["offer"].id)))["createRule"]
        assert set(refused_fields(rule)) == {"params.fields.amount"}

    # A template whose value is known only when the rule runs: the run fails, the deal keeps its amount.
    await add_rule(stages["offer"], "modify_element", {"fields": {"amount": "1{{deal.title}}"}})
    async with api(token) as client:
        deal = (await data(client, CREATE_DEAL, input={"title": "0" * 26, "stageId": str(stages["offer"].id),
                                                       "fields": {"amount": "5"}}))["createDeal"]
        [run] = await wait_for_runs("deal", int(deal["id"]), 1)
        assert run.status == "failed" and "fields.amount" in (run.error or ""), run.error
        assert (await data(client, DEALS))["deals"]["nodes"][0]["amount"] == "5.00"
    assert await RuleRun.filter(status="failed").count() == 1
