"""The deals page with everything a board shows (stage and its pipeline, responsible, contacts, company,
current runs, custom fields) costs a fixed number of SQL statements, whatever the page size: each relation
is one batched statement per request (server/schema/loaders.py), never one per deal."""

import contextvars
import logging
from typing import Any

import httpx
import pytest

from server.actor import SYSTEM
from server.app import create_app
from server.models import Company, Contact, RuleRun
from server.services.elements import create_element
from tests.support import add_rule, make_pipeline, make_token, make_user, wait_until
from tests.support.clients import work

pytestmark = pytest.mark.production_backend

PAGE = """query($first: Int!) { deals(first: $first) { totalCount edges { cursor node {
  id title amount custom stage { code name pipeline { name } } responsible { name email } company { name }
  contacts { name emails } currentRuns { ruleKey status outputs }
} } pageInfo { hasNextPage endCursor } } }"""

# api_token, user, count(deal), deal, stage, pipeline, user (responsibles), deal_contact+contact, company, rule_run
BUDGET = 10

counting: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("counting", default=None)


class StatementCounter(logging.Handler):
    """Tortoise logs every statement on `tortoise.db_client` at DEBUG; count this request's only."""

    def emit(self, record: logging.LogRecord) -> None:
        seen = counting.get()
        if seen is not None:
            seen.append(record.getMessage())


async def statements_for(client: httpx.AsyncClient, first: int) -> tuple[list[str], list[dict[str, Any]]]:
    """The statements one page request ran, and its deals."""
    seen: list[str] = []
    token = counting.set(seen)
    try:
        response = await client.post("/graphql", json={"query": PAGE, "variables": {"first": first}})
    finally:
        counting.reset(token)
    body = response.json()
    assert "errors" not in body, body
    return seen, [edge["node"] for edge in body["data"]["deals"]["edges"]]


async def test_the_board_page_costs_the_same_statements_for_10_and_100_deals(db: Any) -> None:
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "generate_code", {"length": 6}, key="code")
    owners = [await make_user(f"Owner{n}", role="manager") for n in range(3)]
    companies = [await Company.create(name=f"Company {n}") for n in range(4)]
    contacts = [await Contact.create(name=f"Contact {n}", emails=work(f"c{n}@example.com")) for n in range(5)]
    for n in range(100):
        values: dict[str, Any] = {"title": f"Deal {n}", "amount": n, "responsible": owners[n % 3].id}
        if n % 2:
            values["company"] = companies[n % 4].id
        await create_element("deal", values, contact_ids=[c.id for c in contacts[: n % 3 + 1]], actor=SYSTEM)

    async def all_ran() -> bool:
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

    assert len(page10) == 10 and len(page100) == 100
    oldest, odd = page100[-1], page100[-2]
    assert oldest["title"] == "Deal 0" and oldest["company"] is None
    assert oldest["stage"] == {"code": "new", "name": "New", "pipeline": {"name": "Sales"}}
    assert oldest["responsible"]["name"] == "Owner0" and [c["name"] for c in oldest["contacts"]] == ["Contact 0"]
    assert odd["company"] == {"name": "Company 1"} and len(odd["contacts"]) == 2
    assert [r["status"] for r in oldest["currentRuns"]] == ["succeeded"]
    assert len(small) == len(large), f"10 deals took {len(small)} statements, 100 took {len(large)}:\n" + "\n".join(large)
    assert len(large) <= BUDGET, f"{len(large)} statements for one page:\n" + "\n".join(large)
