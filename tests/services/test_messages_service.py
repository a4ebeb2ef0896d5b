"""The messages service every face calls: an element's message log, resending, the capture mailbox, the exception
and suppression lists, mail senders and channel settings, each with who may read and who may change it."""

import pytest

from server import config
from server.actor import SYSTEM, Actor
from server.errors import Forbidden, NotFound, ValidationFailed
from server.models import ExceptionEntry, MailSender, Message, Suppression
from server.services import elements as element_service
from server.services import messages
from tests.channels.test_send_email import deal_with_client, message_of
from tests.support import add_rule, make_pipeline, make_user, wait_until

# Every test but the capture mailbox's also runs on PostgreSQL with a separate worker (started with the SMTP peer
# configured, so it never uses the capture mailbox).
both_backends = pytest.mark.production_backend


def actor(user) -> Actor:
    return Actor(user.id, user.role)


def refused(exc: pytest.ExceptionInfo[ValidationFailed]) -> dict[str, str]:
    return {e.field: e.message for e in exc.value.errors}


async def outbound(deal_id: int | None, subject: str, **values) -> Message:
    return await Message.create(uid=f"u{subject}{deal_id}".replace(" ", "")[:32], direction="outbound",
                                channel="email", element_type="deal" if deal_id else None, element_id=deal_id,
                                recipient="anna@acme.example", sender="sales@pipewright.example", subject=subject,
                                **values)


@both_backends
async def test_an_employee_reads_the_messages_of_their_own_deals_newest_first(db):
    _, stages = await make_pipeline()
    emma, erik, mona = await make_user("Emma"), await make_user("Erik"), await make_user("Mona", role="manager")
    mine = await element_service.create_element("deal", {"title": "Mine", "responsible": emma.id},
                                                stage_id=stages["new"].id, actor=SYSTEM)
    theirs = await element_service.create_element("deal", {"title": "Theirs", "responsible": erik.id},
                                                  stage_id=stages["new"].id, actor=SYSTEM)
    first, second, third = [await outbound(mine.id, s) for s in ("one", "two", "three")]
    other = await outbound(theirs.id, "other")
    loose = await outbound(None, "no element")

    page = await messages.element_messages("deal", mine.id, actor=actor(emma), first=2)
    assert [m.subject for m in page.items] == ["three", "two"] and page.has_next and page.total == 3
    rest = await messages.element_messages("deal", mine.id, actor=actor(emma), first=2, after=second.id)
    assert [m.id for m in rest.items] == [first.id] and not rest.has_next

    with pytest.raises(Forbidden):
        await messages.element_messages("deal", theirs.id, actor=actor(emma))
    with pytest.raises(Forbidden):
        await messages.get_message(other.id, actor=actor(emma))
    with pytest.raises(Forbidden):  # a message of no element is for managers and admins
        await messages.get_message(loose.id, actor=actor(emma))
    assert (await messages.get_message(loose.id, actor=actor(mona))).message.subject == "no element"
    assert (await messages.get_message(third.id, actor=actor(emma))).message.id == third.id
    with pytest.raises(NotFound):
        await messages.get_message(10_000, actor=SYSTEM)


@both_backends
async def test_resending_a_failed_email_delivers_it_once_and_records_who_did_it(db, smtp):
    smtp.refuse = "550 5.1.1 mailbox unavailable"
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "send_email", {"subject": "Your offer", "text": "Hello"})
    deal = await deal_with_client(stages["new"])
    failed = await message_of(deal, "failed")
    owner = await make_user("Olga", role="admin")
    smtp.refuse = None

    queued = await messages.resend(failed.id, actor=actor(owner))

    assert queued.status == "queued" and queued.reason.startswith("sent again by Olga at ")
    sent = await message_of(deal, "sent")
    assert sent.id == failed.id and sent.attempts == 2
    await wait_until(lambda: _now(len(smtp.messages()) == 1), what="the resent email at the peer")
    assert [r.message["Subject"] for r in smtp.messages()] == ["Your offer"]
    [resent] = sent.meta["resends"]
    assert resent["by"] == owner.id and resent["status"] == "failed"
    assert resent["reason"] == "refused: 550 5.1.1 mailbox unavailable"
    detail = await messages.get_message(sent.id, actor=SYSTEM)
    assert [(a.number, a.outcome) for a in detail.attempts] == [(1, "failed"), (2, "sent")]

    with pytest.raises(ValidationFailed) as exc:
        await messages.resend(sent.id, actor=actor(owner))
    assert refused(exc) == {"id": "only failed messages can be sent again; this one is sent"}
    assert len(smtp.messages()) == 1


