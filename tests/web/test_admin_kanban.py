"""The kanban board in Chromium: columns by stage with counts and sums, a card dragged to the next stage starts that
stage's runs (seen on the card and in the deal's automation tab), the same move from the card's menu by keyboard, and
columns that show a page of cards with a "more" link instead of every card."""

import re
from typing import Any

import pytest
from playwright.async_api import expect

from tests.support.admin import Admin, Server
from tests.support.servers import ROOT
from tests.support.signed_in import open_page, sign_in

SHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture(scope="module")
async def signed_in(browser, server: Server, admin: Admin) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return await sign_in(browser, server, admin)


async def board_page(browser, server: Server, state: dict[str, Any]):  # type: ignore[no-untyped-def]
    return await open_page(browser, server, state, "/admin/deals/board")


def column(page, stage: str):  # type: ignore[no-untyped-def]
    return page.locator("section.kanban-column", has=page.get_by_role("heading", name=stage, exact=True))


async def test_columns_show_counts_and_amount_sums_per_stage(browser, server: Server, signed_in: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    page = await board_page(browser, server, signed_in)
    await expect(page.get_by_role("heading", name=re.compile("^Deals"))).to_contain_text("Sales")
    headings = page.locator("section.kanban-column h2")
    await expect(headings).to_have_text(["New", "Preparing documents", "Invoice", "In progress", "Won", "Lost"])
    await expect(column(page, "Invoice").locator(".kanban-figures")).to_contain_text("1 card")
    await expect(column(page, "Invoice").locator(".kanban-figures")).to_contain_text("9,600.00 EUR")
    await expect(column(page, "Lost").locator(".kanban-figures")).to_have_text("0 cards")
    await page.set_viewport_size({"width": 1366, "height": 760})
    await page.screenshot(path=str(SHOTS / "kanban.png"))  # the README's picture of the board, from the demo data
    await page.get_by_role("link", name="Partners").click()
    await expect(page.locator("section.kanban-column h2")).to_have_text(["Negotiation", "Contract", "Won", "Lost"])
    await page.context.close()


async def test_dragging_a_card_to_the_next_stage_starts_its_runs_on_the_card_and_the_deal_page(browser, server: Server, signed_in: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    page = await board_page(browser, server, signed_in)
    card = page.locator(".kanban-card", has_text="Nordlicht: 40 kWp rooftop system")
    await expect(card).to_have_count(1)
    await card.locator(".kanban-title").drag_to(column(page, "Preparing documents").locator(".kanban-cards"))
    moved = column(page, "Preparing documents").locator(".kanban-card", has_text="Nordlicht: 40 kWp rooftop system")
    await expect(moved).to_have_count(1)
    await expect(column(page, "New").locator(".kanban-card", has_text="Nordlicht: 40 kWp")).to_have_count(0)
    await expect(column(page, "Preparing documents").locator(".kanban-figures")).to_contain_text("2 cards")
    await expect(moved.locator(".kanban-runs")).to_contain_text("succeeded")  # the card refreshed itself
    await moved.get_by_role("link", name="Nordlicht: 40 kWp rooftop system").click()
    automation = page.locator("#automation")
    await expect(automation.locator("section.stage-run").first).to_contain_text("Preparing documents")
    await expect(automation.locator("section.stage-run").first.locator(".run.status-succeeded").first).to_be_visible()
    await page.context.close()


async def test_a_card_moves_by_keyboard_from_its_menu(browser, server: Server, signed_in: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    page = await board_page(browser, server, signed_in)
    menu = page.get_by_label("Move “Hafenkante: tracking licences” to")
    await menu.focus()
    await menu.select_option(label="In progress")
    await page.keyboard.press("Tab")
    await expect(page.locator(":focus")).to_have_text("Move")
    await page.keyboard.press("Enter")
    moved = column(page, "In progress").locator(".kanban-card", has_text="Hafenkante: tracking licences")
    await expect(moved).to_have_count(1)
    await expect(moved).to_be_focused()  # focus follows the card to its new column
    await expect(column(page, "Invoice").locator(".kanban-figures")).to_have_text("0 cards")
    await page.context.close()
