"""Who may do what through the API, and the limits that keep it safe to expose.

The client is the `gql` package over HTTP against a running uvicorn; status codes are checked with httpx.
"""

from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport

from server.models import ApiToken
from tests.support.live_server import running_app
from tests.support import make_pipeline, make_token

pytestmark = pytest.mark.production_backend



async def run(served: str, token: str, query: str, **variables: Any) -> dict[str, Any]:
    transport = HTTPXAsyncTransport(url=f"http://{served}/graphql", headers={"Authorization": f"Bearer {token}"})
    async with Client(transport=transport) as session:
        return await session.execute(GraphQLRequest(query, variable_values=variables or None))


async def refused(served: str, token: str, query: str, **variables: Any) -> str:
    with pytest.raises(TransportQueryError) as caught:
        await run(served, token, query, **variables)
    return caught.value.errors[0]["message"]  # type: ignore[index]


CREATE_DEAL = """mutation($input: CreateDealInput!) { createDeal(input: $input) {
  __typename ... on Deal { id } ... on ForbiddenError { message } } }"""
READ_DEAL = """query($id: ID!) { deal(id: $id) { __typename
  ... on Deal { id title amount } ... on ForbiddenError { message } ... on NotFoundError { message } } }"""


async def test_anonymous_and_unknown_tokens_get_nothing(served: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{served}") as client:
        anonymous = await client.post("/graphql", json={"query": "{ pipelines { id name } }"})
        assert anonymous.status_code == 401
        assert anonymous.json() == {"data": None, "errors": [
            {"message": "authentication required: send Authorization: Bearer <API token>"}]}
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        forged = await client.post("/graphql", json={"query": "{ pipelines { id } }"},
                                   headers={"Authorization": "Bearer pw_not-a-real-token"})
        assert forged.status_code == 401 and forged.json()["data"] is None
        ide = await client.get("/graphql", headers={"Accept": "text/html"})
        assert ide.status_code == 401  # no GraphiQL outside development
        health = await client.get("/health")
        assert health.status_code == 200


async def test_an_employee_works_on_their_own_deals_only(served: str) -> None:
    _, stages = await make_pipeline()
    maria, maria_token = await make_token("employee", "Maria")
    tom, tom_token = await make_token("employee", "Tom")
    _, manager_token = await make_token("manager", "Lena")

    mine = (await run(served, maria_token, CREATE_DEAL, input={"title": "Maria's", "fields": {"amount": "100"}}))["createDeal"]
    assert mine["__typename"] == "Deal"
    toms = (await run(served, tom_token, CREATE_DEAL, input={"title": "Tom's secret", "fields": {"amount": "999"}}))
    toms_id = toms["createDeal"]["id"]

    other = (await run(served, maria_token, READ_DEAL, id=toms_id))["deal"]
    assert other == {"__typename": "ForbiddenError",
                     "message": "you may only see and change leads and deals you are responsible for"}
    listed = await run(served, maria_token, "{ deals { totalCount nodes { title } } }")
    assert listed["deals"] == {"totalCount": 1, "nodes": [{"title": "Maria's"}]}
    moved = await run(served, maria_token, """mutation($id: ID!, $s: ID!) { moveDeal(id: $id, stageId: $s) {
        __typename } }""", id=toms_id, s=str(stages["offer"].id))
    assert moved["moveDeal"]["__typename"] == "ForbiddenError"
    runs = await run(served, maria_token, "query($id: ID!) { ruleRuns(elementType: \"deal\", elementId: $id) { totalCount } }",
                     id=toms_id)
    assert runs["ruleRuns"]["totalCount"] == 0
    for_tom = await run(served, maria_token, CREATE_DEAL,
                        input={"title": "Pushed", "fields": {"responsible": tom.id}})
    assert for_tom["createDeal"]["__typename"] == "ForbiddenError"

    me = await run(served, maria_token, "{ me { name role } users { name } }")
    assert me["me"] == {"name": "Maria", "role": "employee"}
    assert {"name": "Tom"} in me["users"]  # the staff directory, to pick a responsible

    managed = await run(served, manager_token, READ_DEAL, id=toms_id)
    assert managed["deal"] == {"__typename": "Deal", "id": toms_id, "title": "Tom's secret", "amount": "999.00"}
    assert maria.id != tom.id


async def test_only_admins_change_rules_and_tokens(served: str) -> None:
    _, stages = await make_pipeline()
    _, employee = await make_token("employee")
    _, manager = await make_token("manager")
    _, admin = await make_token("admin")
    create_rule = """mutation($s: ID!) { createRule(stageId: $s, input: {actionType: "generate_code"}) {
        __typename ... on ForbiddenError { message } } }"""
    for token in (employee, manager):
        result = (await run(served, token, create_rule, s=str(stages["new"].id)))["createRule"]
        assert result == {"__typename": "ForbiddenError",
                          "message": "only admins may change pipelines, rules, triggers, users and API tokens"}
    assert (await run(served, admin, create_rule, s=str(stages["new"].id)))["createRule"]["__typename"] == "Rule"
    assert "only admins" in await refused(served, employee, "{ apiTokens { id } }")


async def test_tokens_are_shown_once_stored_hashed_and_revocable(served: str) -> None:
    user, admin = await make_token("admin")
    created = (await run(served, admin, """mutation($u: ID!) { createApiToken(userId: $u, name: "CI") {
        __typename ... on NewApiToken { secret token { id name prefix } } } }""", u=str(user.id)))["createApiToken"]
    secret = created["secret"]
    assert secret.startswith(created["token"]["prefix"])
    row = await ApiToken.get(id=int(created["token"]["id"]))
    assert secret not in (row.token_hash, row.prefix) and len(row.token_hash) == 64
    listed = await run(served, admin, "{ apiTokens { name prefix revokedAt } }")
    assert {"name": "CI", "prefix": created["token"]["prefix"], "revokedAt": None} in listed["apiTokens"]
    assert "secret" not in str(listed)

    assert (await run(served, secret, "{ me { id role } }"))["me"] == {"id": str(user.id), "role": "admin"}
    revoked = await run(served, admin, "mutation($id: ID!) { revokeApiToken(id: $id) { __typename ... on ApiToken { revokedAt } } }",
                        id=created["token"]["id"])
    assert revoked["revokeApiToken"]["revokedAt"] is not None
    async with httpx.AsyncClient(base_url=f"http://{served}") as client:
        after = await client.post("/graphql", json={"query": "{ me { id } }"}, headers={"Authorization": f"Bearer {secret}"})
    assert after.status_code == 401


async def test_deep_wide_and_expensive_queries_are_refused_with_a_clear_message(served: str) -> None:
    _, token = await make_token("admin")
    deep = "{ pipelines { stages { pipeline { stages { pipeline { stages { pipeline { stages { pipeline { stages { pipeline { id } } } } } } } } } } } }"
    assert await refused(served, token, deep) == "'anonymous' exceeds maximum operation depth of 10"
    aliases = " ".join(f"a{n}: me {{ id }}" for n in range(100))
    assert await refused(served, token, f"{{ {aliases} }}") == "100 aliases found. Allowed: 30"
    costly = """{ deals(first: 100) { edges { node { stage { pipeline { stages { pipeline { stages {
      id name code } } } } } } } } }"""
    message = await refused(served, token, costly)
    assert message.startswith("query cost ") and "is over the limit of 25000" in message
    fragments = """query { deals(first: 100) { edges { node { ...A } } } }
      fragment A on Deal { currentRuns { ...B } ruleRuns { ...B } again: ruleRuns { ...B } timeline { id } }
      fragment B on RuleRun { id status title ruleKey actionType outputs reason error attempts createdAt }"""
    assert "is over the limit" in await refused(served, token, fragments)
    tokens = "{ " + " ".join("me { id }" for _ in range(2_000)) + " }"
    assert "token" in (await refused(served, token, tokens)).lower()


async def test_request_bodies_have_a_size_limit(served: str) -> None:
    _, token = await make_token("admin")
    async with httpx.AsyncClient(base_url=f"http://{served}", headers={"Authorization": f"Bearer {token}"}) as client:
        big = await client.post("/graphql", json={"query": "{ me { id } }", "variables": {"x": "y" * 2_000_000}})
        assert big.status_code == 413
        assert "larger than" in big.json()["errors"][0]["message"]


async def test_introspection_is_off_in_production(served: str) -> None:
    _, token = await make_token("admin")
    message = await refused(served, token, "{ __schema { types { name } } }")
    assert "introspection" in message.lower()


async def test_admins_configure_users_pipelines_and_stages_through_the_api(served: str) -> None:
    _, admin = await make_token("admin")
    _, employee = await make_token("employee")
    user = (await run(served, admin, """mutation { createUser(input: {email: "Neu@Example.com", name: "Neu",
        role: "manager", workingHours: {days: [0, 1, 2], start: "08:00", end: "16:00"}}) {
        __typename ... on User { id email role } } }"""))["createUser"]
    assert user["__typename"] == "User" and user["email"] == "neu@example.com" and user["role"] == "manager"
    bad = (await run(served, admin, """mutation { createUser(input: {email: "x", name: "", role: "boss"}) {
        ... on ValidationError { errors { field } } } }"""))["createUser"]
    assert {"email", "name", "role"} <= {e["field"] for e in bad["errors"]}

    pipeline = (await run(served, admin, 'mutation { createPipeline(name: "Partners", entityType: "deal") '
                                       '{ ... on Pipeline { id name } } }'))["createPipeline"]
    stage = (await run(served, admin, """mutation($p: ID!) { createStage(pipelineId: $p, name: "Signed",
        semantic: "success") { ... on Stage { id code semantic } } }""", p=pipeline["id"]))["createStage"]
    assert stage["code"] == "signed" and stage["semantic"] == "success"
    denied = await run(served, employee, 'mutation { createPipeline(name: "Mine", entityType: "deal") { __typename } }')
    assert denied["createPipeline"]["__typename"] == "ForbiddenError"
    deactivated = await run(served, admin, """mutation($id: ID!) { updateUser(id: $id, input: {active: false}) {
        ... on User { active } } }""", id=user["id"])
    assert deactivated["updateUser"] == {"active": False}


async def test_development_mode_serves_graphiql_and_introspection(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from server import config

    monkeypatch.setenv("PIPEWRIGHT_ENV", "development")
    config.reload()
    try:
        async with running_app() as dev:
            _, token = await make_token("admin")
            async with httpx.AsyncClient(base_url=f"http://{dev}") as client:
                page = await client.get("/graphql", headers={"Accept": "text/html"})
            assert page.status_code == 200 and "graphiql" in page.text.lower()
            types = await run(dev, token, "{ __schema { queryType { name } } }")
            assert types["__schema"]["queryType"]["name"] == "Query"
    finally:
        monkeypatch.delenv("PIPEWRIGHT_ENV")
        config.reload()
