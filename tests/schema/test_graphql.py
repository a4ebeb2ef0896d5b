"""The GraphQL API through HTTP: rules, leads and deals, the run log, typed errors and limits."""

import re
from typing import Any

import httpx
import pytest

from server.rules.actions import registry
from tests.support import make_pipeline, wait_for_runs
from tests.support.api import answer as post
from tests.support.api import data as gql

RULE_FIELDS = "... on Rule { id key position actionType params timing } ...Errors"
ERRORS = """
fragment Errors on ValidationError { __typename message errors { field message } }
"""
DEAL_FIELDS = """
  id title amount stageId stage { code } waitingForCustomer
  ruleRuns { id ruleKey status outputs reason dueAt }
  timeline { kind text ruleRunId }
"""




async def create_rule(admin_client: httpx.AsyncClient, stage_id: int, **rule: Any) -> dict[str, Any]:
    data = await gql(
        admin_client,
        f"mutation($stageId: ID!, $input: RuleInput!) {{ createRule(stageId: $stageId, input: $input) {{ {RULE_FIELDS} }} }}"
        + ERRORS,
        stageId=stage_id, input=rule,
    )
    return data["createRule"]


async def create_deal(admin_client: httpx.AsyncClient, **deal: Any) -> dict[str, Any]:
    data = await gql(
        admin_client,
        f"mutation($input: CreateDealInput!) {{ createDeal(input: $input) {{ ... on Deal {{ {DEAL_FIELDS} }} ...Errors }} }}"
        + ERRORS,
        input=deal,
    )
    assert "id" in data["createDeal"], data["createDeal"]
    return data["createDeal"]


async def get_deal(admin_client: httpx.AsyncClient, deal_id: str) -> dict[str, Any] | None:
    data = await gql(admin_client, f"query($id: ID!) {{ deal(id: $id) {{ __typename ... on Deal {{ {DEAL_FIELDS} }} }} }}", id=deal_id)
    deal = data["deal"]
    if deal["__typename"] == "NotFoundError":
        return None
    assert deal.pop("__typename") == "Deal", deal
    return deal


def fields_of(result: dict[str, Any]) -> set[str]:
    assert result["__typename"] == "ValidationError", result
    return {e["field"] for e in result["errors"]}


async def test_promo_code_is_generated_and_sent_in_a_comment(admin_client: httpx.AsyncClient) -> None:
    _, stages = await make_pipeline("deal")
    new = stages["new"].id
    promo = await create_rule(admin_client, new, actionType="generate_code", key="promo",
                              params={"length": 8, "digits": True, "upper": True, "lower": False})
    comment = await create_rule(admin_client, new, actionType="add_comment", lane="after_previous",
                                params={"text": "Your promo code: {{rules.promo.code}}"})
    assert promo["key"] == "promo" and comment["actionType"] == "add_comment"

    deal = await create_deal(admin_client, title="Spring campaign", stageId=str(new))
    await wait_for_runs("deal", int(deal["id"]), 2)

    deal = await get_deal(admin_client, deal["id"])
    assert deal is not None
    comments = [e["text"] for e in deal["timeline"] if e["kind"] == "comment"]
    assert len(comments) == 1 and re.fullmatch(r"Your promo code: [0-9A-Z]{8}", comments[0]), comments
    runs = {r["ruleKey"]: r for r in deal["ruleRuns"]}
    assert [r["status"] for r in deal["ruleRuns"]] == ["succeeded", "succeeded"]
    assert comments[0] == f"Your promo code: {runs['promo']['outputs']['code']}"


async def test_create_rule_with_bad_params_returns_field_errors(admin_client: httpx.AsyncClient) -> None:
    _, stages = await make_pipeline("deal")
    result = await create_rule(admin_client, stages["new"].id, actionType="generate_code", params={"length": 2})
    assert fields_of(result) == {"params.length"}

    result = await create_rule(admin_client, stages["new"].id, actionType="add_comment", params={"text": "hi"},
                               timing={"kind": "after", "amount": -1})
    assert "timing.amount" in fields_of(result)
    rules = await gql(admin_client, "query($s: ID!) { rules(stageId: $s) { id } }", s=stages["new"].id)
    assert rules["rules"] == []


