"""Inbound mail through the real SMTP receiver: a customer's reply (sent with stdlib smtplib) lands on the
deal's timeline and ends its Wait rule; the exception list, unknown and malformed senders and oversize mail
get the SMTP answers a sending server acts on; a bounce or a complaint suppresses the address, and the next
Send email to it is skipped with the reason, nothing reaching the SMTP peer.

The receiver runs in the test process, on the test's loop; on the production backend the rules run (and the
outbound mail is sent) by the separate worker process.
"""

import asyncio
import email.policy
import os
import shutil
import smtplib
import subprocess
import sys
from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest

from server import config, mailin
from server.actor import SYSTEM
from server.models import Contact, DealContact, ExceptionEntry, Message, RuleRun, Suppression, TimelineEntry
from server.services import elements as element_service
from tests.support.clients import work
from tests.channels.test_bounces import arf_complaint, postfix_bounce
from tests.support import add_rule, make_pipeline, make_user, wait_for_runs, wait_until
from tests.support.peers import Received, SmtpPeer
from tests.support.serve import serve, stop, wait_ready
from tests.support.servers import ROOT, free_port

pytestmark = pytest.mark.production_backend


@pytest.fixture
async def receiver(db) -> AsyncIterator[mailin.Receiver]:
    running = await mailin.start("127.0.0.1:0")
    try:
        yield running
    finally:
        await running.stop()


def smtp_send(address: str, raw: bytes, *, mail_from: str = "anna@acme.example",
              to: str = "sales@pipewright.example") -> tuple[int, str]:
    """One mail through stdlib smtplib, as any sending server would: (the DATA answer's code, its text)."""
    host, port = address.rsplit(":", 1)
    with smtplib.SMTP(host, int(port), timeout=10) as client:
        client.ehlo()
        code, answer = client.mail(mail_from)
        assert code == 250, answer
        code, answer = client.rcpt(to)
        assert code == 250, answer
        code, answer = client.data(raw)
        return code, answer.decode()


async def send(receiver: mailin.Receiver, raw: bytes, **envelope: str) -> tuple[int, str]:
    return await asyncio.to_thread(smtp_send, receiver.address, raw, **envelope)


def reply_mail(*, in_reply_to: str = "", sender: str = "Anna Berg <anna@acme.example>", subject: str = "Re: Your offer",
               text: str = "Yes, let's go.", message_id: str = "<reply-1@acme.example>") -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "sales@pipewright.example"
    mail["Subject"] = subject
    mail["Message-ID"] = message_id
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    mail.set_content(text)
    return mail.as_bytes(policy=email.policy.SMTP)  # CR LF line ends, as on the wire


async def waiting_deal(stages, *, email: str = "anna@acme.example", title: str = "LED retrofit"):
    """A deal in the offer stage, whose rules send the offer to Anna and wait for her answer."""
    owner = await make_user(f"Maria{await Contact.all().count()}")
    contact = await Contact.create(name="Anna Berg", emails=work(email))
    deal = await element_service.create_element("deal", {"title": title, "responsible": owner.id},
                                                stage_id=stages["new"].id, actor=SYSTEM)
    await DealContact.create(deal_id=deal.id, contact_id=contact.id, position=0)
    await element_service.move_element("deal", deal.id, stages["offer"].id, actor=SYSTEM)
    return deal


async def offer_stage():
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "send_email", {"subject": "Your offer", "text": "Hello Anna, the offer."})
    await add_rule(stages["offer"], "wait", {"days": 5}, key="wait_for_answer")
    return stages


async def offer_at_peer(deal, smtp: SmtpPeer) -> tuple[Message, Received]:
    """The offer, sent and received by the SMTP peer; the Wait rule waiting."""
    message = await wait_until(
        lambda: Message.filter(element_type="deal", element_id=deal.id, direction="outbound", status="sent").first(),
        what="the offer sent")
    await wait_until(lambda: _value(any(m.message["Message-ID"] == f"<{message.uid}@localhost>"
                                        for m in smtp.messages())), what="the offer at the SMTP peer")
    await wait_for_runs("deal", deal.id, 1, statuses=("waiting",))
    [received] = [m for m in smtp.messages() if m.message["Message-ID"] == f"<{message.uid}@localhost>"]
    return message, received


async def wait_run(deal) -> RuleRun:
    return await RuleRun.get(element_type="deal", element_id=deal.id, action_type="wait")


async def inbound_count() -> int:
    return await Message.filter(direction="inbound").count()


async def _value(value):
    return value


