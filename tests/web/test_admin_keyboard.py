"""Issue 5: keyboard navigation works on every form, proved in the real browser with the keyboard only.

Each step presses keys (Tab, Shift+Tab, Enter, Space, arrows, typing) and checks `document.activeElement`
as it goes; nothing is clicked or filled through a locator. Every page visited is also audited: each
Tab stop shows a focus indicator and is on screen, every control is reached by Tab, every control has an
accessible name in Chromium's accessibility tree, and no positive tabindex is used.

Server, browser and the admin come from tests/web/conftest.py (a server of this module's own).
"""

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.admin import PASSWORD, Admin, Server, new_page

# The focused element as a keyboard user meets it: its accessible name (approximated as the browser
# does for labelled controls, aria-label(ledby) and text), its focus indicator, and whether it is on screen.
FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return {tag: 'body', id: '', name: '', label: ''};
  window.__kbSeen = window.__kbSeen || new Set();
  window.__kbSeen.add(e);
  const clean = (text) => (text || '').replace(/\\s+/g, ' ').trim();
  let label = '';
  if (e.getAttribute('aria-labelledby')) {
    label = e.getAttribute('aria-labelledby').split(' ').map(id => document.getElementById(id)?.textContent).join(' ');
  } else if (e.getAttribute('aria-label')) {
    label = e.getAttribute('aria-label');
  } else if (e.labels && e.labels.length) {
    label = [...e.labels].map(l => l.textContent).join(' ');
  } else if (!['INPUT', 'SELECT', 'TEXTAREA'].includes(e.tagName)) {
    label = e.textContent;
  }
  const style = getComputedStyle(e);
  const rect = e.getBoundingClientRect();
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
  const shadow = style.boxShadow && style.boxShadow !== 'none';
  return {
    tag: e.tagName.toLowerCase(), id: e.id, name: e.getAttribute('name') || '', type: e.type || '',
    label: clean(label), value: 'value' in e ? String(e.value) : '', checked: !!e.checked,
    indicator: outline || shadow, outline: `${style.outlineStyle} ${style.outlineWidth} ${style.outlineColor}`,
    visible: rect.width > 1 && rect.height > 1 && rect.bottom > 0 && rect.right > 0
             && rect.top < innerHeight && rect.left < innerWidth,
    invalid: e.getAttribute('aria-invalid'),
    describedby: clean((e.getAttribute('aria-describedby') || '').split(' ')
                       .map(id => document.getElementById(id)?.textContent || '').join(' ')),
  };
}"""

# Controls a keyboard user should be able to Tab to, that Tab did not reach (one radio per group is enough).
UNREACHED = """() => {
  const seen = window.__kbSeen || new Set();
  const candidates = [...document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex="-1"])')];
  const groupSeen = (e) => e.type === 'radio' && [...seen].some(s => s.type === 'radio' && s.name === e.name);
  // checkVisibility: not in a closed <details> (its content is there but not shown)
  return candidates.filter(e => !e.disabled && e.getClientRects().length && e.checkVisibility() && !seen.has(e) && !groupSeen(e))
                   .map(e => e.outerHTML.slice(0, 120));
}"""

POSITIVE_TABINDEX = """() => [...document.querySelectorAll('[tabindex]')]
  .filter(e => e.tabIndex > 0).map(e => e.outerHTML.slice(0, 120))"""

UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
  .map(e => e.outerHTML.slice(0, 120))"""

# roles of Chromium's accessibility tree that a keyboard user operates; each needs a name
CONTROL_ROLES = {"button", "checkbox", "combobox", "link", "radio", "searchbox", "spinbutton", "textbox",
                 "ComboBoxSelect", "ComboBoxMenuButton", "InputTime", "DateTime", "slider", "switch", "listbox"}

STAGE = "In progress"  # of the demo's Sales pipeline


async def focused(page) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return await page.evaluate(FOCUSED)