async def test_unknown_action_type_is_a_field_error(admin_client: httpx.AsyncClient) -> None:
    _, stages = await make_pipeline("deal")
    result = await create_rule(admin_client, stages["new"].id, actionType="send_fax", title="Fax it")
    assert fields_of(result) == {"actionType"}
    assert "send_fax" in result["message"]


async def test_create_rule_in_missing_stage_is_not_found(admin_client: httpx.AsyncClient) -> None:
    await make_pipeline("deal")
    data = await gql(admin_client, 'mutation { createRule(stageId: "9999", input: {actionType: "wait"}) '
                             "{ __typename ... on NotFoundError { message } } }")
    assert data["createRule"] == {"__typename": "NotFoundError", "message": "stage 9999 does not exist"}


async def test_action_types_list_registered_actions_with_params(admin_client: httpx.AsyncClient) -> None:
    data = await gql(admin_client, "{ actionTypes { key title group outputs params { name type required default } } }")
    by_key = {a["key"]: a for a in data["actionTypes"]}
    assert set(by_key) == set(registry())
    generate = by_key["generate_code"]
    assert generate["outputs"] == ["code"]
    params = {p["name"]: p for p in generate["params"]}
    assert params["length"] == {"name": "length", "type": "int", "required": False, "default": 8}
    assert params["digits"]["type"] == "bool"
    text = {p["name"]: p for p in by_key["add_comment"]["params"]}["text"]
    assert text["type"] == "template" and text["required"] is True and text["default"] is None


async def test_pipelines_list_their_stages_in_order(admin_client: httpx.AsyncClient) -> None:
    pipeline, _ = await make_pipeline("deal")
    await make_pipeline("lead", name="Inbound")
    data = await gql(admin_client, '{ pipelines(entityType: "deal") { id name entityType isDefault '
                             "stages { code name position semantic revision } } }")
    assert [p["id"] for p in data["pipelines"]] == [str(pipeline.id)]
    stages = data["pipelines"][0]["stages"]
    assert [s["code"] for s in stages] == ["new", "offer", "invoice", "won", "lost"]
    assert stages[3]["semantic"] == "success" and stages[0]["revision"] == 0
    everything = await gql(admin_client, "{ pipelines { entityType } }")
    assert sorted(p["entityType"] for p in everything["pipelines"]) == ["deal", "lead"]


async def test_update_deal_with_a_bad_amount_changes_nothing(admin_client: httpx.AsyncClient) -> None:
    await make_pipeline("deal")
    deal = await create_deal(admin_client, title="Boiler", fields={"amount": "1200"})
    assert deal["amount"] == "1200.00"

    data = await gql(
        admin_client,
        "mutation($id: ID!, $fields: JSON!) { updateDeal(id: $id, fields: $fields) { ... on Deal { id } ...Errors } }"
        + ERRORS,
        id=deal["id"], fields={"title": "Bigger boiler", "amount": "a lot"},
    )
    assert fields_of(data["updateDeal"]) == {"fields.amount"}
    unchanged = await get_deal(admin_client, deal["id"])
    assert unchanged is not None
    assert (unchanged["title"], unchanged["amount"]) == ("Boiler", "1200.00")

    data = await gql(
        admin_client,
        "mutation($id: ID!) { updateDeal(id: $id, fields: {amount: 1500}) { ... on Deal { amount } } }",
        id=deal["id"],
    )
    assert data["updateDeal"] == {"amount": "1500.00"}