@both_backends
async def test_a_suppressed_email_is_resent_only_once_its_address_is_off_the_list(db, smtp):
    _, stages = await make_pipeline()
    entry = await Suppression.create(address="anna@acme.example", reason="hard_bounce")
    await add_rule(stages["new"], "send_email", {"subject": "Hi", "text": "Hello"})
    deal = await deal_with_client(stages["new"])
    held = await message_of(deal, "suppressed")

    with pytest.raises(ValidationFailed) as exc:
        await messages.resend(held.id, actor=SYSTEM)
    assert refused(exc) == {"id": "anna@acme.example is still on the suppression list: remove it there first"}

    await messages.remove_suppression(entry.id, actor=SYSTEM)
    await messages.resend(held.id, actor=SYSTEM)

    sent = await message_of(deal, "sent")
    assert sent.meta["resends"][0]["reason"].startswith("not sent: anna@acme.example is on the suppression list")
    await wait_until(lambda: _now(len(smtp.messages()) == 1), what="the email at the peer")


@both_backends
async def test_resend_is_refused_to_whoever_may_not_see_the_deal(db, smtp):
    _, stages = await make_pipeline()
    emma, erik = await make_user("Emma"), await make_user("Erik")
    deal = await element_service.create_element("deal", {"title": "Erik's", "responsible": erik.id},
                                                stage_id=stages["new"].id, actor=SYSTEM)
    failed = await outbound(deal.id, "failed", status="failed", reason="refused: 550")

    with pytest.raises(Forbidden):
        await messages.resend(failed.id, actor=actor(emma))
    assert (await Message.get(id=failed.id)).status == "failed"
    assert (await messages.resend(failed.id, actor=actor(erik))).status == "queued"


async def test_the_capture_mailbox_holds_what_was_sent_without_an_smtp_server(db, smtp, monkeypatch):
    monkeypatch.setenv("PIPEWRIGHT_SMTP_URL", "")
    config.reload()
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "send_email", {"subject": "Hi {{deal.title}}", "html": "<p>Hello</p>"})
    deal = await deal_with_client(stages["new"], title="Acme")
    captured = await message_of(deal, "sent")
    await outbound(deal.id, "went by smtp", transport="smtp", status="sent")
    employee, manager = await make_user("Emma"), await make_user("Mona", role="manager")

    mailbox = await messages.capture_mailbox(actor=actor(manager))

    assert [(m.id, m.subject, m.html) for m in mailbox.items] == [(captured.id, "Hi Acme", "<p>Hello</p>")]
    with pytest.raises(Forbidden):
        await messages.capture_mailbox(actor=actor(employee))
    assert smtp.messages() == []


@both_backends
async def test_exceptions_take_an_email_or_an_international_number_once(db):
    admin, manager, employee = (await make_user("Ada", role="admin"), await make_user("Mona", role="manager"),
                                await make_user("Emma"))

    mail = await messages.add_exception("  Anna@ACME.example ", note="competitor", actor=actor(admin))
    phone = await messages.add_exception("+49 30 1234567", actor=actor(admin))

    assert (mail.kind, mail.value, mail.note) == ("email", "anna@acme.example", "competitor")
    assert mail.created_by_id == admin.id
    assert (phone.kind, phone.value) == ("phone", "+49301234567")
    for bad, message in (("anna@", "'anna@' is not an email address"),
                         ("030 1234567", "'030 1234567' is neither an email address nor a phone number in "
                                         "international format (e.g. +49 30 1234567)"),
                         ("+1", "'+1' is not a phone number (international format, e.g. +49 30 1234567)"),
                         ("", "give an email address or a phone number")):
        with pytest.raises(ValidationFailed) as exc:
            await messages.add_exception(bad, actor=actor(admin))
        assert refused(exc) == {"value": message}
    with pytest.raises(ValidationFailed) as exc:
        await messages.add_exception("anna@acme.EXAMPLE", actor=actor(admin))
    assert refused(exc) == {"value": "anna@acme.example is on the exception list already"}
    with pytest.raises(Forbidden):
        await messages.add_exception("bob@acme.example", actor=actor(manager))
    assert await ExceptionEntry.all().count() == 2

    listed = await messages.exceptions(actor=actor(manager))
    assert [e.value for e in listed.items] == ["+49301234567", "anna@acme.example"]
    with pytest.raises(Forbidden):
        await messages.exceptions(actor=actor(employee))
    await messages.remove_exception(mail.id, actor=actor(admin))
    assert [e.value for e in (await messages.exceptions(actor=SYSTEM)).items] == ["+49301234567"]
    with pytest.raises(NotFound):
        await messages.remove_exception(mail.id, actor=actor(admin))