async def focus_lands_on(page, ident: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """After a navigation, autofocus applies when the page has loaded: wait for it (fails after 10 s)."""
    await page.wait_for_function("id => document.activeElement && document.activeElement.id === id", arg=ident,
                                 timeout=10_000)
    return await focused(page)


async def press(page, key: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """One key, then the element that has focus; a Tab always lands on a visible control that shows focus."""
    await page.keyboard.press(key)
    now = await focused(page)
    if key in ("Tab", "Shift+Tab") and now["tag"] != "body":
        assert now["indicator"], f"no focus indicator on {now}"
        assert now["visible"], f"focused but not on screen: {now}"
    return now


async def tab_to(page, *, label: str | re.Pattern[str] | None = None, id: str | None = None,  # type: ignore[no-untyped-def]
                 back: bool = False, limit: int = 150) -> dict[str, Any]:
    """Tab (or Shift+Tab) until the focused control has this label or id; fails if it is never reached."""
    path = []
    for _ in range(limit):
        now = await press(page, "Shift+Tab" if back else "Tab")
        path.append(now["label"] or now["id"] or now["tag"])
        if id is not None and now["id"] == id:
            return now
        if label is not None and (re.search(label, now["label"]) if isinstance(label, re.Pattern)
                                  else now["label"] == label):
            return now
    raise AssertionError(f"never reached {label or id} by keyboard; went through {path}")


async def audit(page) -> None:  # type: ignore[no-untyped-def]
    """The whole page by Tab, twice round, then: every control reached, named, no positive tabindex."""
    where = page.url
    seen_body = 0
    for _ in range(600):
        now = await press(page, "Tab")
        if now["tag"] == "body":
            seen_body += 1
            if seen_body == 2:
                break
    assert seen_body == 2, f"Tab never cycled through {where}"
    assert await page.evaluate(UNREACHED) == [], f"not reachable by Tab on {where}"
    assert await page.evaluate(POSITIVE_TABINDEX) == [], f"positive tabindex on {where}"
    assert await page.evaluate(UNLABELLED) == [], f"controls without a label on {where}"
    cdp = await page.context.new_cdp_session(page)
    try:
        tree = await cdp.send("Accessibility.getFullAXTree")
    finally:
        await cdp.detach()
    nameless = [node for node in tree["nodes"] if not node.get("ignored")
                and node.get("role", {}).get("value") in CONTROL_ROLES
                and not str(node.get("name", {}).get("value", "")).strip()]
    assert nameless == [], f"controls without an accessible name on {where}: {nameless}"


async def type_into(page, text: str, *, replace: bool = False) -> None:  # type: ignore[no-untyped-def]
    if replace:
        await page.keyboard.press("ControlOrMeta+A")
    await page.keyboard.type(text)


async def keyboard_log_in(page, admin: Admin) -> None:  # type: ignore[no-untyped-def]
    await page.goto("/admin")
    await focus_lands_on(page, "email")
    await type_into(page, admin.email)
    await press(page, "Tab")
    await type_into(page, PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"/admin/login/code"))
    await focus_lands_on(page, "code")
    await type_into(page, admin.code())
    await page.keyboard.press("Enter")
    await page.get_by_role("button", name="Log out").wait_for()


@pytest.fixture(scope="module")
async def signed_in(browser, server: Server, admin: Admin) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    """A browser context with an admin session, logged in by keyboard; tests open their pages in it."""
    page = await new_page(browser, server)
    await keyboard_log_in(page, admin)
    try:
        yield page.context
    finally:
        await page.context.close()


async def test_login_and_code_forms_by_keyboard(browser, server: Server, admin: Admin) -> None:  # type: ignore[no-untyped-def]
    page = await new_page(browser, server)
    await page.goto("/admin")
    await focus_lands_on(page, "email")
    await audit(page)

    await page.goto("/admin/login")
    await focus_lands_on(page, "email")
    # From the page start: back to the first Tab stop (the skip link), then forward in order.
    assert (await press(page, "Shift+Tab"))["label"] == "pipewright"
    assert (await press(page, "Shift+Tab"))["label"] == "Skip to content"
    order = [await press(page, "Tab") for _ in range(4)]
    assert [(f["tag"], f["id"], f["label"]) for f in order] == [
        ("a", "", "pipewright"), ("input", "email", "Email"), ("input", "password", "Password"),
        ("button", "", "Continue")]
    # back to the fields: type into them, Enter in the password field submits the form
    assert (await press(page, "Shift+Tab"))["id"] == "password"
    assert (await press(page, "Shift+Tab"))["id"] == "email"
    await type_into(page, admin.email)
    await press(page, "Tab")
    await type_into(page, PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"/admin/login/code"))

    code = await focused(page)
    assert (code["id"], code["name"]) == ("code", "code")
    assert code["label"] == "Code from your authenticator app (or a recovery code)"
    await audit(page)
    await page.reload()
    await focus_lands_on(page, "code")
    assert (await press(page, "Tab"))["label"] == "Log in"
    assert (await press(page, "Shift+Tab"))["id"] == "code"
    await type_into(page, admin.code())
    await page.keyboard.press("Enter")
    await page.get_by_role("button", name="Log out").wait_for()
    assert "/admin/login" not in page.url

    # the skip link moves focus past the header to the page's content
    assert (await press(page, "Tab"))["label"] == "Skip to content"
    await page.keyboard.press("Enter")
    await focus_lands_on(page, "main")
    await page.context.close()


