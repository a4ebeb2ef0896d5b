"""`node(id)` finds any object again by its `nodeId`, under the access rules of the type's own query."""

from typing import Any

from graphql import GraphQLObjectType

from server.actor import SYSTEM
from server.models import Company, Contact, RuleRun
from server.schema.nodes import FINDERS
from server.schema.relay import encode_node
from server.schema.schema import schema
from server.services.elements import create_element
from tests.support import add_rule, make_pipeline, make_token, wait_until
from tests.support.api import answer, api, data

NODE = "query($id: ID!) { node(id: $id) { __typename id nodeId ... on Deal { title } ... on User { name } } }"


async def node(token: str, node_id: str) -> dict[str, Any]:
    async with api(token) as client:
        return await answer(client, NODE, id=node_id)


async def test_every_object_with_a_node_id_is_found_again_by_it(db: Any) -> None:
    pipeline, stages = await make_pipeline()
    rule = await add_rule(stages["new"], "generate_code", {"length": 6}, key="code")
    admin, token = await make_token("admin", "Ada")
    company = await Company.create(name="Acme")
    contact = await Contact.create(name="Carla")
    deal = await create_element("deal", {"title": "Big deal"}, actor=SYSTEM)
    _, lead_stages = await make_pipeline("lead", "Leads")
    lead = await create_element("lead", {"title": "Warm lead"}, actor=SYSTEM)
    run = await wait_until(lambda: RuleRun.filter(element_type="deal", element_id=deal.id).first(), what="the run")
    queries = {
        "Deal": f'deal(id: "{deal.id}") {{ ... on Deal {{ id nodeId }} }}',
        "Lead": f'lead(id: "{lead.id}") {{ ... on Lead {{ id nodeId }} }}',
        "Company": f'company(id: "{company.id}") {{ ... on Company {{ id nodeId }} }}',
        "Contact": f'contact(id: "{contact.id}") {{ ... on Contact {{ id nodeId }} }}',
        "User": "me { id nodeId }",
        "Pipeline": "pipelines { id nodeId }",
        "Stage": f'stage(id: "{stages["new"].id}") {{ id nodeId }}',
        "Rule": f'rules(stageId: "{stages["new"].id}") {{ id nodeId }}',
        "RuleRun": f'ruleRuns(elementId: "{deal.id}", elementType: "deal") {{ nodes {{ id nodeId }} }}',
    }
    async with api(token) as client:
        read = await data(client, "{ " + " ".join(f"{k}: {q}" for k, q in queries.items()) + " }")
    shown = {k: (v[0] if isinstance(v, list) else v.get("nodes", [v])[0]) for k, v in read.items()}
    assert shown["Pipeline"]["id"] == str(pipeline.id) and shown["Rule"]["id"] == str(rule.id)
    assert shown["RuleRun"]["id"] == str(run.id) and shown["User"]["id"] == str(admin.id)
    assert set(shown) == set(FINDERS)
    for type_name, seen in shown.items():
        found = await node(token, seen["nodeId"])
        assert found == {"data": {"node": {"__typename": type_name, "id": seen["id"], "nodeId": seen["nodeId"],
                                            **({"title": "Big deal"} if type_name == "Deal" else {}),
                                            **({"name": "Ada"} if type_name == "User" else {})}}}


def test_every_type_that_implements_node_has_a_finder() -> None:
    implementing = {name for name, t in schema._schema.type_map.items()
                    if isinstance(t, GraphQLObjectType) and any(i.name == "Node" for i in t.interfaces)}
    assert implementing == set(FINDERS)


async def test_an_employee_cannot_read_another_employees_deal_by_node(db: Any) -> None:
    await make_pipeline()
    maria, maria_token = await make_token("employee", "Maria")
    tom, tom_token = await make_token("employee", "Tom")
    marias = await create_element("deal", {"title": "Maria's deal", "responsible": maria.id}, actor=SYSTEM)
    node_id = encode_node("Deal", marias.id)

    own = await node(maria_token, node_id)
    assert own["data"]["node"]["title"] == "Maria's deal"

    refused = await node(tom_token, node_id)
    assert refused["data"] == {"node": None}
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "responsible for" in refused["errors"][0]["message"]

    user = await node(tom_token, encode_node("User", maria.id))  # like user(id): admins read others, not employees
    assert user["data"] == {"node": None} and user["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await node(tom_token, encode_node("User", tom.id)))["data"]["node"]["name"] == "Tom"


async def test_a_node_id_of_nothing_is_null_and_a_made_up_one_is_refused_naming_the_argument(db: Any) -> None:
    _, token = await make_token("admin")
    assert await node(token, encode_node("Deal", 999_999)) == {"data": {"node": None}}
    assert await node(token, encode_node("Offer", 1)) == {"data": {"node": None}}
    for made_up in ("42", "RGVhbDox", "not base64!"):
        refused = await node(token, made_up)
        assert refused["data"] == {"node": None}, made_up
        error = refused["errors"][0]
        assert error["extensions"]["code"] == "VALIDATION_FAILED" and "node id" in error["message"], error