@both_backends
async def test_there_is_exactly_one_default_sender(db):
    admin = actor(await make_user("Ada", role="admin"))
    sales = await messages.create_sender(messages.SenderInput(name="Sales", address="Sales@Pipewright.example"),
                                         actor=admin)
    assert sales.is_default and sales.address == "sales@pipewright.example"  # the first is the default
    support = await messages.create_sender(
        messages.SenderInput(name="Support", address="support@pipewright.example", reply_to="help@pipewright.example",
                             is_default=True), actor=admin)

    async def defaults() -> list[str]:
        return [s.name for s in await MailSender.filter(is_default=True)]

    assert await defaults() == ["Support"]
    await messages.update_sender(sales.id, messages.SenderInput(is_default=True), actor=admin)
    assert await defaults() == ["Sales"]
    assert [s.name for s in await messages.mail_senders(actor=SYSTEM)] == ["Sales", "Support"]

    with pytest.raises(ValidationFailed) as exc:
        await messages.update_sender(sales.id, messages.SenderInput(is_default=False), actor=admin)
    assert refused(exc) == {"is_default": "make another sender the default instead"}
    with pytest.raises(ValidationFailed) as exc:
        await messages.create_sender(messages.SenderInput(name="", address="not-an-address", reply_to="x@"),
                                     actor=admin)
    assert refused(exc) == {"name": "give the sender a name (shown as the From name)",
                            "address": "'not-an-address' is not an email address",
                            "reply_to": "'x@' is not an email address"}
    with pytest.raises(ValidationFailed) as exc:
        await messages.update_sender(support.id, messages.SenderInput(address="sales@pipewright.example"), actor=admin)
    assert refused(exc) == {"address": "sales@pipewright.example is a sender already"}
    with pytest.raises(Forbidden):
        await messages.create_sender(messages.SenderInput(name="X", address="x@pipewright.example"),
                                     actor=actor(await make_user("Mona", role="manager")))

    await messages.delete_sender(sales.id, actor=admin)
    assert await defaults() == ["Support"]  # the default passes on


@both_backends
async def test_channel_settings_show_servers_and_webhook_secrets_to_admins_without_passwords(db, monkeypatch):
    monkeypatch.setenv("PIPEWRIGHT_SMTP_URL", "smtp://mailer:s3cret-pass@mail.example:587")
    monkeypatch.setenv("PIPEWRIGHT_SMS_URL", "https://gateway.example/v1/send?key=abc")
    monkeypatch.setenv("PIPEWRIGHT_SMS_AUTH", "Bearer sms-token")
    monkeypatch.setenv("PIPEWRIGHT_DKIM_KEY_FILE", "/etc/pipewright/dkim.pem")
    monkeypatch.setenv("PIPEWRIGHT_MAIL_FROM", "crm@acme.example")
    monkeypatch.setenv("PIPEWRIGHT_MAILIN", "0.0.0.0:2525")
    config.reload()
    admin = actor(await make_user("Ada", role="admin"))

    shown = await messages.channel_settings(actor=admin)

    assert str(shown.smtp) == "smtp://mail.example:587" and str(shown.sms_gateway) == "https://gateway.example:443"
    assert shown.sms_auth_configured and (shown.dkim_selector, shown.dkim_domain) == ("pipewright", "acme.example")
    assert shown.mail_receiver == "0.0.0.0:2525"
    assert not any(secret in repr(shown) for secret in ("s3cret", "mailer", "sms-token", "key=abc"))
    assert [h.channel for h in shown.webhooks] == ["calls", "sms", "chat", "forms", "sms_status", "payments"]
    calls = shown.webhooks[0]
    rotated = await messages.rotate_webhook("calls", actor=admin)
    assert rotated.url != calls.url and rotated.signing_secret != calls.signing_secret
    with pytest.raises(Forbidden):
        await messages.channel_settings(actor=actor(await make_user("Mona", role="manager")))

    monkeypatch.setenv("PIPEWRIGHT_SMTP_URL", "")
    monkeypatch.setenv("PIPEWRIGHT_DKIM_KEY_FILE", "")
    config.reload()
    plain = await messages.channel_settings(actor=admin)
    assert plain.smtp is None and plain.dkim_selector is None


@both_backends
async def test_suppressions_are_listed_to_staff_and_removed_by_admins(db):
    admin, manager = actor(await make_user("Ada", role="admin")), actor(await make_user("Mona", role="manager"))
    bounced = await Suppression.create(address="gone@acme.example", reason="hard_bounce", detail="550 no such user")
    await messages.add_suppression("Quiet@Acme.example", actor=admin)

    listed = await messages.suppressions(actor=manager)
    assert [(s.address, s.reason) for s in listed.items] == [("quiet@acme.example", "manual"),
                                                             ("gone@acme.example", "hard_bounce")]
    with pytest.raises(Forbidden):
        await messages.remove_suppression(bounced.id, actor=manager)
    await messages.remove_suppression(bounced.id, actor=admin)
    assert [s.address for s in await Suppression.all()] == ["quiet@acme.example"]


async def _now(value):
    return value