async def test_a_reply_lands_on_the_deals_timeline_and_ends_its_wait(db, smtp, receiver):
    deal = await waiting_deal(await offer_stage())
    offer, received = await offer_at_peer(deal, smtp)

    code, answer = await send(receiver, reply_mail(in_reply_to=received.message["Message-ID"]))

    assert code == 250 and f"on deal {deal.id}" in answer
    run = await wait_until(lambda: _ended(deal), what="the Wait rule ended")
    assert run.outputs["ended_by"] == "email" and run.reason == "wait ended by email"
    [reply] = await Message.filter(direction="inbound")
    assert (reply.sender, reply.subject, reply.status) == ("anna@acme.example", "Re: Your offer", "received")
    assert reply.in_reply_to_id == offer.id and reply.header_message_id == "<reply-1@acme.example>"
    entries = [e.text for e in await TimelineEntry.filter(element_type="deal", element_id=deal.id, kind="message")]
    assert entries == ["Email from anna@acme.example: Re: Your offer\n\nYes, let's go."]


async def _ended(deal) -> RuleRun | None:
    run = await wait_run(deal)
    return run if run.status == "succeeded" else None


async def test_a_reply_from_another_address_finds_the_deal_by_in_reply_to(db, smtp, receiver):
    deal = await waiting_deal(await offer_stage())
    offer, received = await offer_at_peer(deal, smtp)

    code, answer = await send(receiver, reply_mail(in_reply_to=received.message["Message-ID"],
                                                   sender="Bob <bob@acme.example>"), mail_from="bob@acme.example")

    assert code == 250 and f"on deal {deal.id}" in answer
    assert (await wait_until(lambda: _ended(deal), what="the Wait rule ended")).outputs["ended_by"] == "email"


async def test_the_same_mail_delivered_twice_is_stored_once(db, smtp, receiver):
    deal = await waiting_deal(await offer_stage())
    await offer_at_peer(deal, smtp)

    first = await send(receiver, reply_mail())
    again = await send(receiver, reply_mail())  # the sending server missed our 250 and tries again

    assert first[0] == again[0] == 250 and "(already stored)" in again[1]
    assert await inbound_count() == 1
    assert await TimelineEntry.filter(element_type="deal", element_id=deal.id, kind="message").count() == 1


async def test_mail_from_an_excepted_address_is_answered_but_not_stored(db, smtp, receiver):
    deal = await waiting_deal(await offer_stage())
    await offer_at_peer(deal, smtp)
    entry = await ExceptionEntry.create(kind="email", value="anna@acme.example")

    code, answer = await send(receiver, reply_mail(sender="ANNA@acme.example"))

    assert (code, answer) == (250, "2.0.0 ignored: the sender is on the exception list")
    assert await inbound_count() == 0
    await entry.refresh_from_db()
    assert entry.blocked_count == 1 and entry.last_blocked_at is not None
    assert (await wait_run(deal)).status == "waiting"


async def test_an_unknown_sender_is_refused_with_the_reason_and_nothing_is_stored(db, receiver):
    code, answer = await send(receiver, reply_mail(sender="stranger@elsewhere.example"),
                              mail_from="stranger@elsewhere.example")

    assert code == 550
    assert answer == ("5.1.0 stranger@elsewhere.example is not the address of a contact or company with an open lead "
                      "or deal, nor a reply to a message we sent")
    assert await inbound_count() == 0


@pytest.mark.parametrize("header", ["Anna", "Anna <>", '"Anna" <@>'])
async def test_a_from_header_without_an_address_is_refused_saying_so(db, receiver, header):
    raw = b"From: " + header.encode() + b"\r\nSubject: Hello\r\n\r\nHi there\r\n"

    code, answer = await send(receiver, raw)

    assert code == 550 and answer == f"5.1.7 the From header has no email address: {header!r}"
    assert await inbound_count() == 0


async def test_a_message_over_the_size_limit_is_refused_with_552(db, receiver, monkeypatch):
    monkeypatch.setenv("PIPEWRIGHT_MAILIN_MAX_BYTES", "20000")
    config.reload()
    small = await mailin.start("127.0.0.1:0")
    try:
        code, answer = await send(small, reply_mail(text="a line of the long mail\n" * 1500))
    finally:
        await small.stop()

    assert code == 552, answer
    assert await inbound_count() == 0


