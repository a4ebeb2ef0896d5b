"""The rule designer in Chromium: catalogues as cards that say what each choice does and gives, a rule form whose
timing shows only what the chosen kind reads, compact rule cards with their actions in a keyboard menu and the lane as
a badge, red destructive buttons, and a pipelines page whose rows open their form on demand."""

import re
from typing import Any

import pytest
from playwright.async_api import expect

from tests.support.admin import Admin, Server
from tests.support.signed_in import open_page, sign_in
from web.rule_form import TIMING_PARTS

RED = "rgb(179, 38, 30)"  # --bad in admin.css


@pytest.fixture(scope="module")
async def signed_in(browser, server: Server, admin: Admin) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return await sign_in(browser, server, admin)


async def designer(browser, server: Server, state: dict[str, Any]):  # type: ignore[no-untyped-def]
    page = await open_page(browser, server, state, "/admin/pipelines")
    await page.locator("section.card", has=page.get_by_role("heading", name=re.compile("^Sales"))).get_by_role(
        "link", name="Open the rule designer").click()
    return page


def stage_column(page, name: str):  # type: ignore[no-untyped-def]
    return page.locator("section.column", has=page.get_by_role("heading", name=name, exact=True))


async def test_the_rule_catalogue_is_cards_that_say_what_each_action_does_and_gives(browser, server: Server, signed_in: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    page = await designer(browser, server, signed_in)
    await page.get_by_role("link", name="Add rule to Invoice").click()
    task = page.locator(".pick", has=page.get_by_role("link", name="Task", exact=True))
    await expect(task).to_contain_text("Gives someone a task with a deadline")
    await expect(task.locator(".gives")).to_have_text("Later rules can use: the task, when it was closed and how the wait ended.")
    body = await page.locator("main").inner_text()
    assert "activity_id" not in body and "gives " not in body
    await task.click()  # the whole card is the link
    await expect(page.get_by_role("heading", name=re.compile("^New rule"))).to_be_visible()

    await page.goto(page.url.replace("/rules/new?type=task", "/triggers/new"))
    call = page.locator(".pick", has=page.get_by_role("link", name="Incoming call", exact=True))
    await expect(call).to_contain_text("The element's client calls in")
    await expect(call.locator(".gives")).to_contain_text("Conditions can compare: the numbers")
    assert "event.duration_s" not in await page.locator("main").inner_text()
    await page.context.close()


async def test_the_rule_form_shows_only_the_timing_fields_the_chosen_kind_reads(browser, server: Server, signed_in: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    page = await designer(browser, server, signed_in)
    await page.get_by_role("link", name="Add rule to Invoice").click()
    await page.get_by_role("link", name="Add comment", exact=True).click()
    controls = {"amount": "#f-timing-amount", "unit": "#f-timing-unit", "field": "#f-timing-field",
                "time_of_day": "#f-timing-time_of_day"}
    for kind, parts in TIMING_PARTS.items():
        await page.get_by_label("Runs", exact=True).select_option(kind)
        shown = {part for part, selector in controls.items() if await page.locator(selector).is_visible()}
        assert shown == set(parts), kind
        await expect(page.get_by_label("Working time")).to_be_visible()
    await page.get_by_label("Runs", exact=True).select_option("immediately")
    assert [await page.locator(s).is_visible() for s in controls.values()] == [False] * 4
    await page.context.close()


async def test_rule_cards_keep_their_actions_in_a_keyboard_menu_and_the_lane_as_a_badge(browser, server: Server, signed_in: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    page = await designer(browser, server, signed_in)
    column = stage_column(page, "New")
    second = column.locator(".rule").nth(1)
    title = await second.locator("h4").inner_text()
    edit = second.get_by_role("link", name=f"Edit {title}")
    await expect(edit).to_be_hidden()  # closed until asked
    await second.locator("summary").focus()
    await page.keyboard.press("Enter")
    await expect(edit).to_be_visible()
    lane = second.get_by_role("button", name=re.compile("^Run (after previous|in parallel)$"))
    before = await lane.inner_text()
    await lane.focus()
    await page.keyboard.press("Enter")
    second = stage_column(page, "New").locator(".rule").nth(1)
    if before == "Run after previous":
        await expect(second.locator(".badge.lane")).to_contain_text("after the rule above")
        await second.locator("summary").click()
        await expect(second.get_by_role("button", name="Run in parallel")).to_be_visible()
    else:
        await expect(second.locator(".badge.lane")).to_contain_text("starts with the stage")
        await second.locator("summary").click()
        await expect(second.get_by_role("button", name="Run after previous")).to_be_visible()
    delete = second.get_by_role("link", name=f"Delete {title}")
    assert await delete.evaluate("e => getComputedStyle(e).color") == RED
    await delete.click()
    confirm = page.get_by_role("button", name="Delete rule")
    assert await confirm.evaluate("e => getComputedStyle(e).backgroundColor") == RED
    await page.context.close()


async def test_the_pipelines_page_shows_rows_as_text_and_opens_a_row_form_on_demand(browser, server: Server, signed_in: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    page = await open_page(browser, server, signed_in, "/admin/pipelines")
    sales = page.locator("section.card", has=page.get_by_role("heading", name=re.compile("^Sales")))
    await expect(sales.locator("input[name=name]:visible")).to_have_count(1)  # only "New stage"
    await sales.get_by_text("Edit Invoice").click()
    name = sales.get_by_label(re.compile("Name of stage 3"))
    await expect(name).to_be_visible()
    await name.fill("Invoice sent")
    await sales.get_by_role("button", name="Save Invoice").click()
    sales = page.locator("section.card", has=page.get_by_role("heading", name=re.compile("^Sales")))
    await expect(sales.locator(".stage-name").nth(2)).to_have_text("Invoice sent")
    await expect(sales.locator("input[name=name]:visible")).to_have_count(1)
    await page.context.close()