async def test_moving_a_deal_cancels_its_pending_delayed_runs(admin_client: httpx.AsyncClient) -> None:
    _, stages = await make_pipeline("deal")
    await create_rule(admin_client, stages["new"].id, actionType="add_comment", params={"text": "Still thinking?"},
                      timing={"kind": "after", "amount": 2, "unit": "minutes"})
    deal = await create_deal(admin_client, title="Slow one")
    [run] = deal["ruleRuns"]
    assert run["status"] == "scheduled" and run["dueAt"] is not None

    data = await gql(
        admin_client,
        "mutation($id: ID!, $s: ID!) { moveDeal(id: $id, stageId: $s) { ... on Deal { stage { code } } ...Errors } }"
        + ERRORS,
        id=deal["id"], s=str(stages["offer"].id),
    )
    assert data["moveDeal"] == {"stage": {"code": "offer"}}
    runs = (await gql(admin_client, 'query($id: ID!) { ruleRuns(elementType: "deal", elementId: $id, oldestFirst: true) { nodes { status reason } } }',
                      id=deal["id"]))["ruleRuns"]["nodes"]
    assert runs == [{"status": "cancelled", "reason": "cancelled: left stage for 'Offer'"}]

    again = await gql(
        admin_client,
        "mutation($id: ID!, $s: ID!) { moveDeal(id: $id, stageId: $s) { ... on Deal { id } ...Errors } }" + ERRORS,
        id=deal["id"], s=str(stages["offer"].id),
    )
    assert fields_of(again["moveDeal"]) == {"stageId"}


async def test_deleting_a_deal_keeps_its_rule_runs_queryable(admin_client: httpx.AsyncClient) -> None:
    _, stages = await make_pipeline("deal")
    await create_rule(admin_client, stages["new"].id, actionType="generate_code", key="code")
    await create_rule(admin_client, stages["new"].id, actionType="add_comment", params={"text": "Later"},
                      timing={"kind": "after", "amount": 2, "unit": "minutes"})
    deal = await create_deal(admin_client, title="Short-lived")
    await wait_for_runs("deal", int(deal["id"]), 1)

    data = await gql(admin_client, "mutation($id: ID!) { deleteDeal(id: $id) { __typename ... on DeleteResult { ok id } } }",
                     id=deal["id"])
    assert data["deleteDeal"] == {"__typename": "DeleteResult", "ok": True, "id": deal["id"]}
    assert await get_deal(admin_client, deal["id"]) is None

    runs = (await gql(admin_client, 'query($id: ID!) { ruleRuns(elementType: "deal", elementId: $id, oldestFirst: true) { nodes { ruleKey status reason } } }',
                      id=deal["id"]))["ruleRuns"]["nodes"]
    assert [(r["ruleKey"], r["status"]) for r in runs] == [("code", "succeeded"), ("add_comment1", "cancelled")]
    assert runs[1]["reason"] == "cancelled: the deal was deleted"

    again = await gql(admin_client, "mutation($id: ID!) { deleteDeal(id: $id) { __typename } }", id=deal["id"])
    assert again["deleteDeal"] == {"__typename": "NotFoundError"}


async def test_reorder_rules_sets_their_positions(admin_client: httpx.AsyncClient) -> None:
    _, stages = await make_pipeline("deal")
    new = stages["new"].id
    ids = [(await create_rule(admin_client, new, actionType="generate_code", key=key))["id"] for key in ("a", "b", "c")]
    reorder = ("mutation($s: ID!, $ids: [ID!]!) { reorderRules(stageId: $s, ruleIds: $ids) "
               "{ ... on StageRules { rules { id position } } ...Errors } }" + ERRORS)

    data = await gql(admin_client, reorder, s=new, ids=ids[::-1])
    assert data["reorderRules"]["rules"] == [{"id": i, "position": p} for p, i in enumerate(ids[::-1])]
    listed = await gql(admin_client, "query($s: ID!) { rules(stageId: $s) { key } }", s=new)
    assert [r["key"] for r in listed["rules"]] == ["c", "b", "a"]

    data = await gql(admin_client, reorder, s=new, ids=ids[:2])
    assert fields_of(data["reorderRules"]) == {"ruleIds"}


