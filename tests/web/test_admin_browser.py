"""The admin in a real browser (Debian's Chromium, headless, through the PyPI playwright package).

A new admin logs in with TOTP, builds a promo-code stage through the forms, moves a deal there and
watches its runs finish on the element page without a reload. Screenshots go to docs/screenshots/.
"""

import re

from tests.support.admin import PASSWORD, Admin, Server, new_page
from tests.support.servers import ROOT

SHOTS = ROOT / "docs" / "screenshots"


async def log_in(page, admin: Admin, *, code: str | None = None) -> None:  # type: ignore[no-untyped-def]
    await page.goto("/admin")
    await page.get_by_label("Email").fill(admin.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label(re.compile("Code from your authenticator app")).fill(code or admin.code())
    await page.get_by_role("button", name="Log in").click()


async def add_rule(page, stage: str, action: str) -> None:  # type: ignore[no-untyped-def]
    await page.get_by_role("link", name=f"Add rule to {stage}").click()
    await page.get_by_role("link", name=action, exact=True).click()


async def test_build_a_promo_code_stage_and_watch_a_deal_run_it(browser, server: Server, admin: Admin) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import expect

    page = await new_page(browser, server)
    await log_in(page, admin)
    await expect(page.get_by_role("heading", name="Pipelines and stages")).to_be_visible()

    sales = page.locator("section.card", has=page.get_by_role("heading", name=re.compile(r"^Sales")))
    await sales.get_by_label("New stage", exact=True).fill("Promo")
    await sales.get_by_role("button", name="Add stage").click()
    sales = page.locator("section.card", has=page.get_by_role("heading", name=re.compile(r"^Sales")))
    await expect(sales.get_by_label(re.compile("Name of stage"))).to_have_count(7)
    await sales.get_by_role("link", name="Open the rule designer").click()

    # 1. Generate code: an invalid length first, refused inline by the server.
    await add_rule(page, "Promo", "Generate code")
    await page.get_by_label("Title", exact=True).fill("Promo code")
    await page.get_by_label(re.compile("^Key")).fill("promo")
    await page.get_by_label("Length").fill("2")
    await page.get_by_role("button", name="Add rule").click()
    await expect(page.locator("#err-params-length")).to_contain_text("greater than or equal to 4")
    await expect(page.get_by_label("Length")).to_have_attribute("aria-invalid", "true")
    await page.get_by_label("Length").fill("8")
    await page.get_by_role("button", name="Add rule").click()
    column = page.locator("section.column", has=page.get_by_role("heading", name="Promo", exact=True))
    await expect(column.locator(".rule")).to_contain_text("Generates a 8-character code")

    # 2. A comment with the code, after the rule above; the placeholder comes from the picker.
    await add_rule(page, "Promo", "Add comment")
    await page.get_by_label("Title", exact=True).fill("Send the code")
    await page.get_by_label(re.compile("After previous")).check()
    text = page.get_by_label(re.compile(r"^Text"))
    await text.fill("Your promo code: ")
    await text.press("End")
    await page.get_by_label("Placeholder for “Text”").select_option("{{rules.promo.code}}")
    await page.get_by_role("button", name="Insert").click()
    await expect(text).to_have_value("Your promo code: {{rules.promo.code}}")
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / "rule-form.png"), full_page=True)
    await page.get_by_role("button", name="Add rule").click()

    # 3. A history entry for big deals only: the condition builder.
    await add_rule(page, "Promo", "History entry")
    await page.get_by_label(re.compile(r"^Text")).fill("Big deal in Promo: {{deal.title}}")
    await page.get_by_label("Field, group 1 row 1").fill("amount")
    await page.get_by_label("Operator, group 1 row 1").select_option("gt")
    await page.get_by_label("Value, group 1 row 1").fill("5000")
    await page.get_by_role("button", name="Add rule").click()

    cards = column.locator(".rule")
    await expect(cards).to_have_count(3)
    await expect(cards.nth(1)).to_contain_text("after the rule above")
    await expect(cards.nth(1)).to_contain_text("{{rules.promo.code}}")
    await expect(cards.nth(2)).to_contain_text("Only if: amount is more than €5,000.00")
    await page.set_viewport_size({"width": 2050, "height": 1000})  # every column of the board in the picture
    await page.locator(".board").evaluate("board => { board.scrollLeft = 0; window.scrollTo(0, 0); }")
    await page.screenshot(path=str(SHOTS / "board.png"), full_page=True)
    await page.set_viewport_size({"width": 1400, "height": 900})

    # A deal created in "New", then moved to Promo on its page: the runs finish without a reload.
    await page.get_by_role("link", name="Deals", exact=True).click()
    await page.get_by_label("Title", exact=True).fill("ACME promo")
    await page.get_by_label("Amount", exact=True).fill("7000")
    await page.get_by_label("Stage", exact=True).select_option(label="New")
    await page.get_by_role("button", name="Create deal").click()
    await expect(page.get_by_role("heading", name=re.compile("ACME promo"))).to_be_visible()
    await page.evaluate("window.sameDocument = true")
    await page.get_by_label("Move to stage").select_option(label="Promo")
    await page.get_by_role("button", name="Move", exact=True).click()
    promo_runs = page.locator("section.stage-run", has=page.get_by_role("heading", name=re.compile("^Promo")))
    await expect(promo_runs.locator("tr.run")).to_have_count(3)
    for key in ("promo", "add_comment1", "history_entry1"):
        await expect(promo_runs.locator(f"tr[data-rule-key={key}] .status")).to_have_text("succeeded", timeout=20_000)
    assert await page.evaluate("window.sameDocument === true"), "the page was reloaded"
    code = (await promo_runs.locator("tr[data-rule-key=promo] dl.outputs dd").inner_text()).strip()
    assert re.fullmatch(r"[A-Z0-9]{8}", code)
    await expect(page.locator("#runs")).to_have_attribute("data-pending", "no")

    await page.reload()
    await expect(page.locator("#timeline")).to_contain_text(f"Your promo code: {code}")
    await expect(page.locator("#timeline")).to_contain_text("Big deal in Promo: ACME promo")
    await page.screenshot(path=str(SHOTS / "element.png"), full_page=True)
    await page.context.close()


async def test_replayed_totp_code_and_post_without_csrf_token_are_refused(browser, server: Server, admin: Admin) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import expect

    page = await new_page(browser, server)
    await log_in(page, admin)
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()
    used = admin.last_code

    without = await page.evaluate("""fetch('/admin/pipelines', {method: 'POST',
        body: new URLSearchParams({name: 'Sneaky', entity_type: 'deal'})}).then(r => r.status)""")
    assert without == 403
    token = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    with_token = await page.evaluate("""(token) => fetch('/admin/pipelines', {method: 'POST',
        headers: {'X-CSRF-Token': token}, body: new URLSearchParams({name: 'Proper', entity_type: 'deal'})})
        .then(r => r.status)""", token)
    assert with_token == 200
    await page.goto("/admin/pipelines")
    await expect(page.get_by_role("heading", name=re.compile("^Proper"))).to_be_visible()
    await expect(page.get_by_role("heading", name=re.compile("^Sneaky"))).to_have_count(0)

    await page.get_by_role("button", name="Log out").click()
    await log_in(page, admin, code=used)
    await expect(page.get_by_role("alert")).to_contain_text("Codes work once")
    await page.context.close()
