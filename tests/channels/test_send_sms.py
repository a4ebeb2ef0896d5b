"""Send SMS through the outbox to an HTTP/JSON gateway, and the gateway's signed delivery receipts.

The SMS provider is a boundary we do not own (a provider's HTTP API), so the `sms` fixture is a stand-in for it
(tests/support/peers.py): a real HTTP server on a loopback port that records each request and answers like a
generic JSON gateway. The worker, the database, the outbox and the webhook endpoint are the real ones.
"""

import json

import pytest

from server.actor import SYSTEM
from server.channels import delivery, outbox
from server.errors import ValidationFailed
from server.models import Contact, DealContact, DeliveryAttempt, Message, Rule, User
from server.rules.actions.send_sms import ACTION as SEND_SMS
from server.services import elements as element_service
from server.services import hooks
from tests.support import add_rule, make_pipeline, make_user, wait_for_runs, wait_until

pytestmark = pytest.mark.production_backend


def mobile(*numbers: str) -> list[dict[str, str]]:
    """Phone numbers as clients store them: typed entries."""
    return [{"value": number, "type": "mobile"} for number in numbers]


async def deal_with_client(stage, *, phones: list, title: str = "LED retrofit"):
    owner = await User.get_or_none(name="Maria") or await make_user("Maria")
    contact = await Contact.create(name="Anna Berg", emails=[{"value": "anna@acme.example", "type": "work"}],
                                   phones=phones)
    deal = await element_service.create_element("deal", {"title": title, "responsible": owner.id},
                                                stage_id=stage.id, actor=SYSTEM)
    await DealContact.create(deal_id=deal.id, contact_id=contact.id, position=0)
    return deal


async def message_of(deal, status: str, *, timeout_s: float = 15) -> Message:
    async def found():
        return await Message.filter(element_type="deal", element_id=deal.id, status=status).first()

    return await wait_until(found, timeout_s=timeout_s, what=f"a {status} SMS")


async def sent_sms(stages, *, phones: list | None = None) -> Message:
    await add_rule(stages["new"], "send_sms", {"text": "Hello {{deal.contact.name}}"})
    deal = await deal_with_client(stages["new"], phones=phones or mobile("+491701234567"))
    return await message_of(deal, "sent")


async def post_receipt(client, body: dict, *, secret: str | None = None):
    hook = await hooks.hook("sms_status")
    raw = json.dumps(body).encode()
    signed = hooks.signature(secret or hook.signing_secret, raw)
    return await client.post(f"/hooks/sms_status/{hook.token}", content=raw,
                             headers={"Content-Type": "application/json", hooks.SIGNATURE_HEADER: signed})


async def requests_for_this_test(sms) -> list:
    """The stand-in's requests for messages of this test's database. The stand-in lives for the session, and on
    the production backend the worker may still be finishing an earlier test's send when this one starts."""
    return [r for r in list(sms.requests) if await Message.exists(uid=r.body.get("reference", ""))]


def header(request, name: str) -> str | None:
    return {k.lower(): v for k, v in request.headers.items()}.get(name.lower())


async def test_moving_a_deal_puts_one_rendered_sms_at_the_gateway(db, sms):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "send_sms", {
        "text": "Hello {{deal.contact.name}}, your offer for {{deal.title}} is ready.", "to_type": "mobile"})
    deal = await deal_with_client(stages["new"], phones=[
        {"value": "+49301234567", "type": "work"}, {"value": "+491701234567", "type": "mobile"}])
    await element_service.move_element("deal", deal.id, stages["offer"].id, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)
    message = await message_of(deal, "sent")

    assert run.status == "succeeded" and run.outputs == {"message_id": message.id, "to": "+491701234567"}
    [request] = await requests_for_this_test(sms)
    assert request.body == {"to": "+491701234567", "from": "pipewright", "reference": message.uid,
                            "text": "Hello Anna Berg, your offer for LED retrofit is ready."}
    assert header(request, "Idempotency-Key") == message.uid
    assert message.transport == "http" and message.answer == f'200 {{"id": "{message.provider_id}"}}'
    assert message.provider_id.startswith("gw-")  # the gateway's id, for its receipts


async def test_a_national_number_is_sent_in_e164(db, sms):
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "send_sms", {"to": "030 1234567", "text": "Hello"})
    given = await deal_with_client(stages["new"], phones=[])
    await add_rule(stages["offer"], "send_sms", {"text": "Hello"})
    stored = await deal_with_client(stages["offer"], phones=[{"value": "030 7654321", "type": "work"}])  # imported

    assert (await message_of(given, "sent")).recipient == "+49301234567"
    assert (await message_of(stored, "sent")).recipient == "+49307654321"
    assert sorted(r.body["to"] for r in await requests_for_this_test(sms)) == ["+49301234567", "+49307654321"]