async def test_customer_activity_ends_a_wait_rule(admin_client: httpx.AsyncClient) -> None:
    _, stages = await make_pipeline("deal")
    await create_rule(admin_client, stages["new"].id, actionType="wait", params={"days": 3})
    deal = await create_deal(admin_client, title="Waiting")
    await wait_for_runs("deal", int(deal["id"]), 1, statuses=("waiting",))
    waiting = await get_deal(admin_client, deal["id"])
    assert waiting is not None and waiting["waitingForCustomer"] is True

    data = await gql(
        admin_client,
        'mutation($id: ID!) { recordCustomerActivity(elementType: "deal", elementId: $id, kind: "email", text: "Yes!") '
        "{ __typename ... on CustomerActivity { kind text } } }",
        id=deal["id"],
    )
    assert data["recordCustomerActivity"] == {"__typename": "CustomerActivity", "kind": "email", "text": "Yes!"}
    ended = await get_deal(admin_client, deal["id"])
    assert ended is not None and ended["waitingForCustomer"] is False
    [run] = ended["ruleRuns"]
    assert run["status"] == "succeeded"
    assert run["outputs"]["ended_by"] == "activity" and run["reason"] == "wait ended by activity"

    bad = await gql(
        admin_client,
        'mutation($id: ID!) { recordCustomerActivity(elementType: "deal", elementId: $id, kind: "fax") '
        "{ ...Errors } }" + ERRORS,
        id=deal["id"],
    )
    assert fields_of(bad["recordCustomerActivity"]) == {"kind"}


async def test_leads_list_is_paginated_newest_first(admin_client: httpx.AsyncClient) -> None:
    _, stages = await make_pipeline("lead", name="Inbound")
    for n in range(5):
        data = await gql(
            admin_client,
            "mutation($input: CreateLeadInput!) { createLead(input: $input) { __typename ... on Lead { id source } } }",
            input={"title": f"Lead {n}", "fields": {"source": "web" if n % 2 else "fair"}},
        )
        assert data["createLead"]["__typename"] == "Lead" and data["createLead"]["source"] in ("web", "fair")
    page = "query($first: Int!, $after: String, $search: String) { leads(first: $first, after: $after, search: $search) " \
           "{ totalCount edges { cursor node { title stage { code } } } pageInfo { hasNextPage endCursor } } }"

    first = (await gql(admin_client, page, first=2))["leads"]
    assert first["totalCount"] == 5
    assert [e["node"]["title"] for e in first["edges"]] == ["Lead 4", "Lead 3"]
    assert first["edges"][0]["node"]["stage"] == {"code": "new"}
    assert first["pageInfo"] == {"hasNextPage": True, "endCursor": first["edges"][1]["cursor"]}
    second = (await gql(admin_client, page, first=2, after=first["pageInfo"]["endCursor"]))["leads"]
    assert [e["node"]["title"] for e in second["edges"]] == ["Lead 2", "Lead 1"]
    last = (await gql(admin_client, page, first=2, after=second["pageInfo"]["endCursor"]))["leads"]
    assert [e["node"]["title"] for e in last["edges"]] == ["Lead 0"]
    assert last["pageInfo"]["hasNextPage"] is False
    found = (await gql(admin_client, page, first=50, search="lead 2"))["leads"]
    assert found["totalCount"] == 1 and found["edges"][0]["node"]["title"] == "Lead 2"

    refused = await post(admin_client, page, first=1000)
    assert refused["errors"][0]["message"] == "first: must be between 1 and 100"
    forged = await post(admin_client, page, first=2, after="not-a-cursor")
    assert forged["errors"][0]["message"] == "after: is not a cursor this API gave out"


