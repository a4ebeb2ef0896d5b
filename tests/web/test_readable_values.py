"""What the admin shows of rule data reads as words: conditions with formatted money, run outputs with user and
stage names, local times and money, never a Python repr; in the viewer's language."""

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from server.app import create_app
from server.models import RuleRun, User
from server.services import auth
from server.services import elements as element_service
from server.services.access import SYSTEM
from tests.support import add_rule, make_pipeline, make_user, wait_for_runs

async def browser_of(user: User) -> httpx.AsyncClient:
    session = await auth.create_session(user, stage=auth.STAGE_FULL)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime=False)),
                             base_url="http://crm.test", cookies={"pw_session": session})


@pytest.fixture
async def greta(db) -> User:
    return await make_user("Greta", role="admin", locale="de", timezone="Europe/Berlin")


@pytest.fixture
async def uwe(db) -> User:
    return await make_user("Uwe", role="admin")  # no language, UTC: the instance's defaults


async def board_text(user: User, pipeline_id: int) -> str:
    async with await browser_of(user) as browser:
        page = await browser.get(f"/admin/pipelines/{pipeline_id}")
    assert page.status_code == 200, page.text
    return page.text


async def test_a_condition_on_the_board_reads_as_words_with_money(greta: User, uwe: User) -> None:
    pipeline, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "Big one"}, key="big",
                   condition=[[{"field": "amount", "op": "gte", "value": "2800"},
                               {"field": "close_date", "op": "lt", "value": "2026-03-31"}]])
    english = await board_text(uwe, pipeline.id)
    assert "amount is at least €2,800.00 and close_date is less than Mar 31, 2026" in english
    german = await board_text(greta, pipeline.id)
    assert "amount ist mindestens 2.800,00\xa0€ und close_date ist kleiner als 31.03.2026" in german
    assert "Decimal(" not in english + german and "'2800'" not in english + german


async def _finished_run_with_outputs(outputs: dict) -> tuple[int, RuleRun]:
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "add_comment", {"text": "Hello"}, key="hello")
    deal = await element_service.create_element("deal", {"title": "Workshop lighting", "amount": "2800"},
                                                stage_id=stages["new"].id, actor=SYSTEM)
    [run] = await wait_for_runs("deal", deal.id, 1)
    run.outputs = outputs  # what an action stored: the shapes the admin must read out
    await run.save()
    return deal.id, run


async def runs_text(user: User, deal_id: int) -> str:
    async with await browser_of(user) as browser:
        fragment = await browser.get(f"/admin/deals/{deal_id}/runs")
    assert fragment.status_code == 200, fragment.text
    return fragment.text


async def test_run_outputs_show_names_local_times_and_money(greta: User, uwe: User) -> None:
    lena = await make_user("Lena")
    deal_id, _ = await _finished_run_with_outputs({
        "responsible_id": lena.id, "notified": [lena.id, greta.id], "stage": "offer",
        "start_at": datetime(2026, 1, 13, 9, 0, tzinfo=UTC).isoformat(), "amount": "2800.00", "booking_ids": [1042],
        "changed": {"priority": "high", "seats": 1200}, "closed": True, "ended_by": None,
    })
    german = await runs_text(greta, deal_id)
    for shown in ("<dd>Lena</dd>", "<dd>Lena, Greta</dd>", "<dd>Offer</dd>", "<dd>13.01.2026, 10:00 CET</dd>",
                  "<dd>2.800,00\xa0€</dd>", "<dd>1042</dd>", "<dd>priority: high; seats: 1.200</dd>", "<dd>ja</dd>",
                  "<dd>—</dd>", "erfolgreich"):
        assert shown in german, shown
    english = await runs_text(uwe, deal_id)
    for shown in ("<dd>Lena, Greta</dd>", "<dd>Jan 13, 2026, 09:00 UTC</dd>", "<dd>€2,800.00</dd>", "<dd>yes</dd>",
                  "succeeded"):
        assert shown in english, shown
    assert "T09:00:00" not in german + english and f"<dd>{lena.id}</dd>" not in german + english


async def test_a_deleted_user_in_an_output_is_named_as_such(uwe: User) -> None:
    deal_id, _ = await _finished_run_with_outputs({"responsible_id": 987654})
    assert "<dd>user 987654 (deleted)</dd>" in await runs_text(uwe, deal_id)


async def test_the_element_list_shows_money_and_no_currency_alone(greta: User) -> None:
    _, stages = await make_pipeline()
    await element_service.create_element("deal", {"title": "Priced", "amount": "2800"}, stage_id=stages["new"].id,
                                         actor=SYSTEM)
    await element_service.create_element("deal", {"title": "Unpriced"}, stage_id=stages["new"].id, actor=SYSTEM)
    async with await browser_of(greta) as browser:
        listing = (await browser.get("/admin/deals")).text
    assert "<td>2.800,00\xa0€</td>" in listing and "<td>—</td>" in listing
    assert ">EUR<" not in listing and "> EUR<" not in listing


def test_no_template_shows_a_python_repr() -> None:
    """Templates print values through filters and words, not `|pprint` or `repr(`."""
    templates = Path(__file__).resolve().parents[2] / "web" / "templates"
    offending = [f"{path.name}: {marker}" for path in sorted(templates.glob("*.html"))
                 for marker in ("|pprint", "repr(", "!r}", "|tojson }}</") if marker in path.read_text()]
    assert offending == []