async def test_first_admin_setup_by_keyboard_with_the_console_code(browser, empty_server: Server) -> None:  # type: ignore[no-untyped-def]
    """A fresh server (no demo, no admin): the setup page wants the code from the server's console."""
    import pyotp

    page = await new_page(browser, empty_server)
    await page.goto("/admin")
    await page.wait_for_url(re.compile(r"/admin/setup$"))
    first = await focus_lands_on(page, "setup_code")
    assert (first["id"], first["label"]) == ("setup_code", "Setup code (printed in the server's console)")
    await audit(page)

    async def fill_form(code: str) -> None:  # from the code field, as the page has it focused
        await focus_lands_on(page, "setup_code")
        await type_into(page, code, replace=True)
        for text in ("first@example.com", "First Admin", PASSWORD, PASSWORD):
            await press(page, "Tab")
            await type_into(page, text, replace=True)
        await page.keyboard.press("Enter")

    await page.goto("/admin/setup")
    await fill_form("WRNG-CODE-22")
    await page.get_by_role("alert").wait_for()
    field = await focused(page)  # the code field has focus again, marked invalid with the message
    assert (field["id"], field["value"], field["invalid"]) == ("setup_code", "", "true")
    assert "the setup code does not match" in field["describedby"]
    assert await page.locator("#email").input_value() == "first@example.com"
    assert await page.locator("#password").input_value() == ""

    await fill_form(empty_server.setup_code().lower())
    await page.wait_for_url(re.compile(r"/admin/enrol$"))
    await focus_lands_on(page, "code")
    secret = (await page.locator("#totp-secret").inner_text()).strip()
    await type_into(page, pyotp.TOTP(secret).now())
    await page.keyboard.press("Enter")
    await page.get_by_role("heading", name="Two-factor login is on").wait_for()
    await page.goto("/admin/setup")
    await page.get_by_text("Setup is done: log in instead.").wait_for()
    await page.context.close()


