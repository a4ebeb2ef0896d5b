"""A page of deals with stage, responsible, contacts and current runs costs the same number of SQL
statements for 10 deals as for 100: DataLoaders batch each relation into one statement."""

import contextvars
import logging
from typing import Any

import httpx
import pytest

from server.actor import SYSTEM
from server.app import create_app
from server.models import Contact, DealContact
from server.services.elements import create_element
from tests.support import add_rule, make_pipeline, make_token, make_user, wait_until
from tests.support.clients import work

pytestmark = pytest.mark.production_backend

PAGE = """query($first: Int!) { deals(first: $first) { totalCount edges { cursor node {
  id title amount stage { code name } responsible { name email } company { name }
  contacts { name emails } currentRuns { ruleKey status outputs }
} } pageInfo { hasNextPage endCursor } } }"""

counting: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("counting", default=None)


class StatementCounter(logging.Handler):
    """Tortoise logs every statement on `tortoise.db_client` at DEBUG; count this request's only."""

    def emit(self, record: logging.LogRecord) -> None:
        seen = counting.get()
        if seen is not None:
            seen.append(record.getMessage())


async def statements_for(client: httpx.AsyncClient, first: int) -> tuple[int, dict[str, Any]]:
    seen: list[str] = []
    token = counting.set(seen)
    try:
        response = await client.post("/graphql", json={"query": PAGE, "variables": {"first": first}})
    finally:
        counting.reset(token)
    body = response.json()
    assert "errors" not in body, body
    return len(seen), body["data"]["deals"]


async def test_a_page_of_100_deals_costs_as_many_statements_as_a_page_of_10(db: Any) -> None:
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "generate_code", {"length": 6}, key="code")
    owner = await make_user("Owner", role="manager")
    contacts = [await Contact.create(name=f"Contact {n}", emails=work(f"c{n}@example.com")) for n in range(3)]
    for n in range(100):
        deal = await create_element("deal", {"title": f"Deal {n}", "amount": n, "responsible": owner.id}, actor=SYSTEM)
        for position, contact in enumerate(contacts[: n % 3 + 1]):
            await DealContact.create(deal_id=deal.id, contact_id=contact.id, position=position)

    async def all_ran() -> bool:
        from server.models import RuleRun

        return await RuleRun.filter(status="succeeded").count() == 100

    await wait_until(all_ran, timeout_s=60, what="the 100 code runs")
    _, secret = await make_token("admin")

    logger = logging.getLogger("tortoise.db_client")
    handler = StatementCounter()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        transport = httpx.ASGITransport(app=create_app(runtime=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     headers={"Authorization": f"Bearer {secret}"}) as client:
            await statements_for(client, 1)  # the token's first use writes last_used_at once
            small, page10 = await statements_for(client, 10)
            large, page100 = await statements_for(client, 100)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)

    assert len(page10["edges"]) == 10 and len(page100["edges"]) == 100
    node = page100["edges"][-1]["node"]
    assert node["title"] == "Deal 0" and node["stage"]["code"] == "new" and node["responsible"]["name"] == "Owner"
    assert [c["name"] for c in node["contacts"]] == ["Contact 0"]
    assert node["currentRuns"][0]["status"] == "succeeded" and len(node["currentRuns"][0]["outputs"]["code"]) == 6
    assert small == large, f"10 deals took {small} statements, 100 took {large}"
    assert large <= 8, f"{large} statements for one page"
    print(f"\n100-deal page: {large} SQL statements (token, user, count, page, stage, responsible, contacts, runs)")