async def test_a_gateway_5xx_is_retried_and_then_arrives_once(db, sms):
    sms.status, sms.answer = 503, '{"error": "try later"}'
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "send_sms", {"text": "Hello"})
    deal = await deal_with_client(stages["new"], phones=mobile("+491701234567"))

    async def retried():
        return await DeliveryAttempt.filter(message__element_id=deal.id, outcome="retry").count() >= 2

    await wait_until(retried, what="two refused attempts")
    sms.status, sms.answer = 200, ""
    message = await message_of(deal, "sent", timeout_s=20)

    outcomes = await DeliveryAttempt.filter(message_id=message.id).order_by("number").values_list("outcome", flat=True)
    assert outcomes[-1] == "sent" and set(outcomes[:-1]) == {"retry"}  # accepted once, by the last attempt
    requests = await requests_for_this_test(sms)
    assert len(requests) == message.attempts == len(outcomes)
    assert {header(r, "Idempotency-Key") for r in requests} == {message.uid}  # every try is the same SMS
    first = await DeliveryAttempt.get(message_id=message.id, number=1)
    assert first.answer == '503 {"error": "try later"}'


async def test_a_gateway_4xx_fails_the_message_with_its_answer(db, sms):
    sms.status, sms.answer = 400, '{"error": "number is blocked"}'
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "send_sms", {"text": "Hello"})
    deal = await deal_with_client(stages["new"], phones=mobile("+491701234567"))

    message = await message_of(deal, "failed")

    assert message.attempts == 1 and len(await requests_for_this_test(sms)) == 1
    assert message.reason == 'refused: 400 {"error": "number is blocked"}'


async def test_a_gateway_redirect_is_no_acceptance_and_fails_the_message(db, sms):
    sms.status, sms.answer = 302, '{"moved": "elsewhere"}'
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "send_sms", {"text": "Hello"})
    deal = await deal_with_client(stages["new"], phones=mobile("+491701234567"))

    message = await message_of(deal, "failed")

    assert message.reason == 'refused: 302 {"moved": "elsewhere"}' and message.provider_id is None


async def test_a_contact_without_a_phone_fails_the_run_saying_so(db, sms):
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "send_sms", {"text": "Hello"})
    deal = await deal_with_client(stages["new"], phones=[])

    [run] = await wait_for_runs("deal", deal.id, 1)

    assert run.status == "failed"
    assert run.error == "the deal has no contact or company with a phone number"
    assert await Message.all().count() == 0


async def test_a_client_number_that_is_no_phone_number_fails_the_run_naming_it(db, sms):
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "send_sms", {"text": "Hello"})
    deal = await deal_with_client(stages["new"], phones=[{"value": "12", "type": "work"}])

    [run] = await wait_for_runs("deal", deal.id, 1)

    assert run.status == "failed"
    assert run.error == ("the contact Anna Berg's phone: '12' is not a valid phone number "
                         "(national numbers are read as DE)")
    assert await Message.all().count() == 0


async def test_a_signed_receipt_marks_the_sms_delivered_and_a_repeat_changes_nothing(db, sms, client):
    _, stages = await make_pipeline()
    message = await sent_sms(stages)

    answer = await post_receipt(client, {"id": message.provider_id, "status": "delivered"})
    delivered = await Message.get(id=message.id)
    repeated = await post_receipt(client, {"id": message.provider_id, "status": "delivered"})
    contradicting = await post_receipt(client, {"reference": message.uid, "status": "failed", "error": "late"})

    assert answer.status_code == 200
    assert answer.json() == {"message": message.uid, "status": "delivered", "receipt": "applied"}
    assert delivered.status == "delivered" and delivered.delivered_at is not None
    assert repeated.json()["receipt"] == contradicting.json()["receipt"] == "unchanged"
    now = await Message.get(id=message.id)
    assert (now.status, now.delivered_at, now.reason) == ("delivered", delivered.delivered_at, delivered.reason)


async def test_a_failure_receipt_bounces_the_sms_with_the_gateways_error(db, sms, client):
    _, stages = await make_pipeline()
    message = await sent_sms(stages)

    answer = await post_receipt(client, {"reference": message.uid, "status": "undelivered",
                                         "error": "absent subscriber"})

    assert answer.status_code == 200 and answer.json()["status"] == "bounced"
    bounced = await Message.get(id=message.id)
    assert bounced.status == "bounced" and bounced.delivered_at is None
    assert bounced.reason == "the gateway reported it undelivered: absent subscriber"