async def test_rule_form_by_keyboard_with_an_inline_error(signed_in, server: Server) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import expect

    page = await signed_in.new_page()
    await page.goto("/admin/pipelines")
    await audit(page)
    sales = await page.evaluate("""[...document.querySelectorAll('section.card')]
        .find(s => s.querySelector('h2').textContent.startsWith('Sales')).querySelector('a.button').href""")
    await page.goto(sales)
    await audit(page)

    # the board: Tab to "Add rule" of the stage, Enter; the catalogue: Tab to "Task", Enter
    await tab_to(page, label=f"Add rule to {STAGE}")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name=f"Add a rule to “{STAGE}”")).to_be_visible()
    await audit(page)
    await tab_to(page, label="Task")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name=re.compile("^New rule"))).to_be_visible()
    await audit(page)

    # the rule's own fields
    await tab_to(page, id="f-title")
    await type_into(page, "Keyboard follow-up")
    assert (await press(page, "Tab"))["id"] == "f-key"
    await type_into(page, "kbd")
    lane = await press(page, "Tab")
    assert (lane["name"], lane["value"], lane["checked"]) == ("lane", "parallel", True)
    lane = await press(page, "ArrowDown")  # arrows move through the radio group and check
    assert (lane["value"], lane["checked"]) == ("after_previous", True)
    lane = await press(page, "ArrowUp")
    assert (lane["value"], lane["checked"]) == ("parallel", True)
    run_as = await press(page, "Tab")
    assert (run_as["id"], run_as["label"], run_as["value"]) == ("f-run_as_id", "Run as", "")
    assert (await press(page, "ArrowDown"))["value"] != "", "ArrowDown picks the first user"
    enabled = await press(page, "Tab")
    assert (enabled["label"], enabled["checked"]) == ("Enabled", True)
    stop = await press(page, "Tab")
    assert (stop["label"], stop["checked"]) == ("Stop the lane if this rule fails", False)
    assert (await press(page, "Space"))["checked"] is True

    # the generated Task settings: template, placeholder picker, number, select, checkbox
    title = await press(page, "Tab")
    assert (title["id"], title["tag"], title["label"]) == ("f-params-title", "textarea", "Title (required)")
    await type_into(page, "Call back ")
    picker = await press(page, "Tab")
    assert picker["id"] == "f-params-title-ph"
    await press(page, "ArrowDown")
    chosen = (await focused(page))["value"]
    assert chosen.startswith("{{")
    assert (await press(page, "Tab"))["label"] == "Insert"
    back = await press(page, "Enter")  # inserts and returns focus to the text
    assert (back["id"], back["value"]) == ("f-params-title", f"Call back {chosen}")
    deadline = await tab_to(page, id="f-params-deadline_days")
    assert deadline["label"] == "Deadline days"
    await type_into(page, "-1")
    priority = await press(page, "Tab")
    assert (priority["id"], priority["value"]) == ("f-params-priority", "normal")
    assert (await press(page, "ArrowDown"))["value"] == "high"
    wait = await press(page, "Tab")
    assert (wait["id"], wait["checked"]) == ("f-params-wait_until_closed", False)
    assert (await press(page, "Space"))["checked"] is True
    await tab_to(page, label="Add rule")
    await page.keyboard.press("Enter")

    # refused inline: focus goes to the error summary, whose link leads back to the field
    summary = page.locator(".error-summary")
    await expect(summary).to_be_focused()
    await expect(summary).to_contain_text("Task: Deadline days: Input should be greater than or equal to 0")
    link = await press(page, "Tab")
    assert (link["tag"], link["label"]) == ("a", "Task: Deadline days")
    field = await press(page, "Enter")
    assert field["id"] == "f-params-deadline_days"
    assert field["invalid"] == "true"
    assert "greater than or equal to 0" in field["describedby"]
    assert field["value"] == "-1", "the typed values come back"
    # the field is also an ordinary Tab stop after the summary, and the other values were kept
    await page.evaluate("document.querySelector('.error-summary').focus()")
    assert (await tab_to(page, id="f-params-deadline_days"))["invalid"] == "true"
    await audit(page)
    state = await page.evaluate("""() => ({title: document.querySelector('#f-title').value,
        stop: document.querySelector('[name=stop_lane_on_failure]').checked,
        wait: document.querySelector('#f-params-wait_until_closed').checked,
        priority: document.querySelector('#f-params-priority').value})""")
    assert state == {"title": "Keyboard follow-up", "stop": True, "wait": True, "priority": "high"}

    await page.keyboard.press("Shift+Tab")  # leave the field and come back, as a user fixing it would
    await tab_to(page, id="f-params-deadline_days")
    await type_into(page, "3", replace=True)
    await page.keyboard.press("Enter")  # implicit submission from a text field

    await page.wait_for_url(re.compile(r"/admin/pipelines/\d+#stage-\d+$"))
    column = page.locator("section.column", has=page.get_by_role("heading", name=STAGE, exact=True))
    card = column.locator(".rule", has=page.get_by_role("heading", name="Keyboard follow-up"))
    await expect(card).to_contain_text(f"Creates the task “Call back {chosen}” and waits until it is closed")
    await expect(card.locator(".key")).to_contain_text("kbd")
    await page.close()