async def test_create_lead_with_bad_fields_returns_field_errors(admin_client: httpx.AsyncClient) -> None:
    await make_pipeline("lead", name="Inbound")
    create = "mutation($input: CreateLeadInput!) { createLead(input: $input) { ...Errors } }" + ERRORS

    data = await gql(admin_client, create, input={"title": "X", "fields": {"amount": "??", "colour": "red"}})
    assert fields_of(data["createLead"]) == {"fields.amount", "fields.colour"}
    data = await gql(admin_client, create, input={"title": "X", "stageId": "not-a-number"})
    assert fields_of(data["createLead"]) == {"stageId"}
    data = await gql(admin_client, create, input={"title": "X", "fields": ["amount"]})
    assert fields_of(data["createLead"]) == {"fields"}
    total = await gql(admin_client, "{ leads { totalCount } }")
    assert total["leads"]["totalCount"] == 0


async def test_too_many_aliases_and_unknown_fields_are_refused_visibly(admin_client: httpx.AsyncClient) -> None:
    aliases = " ".join(f"a{n}: actionTypes {{ key }}" for n in range(31))
    body = await post(admin_client, f"{{ {aliases} }}")
    assert body["errors"][0]["message"] == "31 aliases found. Allowed: 30"

    body = await post(admin_client, "{ actionTypez { key } }")
    assert "actionTypez" in body["errors"][0]["message"]
    assert "Did you mean" not in body["errors"][0]["message"]


async def test_unexpected_errors_are_masked(admin_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("secret connection string")

    monkeypatch.setattr("server.schema.queries.registry", broken)
    body = await post(admin_client, "{ actionTypes { key } }")
    assert body["errors"][0]["message"] == "Unexpected error."


async def test_deleting_with_a_malformed_id_is_a_validation_error(admin_client):
    response = await admin_client.post("/graphql", json={"query": 'mutation { deleteDeal(id: "abc") { __typename ... on ValidationError { errors { field } } } }'})
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["deleteDeal"]["__typename"] == "ValidationError"


async def test_changes_made_by_a_rule_are_attributed_to_its_run_in_the_audit_trail(admin_client: httpx.AsyncClient) -> None:
    _, stages = await make_pipeline()
    await create_rule(admin_client, stages["offer"].id, actionType="modify_element", params={"fields": {"currency": "USD"}})
    deal = (await create_deal(admin_client, title="Attributed", stageId=str(stages["new"].id)))["id"]
    await gql(admin_client, 'mutation($id: ID!, $s: ID!) { moveDeal(id: $id, stageId: $s) { __typename } }',
              id=deal, s=str(stages["offer"].id))
    await wait_for_runs("deal", int(deal), 1)

    data = await gql(admin_client, 'query($id: ID!) { ruleRuns(elementType: "deal", elementId: $id) { nodes { id } } '
                             'auditTrail(elementType: "deal", elementId: $id) { field oldValue newValue ruleRunId } '
                             'stageRuns(elementType: "deal", elementId: $id) { stageId status depth cause } }', id=deal)

    [run] = data["ruleRuns"]["nodes"]
    assert {"field": "currency", "oldValue": "EUR", "newValue": "USD", "ruleRunId": run["id"]} in data["auditTrail"]
    assert {"field": "stage", "oldValue": "new", "newValue": "offer", "ruleRunId": None} in data["auditTrail"]
    assert [(s["stageId"], s["status"]) for s in data["stageRuns"]] == [(str(stages["new"].id), "left"), (str(stages["offer"].id), "active")]


async def test_health_reports_the_database(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_a_rules_run_as_user_can_be_cleared(admin_client: httpx.AsyncClient) -> None:
    _, stages = await make_pipeline()
    from tests.support import make_user

    helper = await make_user("Helper")
    rule = await create_rule(admin_client, stages["new"].id, actionType="generate_code", runAsId=str(helper.id))
    update = """mutation($id: ID!, $input: RuleInput!) { updateRule(id: $id, input: $input) { ... on Rule { runAsId } } }"""
    kept = await gql(admin_client, update, id=rule["id"], input={"title": "Renamed"})
    assert kept["updateRule"]["runAsId"] == str(helper.id)
    cleared = await gql(admin_client, update, id=rule["id"], input={"clearRunAs": True})
    assert cleared["updateRule"]["runAsId"] is None
