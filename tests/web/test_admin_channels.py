"""The admin's channel pages over plain HTTP, against `pipewright serve` with the demo data and no SMTP server: the
capture mailbox, an element's message log and a message's page (bodies only in a sandboxed iframe), resending a
failed message, the exception list and the channels page, each form guarded by the CSRF token."""

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from markupsafe import escape as markupsafe_escape

from tests.support.admin import Server, csrf_of, log_in


def escaped(text: str) -> str:
    """`text` as the admin's templates write it (Jinja's autoescape)."""
    return str(markupsafe_escape(text))


def client(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30)


def rows(server: Server, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.db_path) as connection:
        return connection.execute(sql, args).fetchall()


async def until(server: Server, sql: str, *args: object, timeout_s: float = 20) -> list[tuple[Any, ...]]:
    """Rows of `sql` once there are any: the served worker delivers on its own time."""
    deadline = time.monotonic() + timeout_s
    while not (found := rows(server, sql, *args)):
        assert time.monotonic() < deadline, f"nothing for {sql} after {timeout_s} s"
        await asyncio.sleep(0.1)
    return found


@asynccontextmanager
async def logged_in(server: Server, email: str) -> AsyncIterator[httpx.AsyncClient]:
    """A new admin of the server, logged in (each admin has two logins per half minute)."""
    async with client(server) as http:
        assert (await log_in(http, server.create_admin(email))).status_code == 303
        yield http


CAPTURED = ("SELECT id, subject, html, element_type, element_id, sender, recipient FROM message "
            "WHERE transport = 'capture' AND status = 'sent' AND html != '' ORDER BY id")


async def test_the_mailbox_and_the_deal_show_what_the_demo_rules_sent(server: Server) -> None:
    [message_id, subject, body, element_type, element_id, sender, recipient], *_ = await until(server, CAPTURED)
    async with logged_in(server, "mailbox@example.com") as http:
        mailbox = await http.get("/admin/mailbox")
        assert mailbox.status_code == 200
        assert escaped(subject) in mailbox.text and escaped(recipient) in mailbox.text
        assert escaped(sender) in mailbox.text
        assert "Now: email comes here, SMS comes here" in mailbox.text  # the served demo configures neither
        # The rendered body is there, escaped into a sandboxed iframe's srcdoc: never inline in the admin's page.
        assert f'sandbox="" referrerpolicy="no-referrer" loading="lazy" title="Body of “{escaped(subject)}”" ' \
               f'srcdoc="{escaped(body)}"' in mailbox.text
        assert body not in mailbox.text

        deal_page = await http.get(f"/admin/{element_type}s/{element_id}")
        assert deal_page.status_code == 200 and 'id="messages"' in deal_page.text
        assert f'<a href="/admin/messages/{message_id}">{escaped(subject)}</a>' in deal_page.text

        detail = await http.get(f"/admin/messages/{message_id}")
        assert detail.status_code == 200 and f'srcdoc="{escaped(body)}"' in detail.text
        assert "kept in the capture mailbox" in detail.text and body not in detail.text


async def test_a_failed_message_is_sent_again_from_its_page(server: Server) -> None:
    [message_id, *_], *_ = await until(server, CAPTURED)
    # As if the peer had refused it: the state a failed delivery leaves behind.
    with sqlite3.connect(server.db_path) as connection:
        connection.execute("UPDATE message SET status = 'failed', reason = 'refused: 550 no such user' WHERE id = ?",
                           (message_id,))
    async with logged_in(server, "resend@example.com") as http:
        page = await http.get(f"/admin/messages/{message_id}")
        assert "refused: 550 no such user" in page.text and "Send again" in page.text
        refused = await http.post(f"/admin/messages/{message_id}/resend")
        assert refused.status_code == 403
        resent = await http.post(f"/admin/messages/{message_id}/resend", data={"csrf_token": csrf_of(page.text)})
        assert resent.status_code == 303 and resent.headers["location"] == f"/admin/messages/{message_id}?resent=1"
        [(attempts, reason)] = await until(
            server, "SELECT attempts, reason FROM message WHERE id = ? AND status = 'sent'", message_id)
        assert attempts == 2 and reason is None
        again = await http.post(f"/admin/messages/{message_id}/resend", data={"csrf_token": csrf_of(page.text)})
        assert again.status_code == 422
        assert "only failed messages can be sent again; this one is sent" in again.text