async def test_new_deal_and_move_to_stage_by_keyboard(signed_in) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import expect

    page = await signed_in.new_page()
    await page.goto("/admin/deals")
    await audit(page)
    await tab_to(page, id="new-title")
    await type_into(page, "Keyboard deal")
    assert (await press(page, "Tab"))["label"] == "Amount"
    await type_into(page, "1200")
    stage = await press(page, "Tab")
    assert stage["label"] == "Stage"
    first = await page.evaluate("document.activeElement.selectedOptions[0].textContent")
    assert first == "New"
    assert (await press(page, "Tab"))["label"] == "Create deal"
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name=re.compile("^Keyboard deal"))).to_be_visible()
    await audit(page)

    await page.evaluate("window.sameDocument = true")
    move = await tab_to(page, label="Move to stage")
    assert move["id"] == "move-stage"
    await press(page, "ArrowDown")
    target = await page.evaluate("document.activeElement.selectedOptions[0].textContent")
    assert target not in ("", "New")
    assert (await press(page, "Tab"))["label"] == "Move"
    await page.keyboard.press("Enter")
    runs = page.locator("section.stage-run", has=page.get_by_role("heading", name=re.compile(f"^{target}")))
    await expect(runs).to_have_count(1)
    await expect(page.locator(".stagebar [aria-current=step]")).to_have_text(target)
    assert await page.evaluate("window.sameDocument === true"), "the page was reloaded"
    after = await focused(page)
    assert (after["id"], after["label"]) == ("move-submit", "Move"), "focus stays on the Move button after the swap"
    assert (await press(page, "Shift+Tab"))["id"] == "move-stage"
    await expect(runs.locator("tr.run .status").first).to_have_text(re.compile(r"\w"))
    await audit(page)
    await page.close()


async def test_user_forms_by_keyboard(signed_in) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import expect

    page = await signed_in.new_page()
    await page.goto("/admin/users")
    await audit(page)
    await tab_to(page, id="new-email")
    await type_into(page, "kim@pipewright.example")
    assert (await press(page, "Tab"))["label"] == "Name"
    await type_into(page, "Kim Keys")
    role = await press(page, "Tab")
    assert (role["label"], role["value"]) == ("Role", "employee")
    assert (await press(page, "ArrowDown"))["value"] == "manager"
    supervisor = await press(page, "Tab")
    assert (supervisor["label"], supervisor["value"]) == ("Supervisor", "")
    supervisor = await press(page, "ArrowDown")
    boss = await page.evaluate("document.activeElement.selectedOptions[0].textContent")
    assert supervisor["value"] != ""
    assert (await press(page, "Tab"))["label"] == "Time zone"
    await type_into(page, "Europe/Berlin", replace=True)
    assert (await press(page, "Tab"))["label"] == "Language of the admin"
    for day in ("Mon", "Tue", "Wed"):
        box = await press(page, "Tab")
        assert (box["name"], box["label"], box["checked"]) == ("days", day, False)
        assert (await press(page, "Space"))["checked"] is True
    start = await tab_to(page, id="new-start")
    assert start["label"] == "Hours from"
    await type_into(page, "0830AM")
    await tab_to(page, id="new-end")
    await type_into(page, "0500PM")
    await tab_to(page, label="Create user")
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("heading", name="Kim Keys")).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text("Created.")
    saved = await page.evaluate("""() => ({role: document.querySelector('#u-role').value,
        boss: document.querySelector('#u-supervisor').selectedOptions[0].textContent,
        tz: document.querySelector('#u-timezone').value,
        days: [...document.querySelectorAll('[name=days]:checked')].map(e => e.value),
        start: document.querySelector('#u-start').value, end: document.querySelector('#u-end').value})""")
    assert saved == {"role": "manager", "boss": boss, "tz": "Europe/Berlin", "days": ["0", "1", "2"],
                     "start": "08:30", "end": "17:00"}
    await audit(page)

    # the edit form: role by arrows, Space on "Absent", Enter on Save
    await page.reload()
    assert (await tab_to(page, id="u-role"))["value"] == "manager"
    assert (await press(page, "ArrowDown"))["value"] == "admin"
    absent = await tab_to(page, label=re.compile("^Absent"))
    assert absent["checked"] is False
    assert (await press(page, "Space"))["checked"] is True
    await tab_to(page, label="Save user")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("Saved.")
    assert await page.evaluate("document.querySelector('#u-role').value") == "admin"
    assert await page.evaluate("document.querySelector('[name=absent]').checked") is True
    await audit(page)
    await page.close()

