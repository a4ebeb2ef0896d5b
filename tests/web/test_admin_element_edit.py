"""The element page edits: fields in place (typed inputs, errors beside the field, nothing typed lost), comments,
the live timeline (an entry added through GraphQL appears without a reload), and the contact and company pages."""

import html as html_lib
import re

import httpx

from tests.support.admin import Admin, Server, csrf_of, log_in, new_page
from tests.support.serve import cli_token, graphql
from tests.web.test_admin_browser import log_in as log_in_browser
from tests.web.test_admin_keyboard import tab_to

DEAL = "Bergmann: maintenance contract"
COMPANY = "Bergmann & Söhne KG"
CONTACT = "Michael Bergmann"


def client(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30)


def link_to(text: str, name: str) -> str:
    found = re.search(rf'<a href="(/admin/[a-z]+/\d+)">{re.escape(html_lib.escape(name))}</a>', text)
    assert found, f"no link to {name}"
    return found.group(1)


def form_of(fragment: str) -> dict[str, str]:
    """What the browser would send from the fields form as it is shown: every input, select and checkbox."""
    form = dict(re.findall(r'<input type="hidden" name="(b\.[a-z_]+)" value="(1)"', fragment))
    form |= {name: html_lib.unescape(value) for name, value in re.findall(r'name="(f\.[a-z_]+)" value="([^"]*)"', fragment)}
    form |= {f"f.{name}": "on" for name in re.findall(r'name="f\.([a-z_]+)" checked', fragment)}
    for name, options in re.findall(r'<select id="field-[a-z_]+" name="(f\.[a-z_]+)"[^>]*>(.*?)</select>', fragment, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', options)
        form[name] = chosen.group(1) if chosen else ""
    for name, text in re.findall(r'<textarea id="field-[a-z_]+" name="(f\.[a-z_]+)"[^>]*>(.*?)</textarea>', fragment, re.S):
        form[name] = html_lib.unescape(text)
    return form


async def test_fields_are_saved_typed_and_a_refused_save_keeps_what_was_typed(server: Server, admin: Admin) -> None:
    async with client(server) as http:
        assert (await log_in(http, admin)).status_code == 303
        deal_path = link_to((await http.get("/admin/deals")).text, DEAL)
        page = (await http.get(deal_path)).text
        token, shown = csrf_of(page), form_of(page)
        assert shown["f.title"] == DEAL and shown["f.priority"] == "low" and shown["f.amount"] == "1800.00"
        htmx = {"HX-Request": "true", "X-CSRF-Token": token}

        wrong = await http.post(f"{deal_path}/fields", headers=htmx, data={
            **shown, "f.title": "Maintenance, renewed", "f.amount": "12,5x", "f.close_date": "next week",
            "f.priority": "urgent", "f.currency": "Euro"})
        assert wrong.status_code == 422
        errors = dict(re.findall(r'id="err-fields-([a-z_]+)" role="alert">([^<]+)<', wrong.text))
        assert set(errors) == {"amount", "close_date", "priority", "currency"}, errors
        assert "must be one of low, normal, high" in errors["priority"]
        assert 'aria-describedby="err-fields-amount"' in wrong.text
        kept = form_of(wrong.text)  # what was typed comes back, the valid title too
        assert (kept["f.title"], kept["f.amount"], kept["f.close_date"]) == ("Maintenance, renewed", "12,5x", "next week")
        assert form_of((await http.get(deal_path)).text)["f.title"] == DEAL  # nothing was saved

        saved = await http.post(f"{deal_path}/fields", headers=htmx, data={
            **shown, "f.title": "Maintenance, renewed", "f.amount": "2450.5", "f.priority": "high",
            "f.contract_number": "MC-2027-04", "f.close_date": "2027-03-31"})
        assert saved.status_code == 200 and "Saved." in saved.text
        now = form_of((await http.get(deal_path)).text)
        assert (now["f.title"], now["f.amount"], now["f.priority"], now["f.contract_number"], now["f.close_date"]) == (
            "Maintenance, renewed", "2450.50", "high", "MC-2027-04", "2027-03-31")
        assert now["f.responsible"] == shown["f.responsible"]  # untouched fields stay as they were

        refused = await http.post(f"{deal_path}/fields", data={**shown, "f.title": "No token"})
        assert refused.status_code == 403


async def test_contact_and_company_pages_link_each_other_and_their_deals(server: Server, admin: Admin) -> None:
    async with client(server) as http:
        assert (await log_in(http, admin)).status_code == 303
        deal_path = link_to((await http.get("/admin/deals")).text, "Bergmann: LED retrofit")
        deal = (await http.get(deal_path)).text
        clients_card = deal[deal.index('id="clients"'):]
        company_path, contact_path = link_to(clients_card, COMPANY), link_to(clients_card, CONTACT)

        companies = await http.get("/admin/companies?q=bergmann")
        assert companies.status_code == 200 and link_to(companies.text, COMPANY) == company_path
        assert "Nordlicht Solar GmbH" not in companies.text
        company = (await http.get(company_path)).text
        assert link_to(company, CONTACT) == contact_path and link_to(company, "Bergmann: LED retrofit") == deal_path
        assert "kontakt@bergmann-soehne.example" in company

        contact = (await http.get(contact_path)).text
        assert link_to(contact, COMPANY) == company_path and link_to(contact, "Bergmann: LED retrofit") == deal_path
        assert "m.bergmann@bergmann-soehne.example" in contact and "Owner" in contact
        assert link_to((await http.get("/admin/contacts")).text, CONTACT) == contact_path
        assert (await http.get("/admin/contacts/999999")).status_code == 404


async def test_comments_and_the_live_timeline_in_the_browser(browser, server: Server) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import expect

    admin = server.create_admin("lea@pipewright.example", "Lea Live")  # an admin of its own: TOTP codes are one-off
    page = await new_page(browser, server)
    await log_in_browser(page, admin)
    await page.goto("/admin/deals")
    await page.get_by_role("link", name="Hafenkante: tracking licences", exact=True).click()
    deal_id = int(re.search(r"/admin/deals/(\d+)", page.url).group(1))
    await expect(page.locator("html")).to_have_attribute("data-timeline-live", "yes")

    # a comment by keyboard; an empty one is refused beside the field
    await page.locator("#fields-save").focus()
    await tab_to(page, id="comment-text")
    await tab_to(page, id="comment-submit")
    await page.keyboard.press("Enter")
    await expect(page.locator("#err-text")).to_contain_text("write something to comment")
    await expect(page.get_by_label("Comment")).to_have_attribute("aria-invalid", "true")
    await page.get_by_label("Comment").focus()
    await page.keyboard.type("Called: they want the offer by Friday")
    await tab_to(page, id="comment-submit")
    await page.keyboard.press("Enter")
    await expect(page.locator("#timeline li").first).to_contain_text("Called: they want the offer by Friday")
    await expect(page.get_by_label("Comment")).to_have_value("")

    # a comment written through the API appears without a reload
    token = cli_token(server.db_url, email=admin.email)
    marker = await page.evaluate("() => { window.__sameDocument = 'yes'; return window.__sameDocument; }")
    added = await graphql(server.port, """mutation($id: ID!) { addComment(elementType: "deal", elementId: $id,
        text: "Through the API") { __typename } }""", {"id": str(deal_id)}, token=token)
    assert "errors" not in added, added
    await expect(page.locator("#timeline li").first).to_contain_text("Through the API", timeout=10_000)
    assert await page.evaluate("() => window.__sameDocument") == marker  # no reload happened

    # a typed error beside its field in the browser, what was typed kept
    await page.get_by_label("Amount").fill("lots")
    await page.get_by_label("Contract number").fill("WS-1")
    await page.get_by_role("button", name="Save fields").click()
    await expect(page.locator("#err-fields-amount")).to_be_visible()
    await expect(page.get_by_label("Amount")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Contract number")).to_have_value("WS-1")
    await page.context.close()


async def test_fields_and_the_client_pages_by_keyboard(browser, server: Server) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import expect

    from tests.web.test_admin_keyboard import audit, focused

    admin = server.create_admin("kim@pipewright.example", "Kim Keyboard")
    page = await new_page(browser, server)
    await log_in_browser(page, admin)
    await page.goto("/admin/deals")
    await page.get_by_role("link", name="Alpenblick: referral agreement", exact=True).click()
    await page.evaluate("window.sameDocument = true")
    await audit(page)
    await page.locator("#move-submit").focus()
    await tab_to(page, label="Contract number")
    await page.keyboard.type("AB-7")
    await tab_to(page, label="Save fields")
    await page.keyboard.press("Enter")
    await expect(page.locator("#fields .saved")).to_have_text("Saved.")
    assert (await focused(page))["id"] == "fields-save", "focus stays on the Save button after the swap"
    assert await page.evaluate("window.sameDocument === true"), "the page was reloaded"
    await expect(page.get_by_label("Contract number")).to_have_value("AB-7")

    await tab_to(page, label="Alpenblick Hotels AG")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Alpenblick Hotels AG")).to_be_visible()
    await audit(page)
    await tab_to(page, label="Eva Gruber")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Eva Gruber")).to_be_visible()
    await audit(page)
    await page.goto("/admin/contacts")
    await tab_to(page, label="Search by name")
    await page.keyboard.type("gruber")
    await page.keyboard.press("Enter")
    await expect(page.locator(".client-list li")).to_have_count(1)
    await audit(page)
    await page.context.close()