async def test_a_bounce_marks_the_message_and_suppresses_the_address_so_the_next_send_is_skipped(db, smtp, receiver):
    stages = await offer_stage()
    deal = await waiting_deal(stages)
    offer, _ = await offer_at_peer(deal, smtp)

    code, answer = await send(receiver, postfix_bounce(offer.uid), mail_from="")  # bounces come from <>

    assert code == 250 and answer == f"2.0.0 report recorded: message {offer.id} bounced, anna@acme.example suppressed"
    await offer.refresh_from_db()
    assert offer.status == "bounced"
    assert offer.reason == ("bounced (5.1.1): 550 5.1.1 <anna@acme.example>: Recipient address rejected: "
                            "User unknown in virtual mailbox table")
    assert offer.delivered_at is None
    suppression = await Suppression.get(address="anna@acme.example")
    assert (suppression.reason, suppression.message_id) == ("hard_bounce", offer.id)
    history = [e.text for e in await TimelineEntry.filter(element_type="deal", element_id=deal.id, kind="history")]
    assert ("Email “Your offer” to anna@acme.example bounced: 550 5.1.1 <anna@acme.example>: Recipient address "
            "rejected: User unknown in virtual mailbox table") in history
    assert (await wait_run(deal)).status == "waiting"  # a bounce is no customer activity
    assert await inbound_count() == 0

    # Another deal for the same address: its Send email rule is skipped with the reason, nothing is sent.
    smtp.clear()
    other = await waiting_deal(stages, title="Second site")
    [send_run] = [r for r in await wait_for_runs("deal", other.id, 1) if r.action_type == "send_email"]
    assert send_run.status == "skipped"
    assert send_run.reason == "skipped: not sent: anna@acme.example is on the suppression list (it hard-bounced)"
    skipped = await Message.get(element_type="deal", element_id=other.id)
    assert skipped.status == "suppressed" and skipped.attempts == 0
    assert smtp.messages() == []


async def test_a_second_report_of_the_same_bounce_changes_nothing(db, smtp, receiver):
    deal = await waiting_deal(await offer_stage())
    offer, _ = await offer_at_peer(deal, smtp)

    await send(receiver, postfix_bounce(offer.uid), mail_from="")
    code, answer = await send(receiver, postfix_bounce(offer.uid), mail_from="")

    assert code == 250 and f"message {offer.id} nothing" in answer
    assert await TimelineEntry.filter(element_type="deal", element_id=deal.id, text__contains="bounced").count() == 1


async def test_a_delay_warning_only_notes_the_reason(db, smtp, receiver):
    deal = await waiting_deal(await offer_stage())
    offer, _ = await offer_at_peer(deal, smtp)

    code, _ = await send(receiver, postfix_bounce(offer.uid, status="4.4.7", action="delayed"), mail_from="")

    assert code == 250
    await offer.refresh_from_db()
    assert offer.status == "sent" and offer.reason.startswith("delayed (4.4.7): 550 5.1.1")
    assert not await Suppression.exists(address="anna@acme.example")


async def test_a_complaint_suppresses_the_address(db, smtp, receiver):
    deal = await waiting_deal(await offer_stage())
    offer, _ = await offer_at_peer(deal, smtp)

    code, answer = await send(receiver, arf_complaint(offer.uid), mail_from="staff@fbl.mailbox.example")

    assert code == 250 and answer == f"2.0.0 report recorded: message {offer.id} complaint, anna@acme.example suppressed"
    suppression = await Suppression.get(address="anna@acme.example")
    assert (suppression.reason, suppression.message_id) == ("complaint", offer.id)
    await offer.refresh_from_db()
    assert offer.status == "sent"  # it was delivered: the recipient did not want it
    assert (await wait_run(deal)).status == "waiting"


async def test_a_report_about_no_message_of_ours_is_accepted_and_ignored(db, receiver):
    code, answer = await send(receiver, postfix_bounce(), mail_from="")

    assert (code, answer) == (250, "2.0.0 ignored: a delivery report about no message sent from here")
    assert not await Suppression.exists(address="anna@acme.example")


async def test_an_automatic_reply_is_not_the_customers_answer(db, smtp, receiver):
    deal = await waiting_deal(await offer_stage())
    _, received = await offer_at_peer(deal, smtp)
    raw = reply_mail(in_reply_to=received.message["Message-ID"], subject="Out of office").replace(
        b"Subject:", b"Auto-Submitted: auto-replied\r\nSubject:")

    code, answer = await send(receiver, raw)

    assert (code, answer) == (250, "2.0.0 ignored: an automatic reply (Auto-Submitted: auto-replied), not the "
                                   "customer's")
    assert (await wait_run(deal)).status == "waiting"
    assert await inbound_count() == 0


