"""A browser session logged in once per test module (a TOTP code is good once), and pages opened in it."""

import re
from typing import Any

from tests.support.admin import PASSWORD, Admin, Server, new_page


async def sign_in(browser: Any, server: Server, admin: Admin) -> dict[str, Any]:
    """The admin's cookies after both login steps, for `open_page`."""
    from playwright.async_api import expect

    page = await new_page(browser, server)
    await page.goto("/admin")
    await page.get_by_label("Email").fill(admin.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label(re.compile("Code from your authenticator app")).fill(admin.code())
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("button", name="Log out")).to_have_count(1)
    state: dict[str, Any] = await page.context.storage_state()
    await page.context.close()
    return state


async def open_page(browser: Any, server: Server, state: dict[str, Any], path: str, *, width: int = 1400) -> Any:
    context = await browser.new_context(base_url=server.url, viewport={"width": width, "height": 900},
                                        storage_state=state)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    await page.goto(path)
    return page
