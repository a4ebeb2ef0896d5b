"""A run log names each run's lead or deal: `elementType`, `elementId` and the element itself, loaded in one
batch per element type, so a page of runs costs the same statements for 2 runs as for 12."""

import logging
from typing import Any

from server.actor import SYSTEM
from server.models import RuleRun
from server.services.elements import create_element
from tests.schema.test_api_statements import StatementCounter, counting
from tests.support import add_rule, make_pipeline, make_token, wait_until
from tests.support.api import Api

RUNS = """query($first: Int!) { ruleRuns(first: $first, status: ["succeeded"]) { nodes {
  ruleKey elementType elementId
  element { __typename id title stage { code } ... on Deal { closeDate } ... on Lead { source } }
} } }"""


async def elements_with_runs(deals: int, leads: int, *, responsible: int | None = None) -> None:
    _, deal_stages = await make_pipeline("deal", "Sales")
    _, lead_stages = await make_pipeline("lead", "Leads")
    await add_rule(deal_stages["new"], "generate_code", {"length": 6}, key="code")
    await add_rule(lead_stages["new"], "generate_code", {"length": 6}, key="code")
    for n in range(deals):
        await create_element("deal", {"title": f"Deal {n}", "responsible": responsible}, actor=SYSTEM)
    for n in range(leads):
        await create_element("lead", {"title": f"Lead {n}", "responsible": responsible}, actor=SYSTEM)

    async def all_ran() -> bool:
        return await RuleRun.filter(status="succeeded").count() == deals + leads

    await wait_until(all_ran, timeout_s=30, what="the code runs")


async def runs_and_statements(api: Api, token: str, first: int) -> tuple[list[dict[str, Any]], int]:
    logger = logging.getLogger("tortoise.db_client")
    handler, old_level = StatementCounter(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    seen: list[str] = []
    mark = counting.set(seen)
    try:
        data = await api.as_(token, RUNS, first=first)
    finally:
        counting.reset(mark)
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return data["ruleRuns"]["nodes"], len(seen)


async def test_each_run_of_the_log_names_its_lead_or_deal(api: Api) -> None:
    await elements_with_runs(deals=2, leads=1)
    _, token = await make_token("admin")
    runs, _ = await runs_and_statements(api, token, 10)
    assert sorted((r["elementType"], r["element"]["__typename"], r["element"]["title"]) for r in runs) == [
        ("deal", "Deal", "Deal 0"), ("deal", "Deal", "Deal 1"), ("lead", "Lead", "Lead 0")]
    for run in runs:
        assert run["element"]["id"] == run["elementId"] and run["element"]["stage"]["code"] == "new"


async def test_the_elements_of_a_page_of_runs_cost_the_same_statements_for_2_and_12_runs(api: Api) -> None:
    await elements_with_runs(deals=8, leads=4)
    _, token = await make_token("admin")
    few, few_statements = await runs_and_statements(api, token, 2)
    many, many_statements = await runs_and_statements(api, token, 12)
    assert len(few) == 2 and len(many) == 12 and all(r["element"] is not None for r in many)
    assert many_statements == few_statements


async def test_an_employee_sees_the_elements_of_their_own_runs(api: Api) -> None:
    maria, maria_token = await make_token("employee", "Maria")
    await elements_with_runs(deals=2, leads=0, responsible=maria.id)
    _, tom_token = await make_token("employee", "Tom")
    mine, _ = await runs_and_statements(api, maria_token, 10)
    assert sorted(r["element"]["title"] for r in mine) == ["Deal 0", "Deal 1"]
    theirs, _ = await runs_and_statements(api, tom_token, 10)
    assert theirs == []