async def test_exceptions_are_added_and_removed_with_the_csrf_token(server: Server) -> None:
    async with logged_in(server, "exceptions@example.com") as http:
        page = await http.get("/admin/exceptions")
        assert page.status_code == 200 and "The exception list is empty." in page.text
        token = csrf_of(page.text)

        forged = await http.post("/admin/exceptions", data={"value": "spam@example.com"})
        assert forged.status_code == 403
        assert rows(server, "SELECT count(*) FROM exception_entry") == [(0,)]

        bad = await http.post("/admin/exceptions", data={"value": "not an address", "csrf_token": token})
        assert bad.status_code == 422
        assert escaped("'not an address' is neither an email address nor a phone number") in bad.text
        assert 'aria-invalid="true" aria-describedby="err-value"' in bad.text and 'value="not an address"' in bad.text

        added = await http.post("/admin/exceptions", data={"value": "Spam@Example.com", "note": "competitor",
                                                           "csrf_token": token})
        assert added.status_code == 303
        listed = await http.get("/admin/exceptions")
        assert "<code>spam@example.com</code>" in listed.text and "competitor" in listed.text
        twice = await http.post("/admin/exceptions", data={"value": "spam@example.com", "csrf_token": token})
        assert twice.status_code == 422 and "spam@example.com is on the exception list already" in twice.text

        [(entry_id,)] = rows(server, "SELECT id FROM exception_entry")
        assert (await http.post(f"/admin/exceptions/{entry_id}/remove")).status_code == 403
        removed = await http.post(f"/admin/exceptions/{entry_id}/remove", data={"csrf_token": token})
        assert removed.status_code == 303
        assert rows(server, "SELECT count(*) FROM exception_entry") == [(0,)]


CALLS_HOOK = "SELECT token, signing_secret FROM channel_hook WHERE channel = 'calls'"


async def test_the_channels_page_keeps_senders_and_rotates_webhook_secrets(server: Server) -> None:
    async with logged_in(server, "channels@example.com") as http:
        page = await http.get("/admin/channels")
        assert page.status_code == 200
        assert "the <a href=\"/admin/mailbox\">capture mailbox</a> (set <code>PIPEWRIGHT_SMTP_URL</code>" in page.text
        token = csrf_of(page.text)
        [(calls_token, calls_secret)] = rows(server, CALLS_HOOK)
        assert f"/hooks/calls/{calls_token}" in page.text and calls_secret in page.text

        bad = await http.post("/admin/channels/senders", data={"name": "", "address": "sales", "csrf_token": token})
        assert bad.status_code == 422 and "&#39;sales&#39; is not an email address" in bad.text
        for name, address in (("Sales", "sales@demo.example"), ("Support", "support@demo.example")):
            created = await http.post("/admin/channels/senders", data={"name": name, "address": address,
                                                                       "csrf_token": token})
            assert created.status_code == 303
        senders = dict(rows(server, "SELECT address, is_default FROM mail_sender"))
        assert senders == {"sales@demo.example": 1, "support@demo.example": 0}
        [(support_id,)] = rows(server, "SELECT id FROM mail_sender WHERE address = 'support@demo.example'")
        await http.post(f"/admin/channels/senders/{support_id}", data={
            "name": "Support", "address": "support@demo.example", "is_default": "on", "csrf_token": token})
        assert dict(rows(server, "SELECT address, is_default FROM mail_sender")) == {
            "sales@demo.example": 0, "support@demo.example": 1}

        assert (await http.post("/admin/channels/webhooks/calls/rotate")).status_code == 403
        rotated = await http.post("/admin/channels/webhooks/calls/rotate", data={"csrf_token": token})
        assert rotated.status_code == 303
        [(new_token, new_secret)] = rows(server, CALLS_HOOK)
        assert (new_token, new_secret) != (calls_token, calls_secret)
        shown = (await http.get("/admin/channels")).text
        assert new_secret in shown and calls_secret not in shown

        rule_form = await http.get("/admin/stages/1/rules/new?type=send_email")
        assert rule_form.status_code == 200
        assert f'<option value="{support_id}">Support &lt;support@demo.example&gt;</option>' in rule_form.text
        assert "The default sender (support@demo.example)" in rule_form.text


async def test_the_sms_rule_form_counts_segments_as_the_text_is_typed(server: Server) -> None:
    async with logged_in(server, "sms-form@example.com") as http:
        form = await http.get("/admin/stages/1/rules/new?type=send_sms")
        assert form.status_code == 200
        assert 'hx-post="/admin/actions/send_sms/hints/text"' in form.text
        assert 'aria-describedby="f-params-text-hint"' in form.text and 'id="f-params-text-hint"' in form.text
        token = csrf_of(form.text)

        async def hint(text: str) -> str:
            answer = await http.post("/admin/actions/send_sms/hints/text", data={"p.text": text, "csrf_token": token})
            assert answer.status_code == 200
            return answer.text

        assert (await hint("a" * 160)).startswith("1 SMS segment (GSM-7")
        assert (await hint("a" * 161)).startswith("2 SMS segments (GSM-7")
        assert "UCS-2" in await hint("Grüße aus Łódź")
        assert (await hint("Hi {{deal.title}}")).startswith("without its placeholders:")
        assert (await http.post("/admin/actions/send_sms/hints/text", data={"p.text": "x"})).status_code == 403
        assert (await http.post("/admin/actions/send_email/hints/subject",
                                data={"p.subject": "x", "csrf_token": token})).status_code == 404