async def test_a_receipt_with_a_wrong_signature_is_refused_and_changes_nothing(db, sms, client):
    _, stages = await make_pipeline()
    message = await sent_sms(stages)

    answer = await post_receipt(client, {"id": message.provider_id, "status": "delivered"}, secret="not the secret")

    assert answer.status_code == 401
    assert (await Message.get(id=message.id)).status == "sent"


async def test_a_receipt_with_an_unknown_status_or_message_is_refused_naming_the_field(db, sms, client):
    _, stages = await make_pipeline()
    message = await sent_sms(stages)

    unknown_status = await post_receipt(client, {"id": message.provider_id, "status": "read"})
    unknown_id = await post_receipt(client, {"id": "gw-999", "status": "delivered"})
    unnamed = await post_receipt(client, {"status": "delivered"})

    assert unknown_status.status_code == unknown_id.status_code == unnamed.status_code == 422
    assert [f["field"] for f in unknown_status.json()["fields"]] == ["status"]
    assert unknown_id.json()["fields"] == [{"field": "id", "message": "no SMS we sent has the gateway id 'gw-999'"}]
    assert [f["field"] for f in unnamed.json()["fields"]] == ["id"]
    assert (await Message.get(id=message.id)).status == "sent"


async def test_a_receipt_that_overtakes_the_gateways_answer_applies_once_the_sms_is_sent(db, sms, client,
                                                                                         worker_paused):
    # The test plays the worker: the receipt comes while the message is still queued (in the wild: while the
    # gateway's answer to our POST is on its way), and is applied when the attempt records `sent`.
    message = await outbox.queue(channel="sms", recipient="+491701234567", text="Hello", sender="pipewright")

    early = await post_receipt(client, {"reference": message.uid, "status": "delivered"})
    held = await Message.get(id=message.id)
    await delivery.deliver(message.id)

    assert early.json() == {"message": message.uid, "status": "queued", "receipt": "held"}
    assert held.status == "queued"
    done = await Message.get(id=message.id)
    assert done.status == "delivered" and done.sent_at is not None and done.delivered_at is not None
    assert done.provider_id is not None and len(await requests_for_this_test(sms)) == 1
    assert "held_receipt" not in done.meta and done.meta["receipt"]["status"] == "delivered"


async def test_an_sms_over_the_segment_limit_is_refused_at_save_naming_text(db):
    _, stages = await make_pipeline()

    with pytest.raises(ValidationFailed) as plain:
        await add_rule(stages["new"], "send_sms", {"text": "a" * 1683})
    with pytest.raises(ValidationFailed) as templated:
        await add_rule(stages["new"], "send_sms", {"text": "{{deal.title}} " + "€" * 800})

    assert {e.field: e.message for e in plain.value.errors} == {
        "params.text": "the text is 11 SMS segments (GSM-7, 1,683 characters); at most 10"}
    assert {e.field: e.message for e in templated.value.errors} == {
        "params.text": "without its placeholders the text is already 11 SMS segments (GSM-7, 1,601 characters); "
                       "at most 10"}
    assert await Rule.all().count() == 0


async def test_a_rendered_text_over_the_limit_fails_the_run_without_a_retry(db, sms):
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "send_sms", {"text": "{{deal.title}}: " + "a" * 1510})  # 1,512 and the title
    deal = await deal_with_client(stages["new"], phones=mobile("+491701234567"), title="A rather long deal title")

    [run] = await wait_for_runs("deal", deal.id, 1)

    assert run.status == "failed" and run.attempts == 1
    assert run.error == "the rendered text is 11 SMS segments (GSM-7, 1,536 characters); at most 10"
    assert await Message.all().count() == 0


async def test_a_refused_to_number_is_named_at_save(db):
    _, stages = await make_pipeline()

    with pytest.raises(ValidationFailed) as refused:
        await add_rule(stages["new"], "send_sms", {"to": "call me", "text": "Hello"})

    assert {e.field: e.message for e in refused.value.errors} == {"params.to": "'call me' is not a phone number"}


def test_the_rule_form_shows_the_segment_count_of_the_text():
    assert SEND_SMS.param_hints({"text": "a" * 161}) == {
        "text": "2 SMS segments (GSM-7, 161 characters, 153 per segment)"}
    assert SEND_SMS.param_hints({"text": "Hallo {{deal.contact.name}}, schön!"}) == {
        "text": "without its placeholders: 1 SMS segment (GSM-7, 14 of 160 characters); "
                "the rendered text is counted when it is sent"}
    assert SEND_SMS.param_hints({"text": "Cześć"}) == {
        "text": "1 SMS segment (UCS-2, 5 of 70 characters); “ś” is not in the GSM-7 alphabet"}
    assert SEND_SMS.param_hints({}) == {}