async def test_a_notification_from_the_null_sender_is_not_the_customers_answer(db, smtp, receiver):
    deal = await waiting_deal(await offer_stage())
    _, received = await offer_at_peer(deal, smtp)
    # A bounce in plain text (not a DSN), threaded to our offer, as some servers still send them.
    raw = reply_mail(in_reply_to=received.message["Message-ID"], sender="MAILER-DAEMON@acme.example",
                     subject="Delivery failure", text="Your message could not be delivered.")

    code, answer = await send(receiver, raw, mail_from="")

    assert (code, answer) == (250, "2.0.0 ignored: an automatic notification (from the null sender <>), not the "
                                   "customer's")
    assert (await wait_run(deal)).status == "waiting"
    assert await inbound_count() == 0


async def test_a_database_error_asks_the_sending_server_to_retry(db, smtp, receiver, monkeypatch):
    from tortoise.exceptions import OperationalError

    from server.services import inbound

    async def unavailable(*args, **kwargs):
        raise OperationalError("database is locked")

    deal = await waiting_deal(await offer_stage())
    await offer_at_peer(deal, smtp)
    monkeypatch.setattr(inbound, "record", unavailable)

    code, answer = await send(receiver, reply_mail())

    assert code == 451 and answer == "4.3.0 the mail could not be stored now (database error); try again later"


async def test_connections_past_the_limit_are_told_to_come_back(db):
    small = await mailin.start("127.0.0.1:0", max_sessions=1)
    host, port = small.address.rsplit(":", 1)
    try:
        first = await asyncio.to_thread(smtplib.SMTP, host, int(port), timeout=10)
        try:
            with pytest.raises(smtplib.SMTPConnectError) as refused:
                await asyncio.to_thread(smtplib.SMTP, host, int(port), timeout=10)
        finally:
            await asyncio.to_thread(first.quit)
    finally:
        await small.stop()

    assert refused.value.smtp_code == 421


async def test_pipewright_serve_receives_mail_on_its_own_loop_when_mailin_is_set(tmp_path, sqlite_template, monkeypatch):
    port, smtp_port = free_port(), free_port()
    log = tmp_path / "serve.log"
    shutil.copyfile(sqlite_template, tmp_path / "serve.db")
    monkeypatch.setenv("PIPEWRIGHT_MAILIN", f"127.0.0.1:{smtp_port}")
    process = serve(f"sqlite://{tmp_path / 'serve.db'}", port, log)
    try:
        await wait_ready(port, process)
        assert f"pipewright: inbound mail (SMTP) on 127.0.0.1:{smtp_port}" in log.read_text()

        code, answer = await asyncio.to_thread(smtp_send, f"127.0.0.1:{smtp_port}", reply_mail(
            sender="stranger@elsewhere.example"), mail_from="stranger@elsewhere.example")
    finally:
        stop(process)

    assert code == 550 and answer.startswith("5.1.0 stranger@elsewhere.example is not the address of a contact")


async def test_pipewright_mailin_serves_the_receiver_alone(tmp_path, sqlite_template):
    smtp_port = free_port()
    log = tmp_path / "mailin.log"
    shutil.copyfile(sqlite_template, tmp_path / "mailin.db")
    env = {**os.environ, "PIPEWRIGHT_DATABASE_URL": f"sqlite://{tmp_path / 'mailin.db'}"}
    env.pop("PIPEWRIGHT_BROKER_URL", None)
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "server.cli", "mailin", "--listen", f"127.0.0.1:{smtp_port}"],
                                   env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        await wait_until(lambda: _value(f"inbound mail (SMTP) on 127.0.0.1:{smtp_port}" in log.read_text()
                                        or process.poll() is not None), what="pipewright mailin listening")
        assert process.poll() is None, log.read_text()

        code, answer = await asyncio.to_thread(smtp_send, f"127.0.0.1:{smtp_port}", reply_mail(
            sender="stranger@elsewhere.example"), mail_from="stranger@elsewhere.example")
    finally:
        stop(process)

    assert code == 550 and answer.startswith("5.1.0 stranger@elsewhere.example is not the address of a contact")
    assert process.returncode == 0


async def test_an_idle_client_is_disconnected_after_the_session_timeout(db):
    small = await mailin.start("127.0.0.1:0", timeout_s=0.5)
    host, port = small.address.rsplit(":", 1)
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
        greeting = await reader.readline()
        closed = await asyncio.wait_for(reader.read(), timeout=10)  # the client says nothing: EOF from the server
        writer.close()
    finally:
        await small.stop()

    assert greeting.startswith(b"220 ") and closed == b""
