"""Tasks and activities in the admin: My work, and closing the demo deal's task from its page releases the rule
that waits for it, exactly as GraphQL closeTask does (the same service)."""

import re

import httpx

from tests.support.admin import Admin, Server, csrf_of, log_in, new_page
from tests.web.test_admin_browser import log_in as log_in_browser
from tests.web.test_admin_keyboard import audit, tab_to

DEAL = "Bergmann: LED retrofit"
TASK = f"Prepare the contract for {DEAL}"  # its rule waits until it is closed; closing it moves the deal to Invoice


def client(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30)


def option_of(html: str, name: str) -> str:
    found = re.search(rf'<option value="(\d+)"[^>]*>{re.escape(name)}</option>', html)
    assert found, html[:3000]
    return found.group(1)


def section(html: str, ident: str) -> str:
    start = html.index(f'id="{ident}"')
    return html[start:html.index("</section>", start)]


async def test_my_work_groups_a_users_open_tasks_and_closing_needs_the_csrf_token(server: Server, admin: Admin) -> None:
    async with client(server) as http:
        assert (await log_in(http, admin)).status_code == 303
        own = await http.get("/admin/work")
        assert own.status_code == 200 and "My work" in own.text
        assert [g for g in ("Overdue", "Due today", "Later") if g in own.text] == ["Overdue", "Due today", "Later"]
        sven = option_of(own.text, "Sven Hoffmann")  # an admin may look at anyone's work
        page = await http.get(f"/admin/work?user={sven}&kind=task")
        later = section(page.text, "work-later")
        assert "Prepare the contract for Bergmann: LED retrofit" in later
        assert TASK not in section(page.text, "work-overdue") + section(page.text, "work-today")
        task_id = re.search(rf'id="work-task-(\d+)">\s*<span class="work-kind">Task</span>\s*<span class="work-title">'
                            rf'{re.escape(TASK)}<', page.text).group(1)
        meetings = await http.get(f"/admin/work?user={sven}&kind=meeting")
        assert TASK not in meetings.text
        bad = await http.get("/admin/work?kind=holiday")
        assert "must be one of task, call, meeting" in bad.text

        refused = await http.post(f"/admin/tasks/{task_id}/close", data={"back": "/admin/work"})
        assert refused.status_code == 403
        still = await http.get(f"/admin/work?user={sven}&kind=task")
        assert TASK in still.text and csrf_of(still.text)


async def test_closing_the_demo_task_on_the_deal_page_lets_the_waiting_rule_go_on(browser, server: Server,  # type: ignore[no-untyped-def]
                                                                                  admin: Admin) -> None:
    from playwright.async_api import expect

    page = await new_page(browser, server)
    await log_in_browser(page, admin)
    await page.goto("/admin/deals")
    await page.get_by_role("link", name=DEAL, exact=True).click()
    work = page.locator("#work")
    await expect(work).to_contain_text(TASK)
    contract = page.locator("tr.run", has_text="Prepare the contract").first
    await expect(contract.locator(".status")).to_have_text("waiting")

    # by keyboard: Tab to the task's close button, Enter
    await page.locator("#move-submit").focus()
    await tab_to(page, label=f"Close task {TASK}")
    await page.keyboard.press("Enter")

    await page.wait_for_url(re.compile(r"/admin/deals/\d+#work$"))
    await expect(page.locator("#work")).not_to_contain_text(TASK)
    await expect(page.locator("tr.run", has_text="Prepare the contract").first.locator(".status")).to_have_text(
        "succeeded", timeout=15_000)
    # the deal went on to Invoice (the demo's trigger "Contract task closed"), whose first rule now runs
    await expect(page.locator("#runs h3").first).to_contain_text("Invoice", timeout=15_000)
    payment = page.locator("tr.run", has_text="Wait for the payment").first
    await expect(payment.locator(".status")).to_have_text("waiting", timeout=15_000)
    await page.reload()
    await expect(page.locator(".stagebar [aria-current=step]")).to_have_text("Invoice")

    await page.goto("/admin/work")
    await audit(page)
    await page.context.close()
