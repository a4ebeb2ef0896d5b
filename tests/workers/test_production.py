"""The acceptance path in production mode: `pipewright serve` on PostgreSQL sends runs to Redis,
a separate `pipewright worker` executes them, and GraphQL shows the outcome."""

import re

import pytest

from tests.support.serve import graphql, serve, stop, wait_ready
from tests.support.servers import free_port
from tests.support import make_pipeline, make_token, wait_until

pytestmark = [pytest.mark.production_backend, pytest.mark.production_only]

CREATE_RULE = """mutation($stage: ID!, $input: RuleInput!) {
  createRule(stageId: $stage, input: $input) { __typename ... on ValidationError { errors { field message } } }
}"""


async def test_promo_code_stage_through_the_production_server(db, tmp_path):
    _, stages = await make_pipeline()
    _, token = await make_token("admin")
    offer = str(stages["offer"].id)
    port = free_port()
    server = serve(db.database_url, port, tmp_path / "serve.log", broker_url=db.redis.url)
    try:
        await wait_ready(port, server)
        for rule in (
            {"actionType": "generate_code", "key": "promo", "params": {"length": 8, "digits": True, "upper": True}},
            {"actionType": "add_comment", "lane": "after_previous", "params": {"text": "Your promo code: {{rules.promo.code}}"}},
        ):
            created = await graphql(port, CREATE_RULE, {"stage": offer, "input": rule}, token=token)
            assert created["createRule"]["__typename"] == "Rule", created
        deal = await graphql(port, 'mutation($s: ID!) { createDeal(input: {title: "Prod", stageId: $s}) { ... on Deal { id } } }',
                             {"s": offer}, token=token)
        deal_id = deal["createDeal"]["id"]

        async def done() -> dict | None:
            data = await graphql(port, 'query($id: ID!) { ruleRuns(elementType: "deal", elementId: $id) { nodes { id status outputs } } '
                                       'timeline(elementType: "deal", elementId: $id) { kind text } }', {"id": deal_id}, token=token)
            runs = data["ruleRuns"] = sorted(data["ruleRuns"]["nodes"], key=lambda r: int(r["id"]))
            # The two top-level fields are read concurrently, each at its own moment: wait for the comment too.
            settled = len(runs) == 2 and all(r["status"] == "succeeded" for r in runs)
            return data if settled and any(e["kind"] == "comment" for e in data["timeline"]) else None

        data = await wait_until(done, timeout_s=20, what="both runs to succeed")
    finally:
        stop(server)
    code = data["ruleRuns"][0]["outputs"]["code"]
    assert re.fullmatch(r"[0-9A-Z]{8}", code)
    assert [e["text"] for e in data["timeline"] if e["kind"] == "comment"] == [f"Your promo code: {code}"]
