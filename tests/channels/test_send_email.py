"""Send email through the outbox: one message at a real SMTP peer, retried while it is down, failed with the
server's answer when it refuses, kept in the capture mailbox when no SMTP server is configured."""

import asyncio
from datetime import timedelta

import pytest

from server.actor import SYSTEM
from server.channels import delivery
from server.models import Contact, DealContact, DeliveryAttempt, Message, RuleRun
from server.rules import engine, queue
from server.services import elements as element_service
from tests.support import add_rule, make_pipeline, make_user, wait_for_runs, wait_until
from tests.support.clients import work

pytestmark = pytest.mark.production_backend


async def deal_with_client(stage, *, email: str = "anna@acme.example", title: str = "LED retrofit"):
    owner = await make_user("Maria")
    contact = await Contact.create(name="Anna Berg", emails=work(email))
    deal = await element_service.create_element("deal", {"title": title, "responsible": owner.id},
                                                stage_id=stage.id, actor=SYSTEM)
    await DealContact.create(deal_id=deal.id, contact_id=contact.id, position=0)
    return deal


async def message_of(deal, status: str, *, timeout_s: float = 15) -> Message:
    async def found():
        return await Message.filter(element_type="deal", element_id=deal.id, status=status).first()

    return await wait_until(found, timeout_s=timeout_s, what=f"a {status} message")


async def test_moving_a_deal_sends_one_rendered_email_to_its_contact(db, smtp):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "send_email", {
        "subject": "Your offer: {{deal.title}}", "html": "<p>Hello {{deal.contact.name}},</p><p>the offer.</p>"})
    deal = await deal_with_client(stages["new"])
    await element_service.move_element("deal", deal.id, stages["offer"].id, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)
    message = await message_of(deal, "sent")

    assert run.status == "succeeded" and run.outputs == {"message_id": message.id, "to": "anna@acme.example"}
    await wait_until(lambda: _async(len(smtp.messages()) >= 1), what="the email at the peer")
    [received] = smtp.messages()
    assert received.recipients == ["anna@acme.example"]
    assert received.message["Subject"] == "Your offer: LED retrofit"
    assert received.message["Message-ID"] == f"<{message.uid}@localhost>"
    assert "Hello Anna Berg," in received.body("html")
    assert "Hello Anna Berg," in received.body("plain")  # the text alternative, made from the HTML
    assert message.transport == "smtp" and message.answer.startswith("250")


async def test_a_refusing_server_fails_the_message_with_its_answer(db, smtp):
    smtp.refuse = "550 5.1.1 mailbox unavailable"
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "send_email", {"subject": "Hi", "text": "Hello"})
    deal = await deal_with_client(stages["new"])

    message = await message_of(deal, "failed")

    assert message.attempts == 1
    assert message.reason == "refused: 550 5.1.1 mailbox unavailable"
    assert smtp.messages() == []


async def test_while_the_server_is_down_the_message_is_retried_and_arrives_once(db, smtp):
    smtp.stop()
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "send_email", {"subject": "Hi", "text": "Hello"})
    deal = await deal_with_client(stages["new"])

    async def retried():
        return await DeliveryAttempt.filter(message__element_id=deal.id, outcome="retry").count() >= 2

    await wait_until(retried, what="two failed attempts")
    smtp.start()
    message = await message_of(deal, "sent", timeout_s=20)

    assert message.attempts >= 3
    assert len(smtp.messages()) == 1
    assert "ConnectionRefused" in (await DeliveryAttempt.filter(message_id=message.id).first()).answer \
        or "connect" in (await DeliveryAttempt.filter(message_id=message.id).first()).answer.lower()


async def test_a_deal_without_a_client_email_fails_the_run_saying_so(db, smtp):
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "send_email", {"subject": "Hi", "text": "Hello"})
    deal = await element_service.create_element("deal", {"title": "No client"}, stage_id=stages["new"].id, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)

    assert run.status == "failed"
    assert run.error == "the deal has no contact or company with a email address"
    assert await Message.all().count() == 0


async def test_a_run_and_its_message_delivered_three_times_send_one_email(db, smtp, clock_control, worker_paused):
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "send_email", {"subject": "Once", "text": "Hello"},
                   timing={"kind": "after", "amount": 1, "unit": "days"})
    deal = await deal_with_client(stages["new"])
    [run] = await RuleRun.filter(element_id=deal.id)
    clock_control.advance(timedelta(days=1, minutes=1))
    assert await queue.claim_due() == [run.id]

    outcomes = await asyncio.gather(engine.execute(run.id), engine.execute(run.id), engine.execute(run.id))
    [message] = await Message.filter(element_id=deal.id)
    deliveries = await asyncio.gather(*(delivery.deliver(message.id) for _ in range(3)))

    assert sorted(outcomes, key=str) == [None, None, "succeeded"]
    assert sorted(deliveries, key=str) == [None, None, "sent"]
    assert [m.recipients for m in smtp.messages()] == [["anna@acme.example"]]
    assert await DeliveryAttempt.filter(message_id=message.id).count() == 1


async def _async(value):
    return value
