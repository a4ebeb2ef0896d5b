"""Inbound webhooks for calls, SMS replies, chat messages and web forms, posted as a provider would: signed with
the channel's secret, to its secret URL. Each reaches the open deals and leads of the sender, lands on their
timelines and ends their Wait rules; an unknown web form sender becomes a lead."""

import asyncio
import json
from typing import Any

import httpx
import pytest

from server.actor import SYSTEM
from server.models import Contact, CustomerActivity, DealContact, ExceptionEntry, Lead, Message, RuleRun, TimelineEntry
from server.services import elements as element_service
from server.services import hooks
from tests.support.clients import work
from tests.support import add_rule, make_pipeline, make_user, wait_for_runs, wait_until

ANNA_PHONE = "+49301234567"  # stored as E.164; she calls from "030 1234567"
ANNA_MOBILE = "+4915112345678"
ANNA_EMAIL = "anna@acme.example"


async def post(client: httpx.AsyncClient, channel: str, payload: Any, *, key: str | None = None,
               signature: str | None = None, token: str | None = None, body: bytes | None = None) -> httpx.Response:
    """Deliver `payload` as the provider would: JSON body, HMAC signature, the channel's secret URL."""
    hook = await hooks.hook(channel)
    raw = body if body is not None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json",
               hooks.SIGNATURE_HEADER: signature or hooks.signature(hook.signing_secret, raw)}
    if key:
        headers["Idempotency-Key"] = key
    return await client.post(f"/hooks/{channel}/{token or hook.token}", content=raw, headers=headers)


async def deal_of_anna(stage, *, title: str = "LED retrofit"):
    owner = await make_user("Maria")
    contact = await Contact.create(name="Anna Berg", emails=work(ANNA_EMAIL), phones=work(ANNA_PHONE, ANNA_MOBILE))
    deal = await element_service.create_element("deal", {"title": title, "responsible": owner.id},
                                                stage_id=stage.id, actor=SYSTEM)
    await DealContact.create(deal_id=deal.id, contact_id=contact.id, position=0)
    return deal


async def timeline_texts(element_type: str, element_id: int) -> list[str]:
    return [e.text for e in await TimelineEntry.filter(element_type=element_type, element_id=element_id,
                                                       kind="message").order_by("id")]


def missed_call(**values: Any) -> dict[str, Any]:
    return {"direction": "missed", "from": "030 1234567", "to": "+49 30 9876543", "duration_s": 0, **values}


def fields_of(response: httpx.Response) -> dict[str, str]:
    return {f["field"]: f["message"] for f in response.json()["fields"]}


# ---------------------------------------------------------------- calls


async def test_a_missed_call_from_the_deal_contact_ends_its_wait_and_shows_on_the_timeline(db, client):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "wait", {"days": 3, "description": "the customer's answer"})
    deal = await deal_of_anna(stages["offer"])
    [waiting] = await wait_for_runs("deal", deal.id, 1, statuses=("waiting",))

    response = await post(client, "calls", missed_call())

    assert response.status_code == 200, response.text
    message = await Message.get(channel="call")
    assert response.json() == {"message_id": message.id, "elements": [{"type": "deal", "id": deal.id}],
                               "status": "stored", "duplicate": False}
    await waiting.refresh_from_db()
    assert waiting.status == "succeeded" and waiting.outputs["ended_by"] == "call"
    assert await timeline_texts("deal", deal.id) == ["Missed call from +49 30 1234567"]
    assert (message.direction, message.sender, message.element_type, message.element_id) == (
        "inbound", ANNA_PHONE, "deal", deal.id)
    assert message.meta["direction"] == "missed" and message.meta["from"] == ANNA_PHONE
    assert message.meta["to"] == "+49309876543"
    assert [a.kind for a in await CustomerActivity.filter(element_id=deal.id)] == ["call"]


async def test_an_answered_call_shows_its_length_and_recording(db, client):
    _, stages = await make_pipeline()
    deal = await deal_of_anna(stages["new"])

    incoming = await post(client, "calls", missed_call(direction="incoming", duration_s=252,
                                                       recording_url="https://pbx.example/rec/81.mp3"))
    # On our outgoing call the customer is the number called.
    outgoing = await post(client, "calls", {"direction": "outgoing", "from": "201", "to": "+49 1511 2345678",
                                            "duration_s": 38, "started_at": "2026-11-02T09:30:00+01:00"})

    assert incoming.status_code == outgoing.status_code == 200, (incoming.text, outgoing.text)
    assert await timeline_texts("deal", deal.id) == [
        "Incoming call from +49 30 1234567 (4 min 12 s), recording: https://pbx.example/rec/81.mp3",
        "Outgoing call to +49 1511 2345678 (38 s)",
    ]
    call = await Message.get(id=outgoing.json()["message_id"])
    assert call.meta["from"] == "201" and call.meta["to"] == ANNA_MOBILE  # an extension stays as it was
    assert call.meta["started_at"] == "2026-11-02T08:30:00+00:00"
    recorded = await Message.get(id=incoming.json()["message_id"])
    assert recorded.meta["duration_s"] == 252 and recorded.meta["recording_url"] == "https://pbx.example/rec/81.mp3"


async def test_a_call_from_an_excepted_number_is_answered_ignored_and_not_stored(db, client):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "wait", {"days": 3})
    deal = await deal_of_anna(stages["offer"])
    await wait_for_runs("deal", deal.id, 1, statuses=("waiting",))
    await ExceptionEntry.create(kind="phone", value=ANNA_PHONE)

    response = await post(client, "calls", missed_call())

    assert response.status_code == 200, response.text
    assert response.json() == {"message_id": None, "elements": [], "status": "ignored (exception list)",
                               "duplicate": False}
    assert await Message.all().count() == 0
    assert await timeline_texts("deal", deal.id) == []
    assert (await ExceptionEntry.get(value=ANNA_PHONE)).blocked_count == 1
    assert (await RuleRun.get(element_id=deal.id)).status == "waiting"


async def test_a_call_from_an_unknown_number_is_refused_naming_the_number(db, client):
    _, stages = await make_pipeline()
    await deal_of_anna(stages["new"])

    response = await post(client, "calls", missed_call(**{"from": "+49 40 555 0100"}))
    outgoing = await post(client, "calls", {"direction": "outgoing", "from": ANNA_PHONE, "to": "+49 40 555 0100"})

    assert response.status_code == outgoing.status_code == 422
    assert "+49405550100 is not the address of a contact or company" in fields_of(response)["from"]
    assert "to" in fields_of(outgoing)
    assert await Message.all().count() == 0


@pytest.mark.parametrize(("change", "field", "says"), [
    ({"duration_s": -1}, "duration_s", "greater than or equal to 0"),
    ({"duration_s": "12"}, "duration_s", "integer"),
    ({"direction": "dropped"}, "direction", "'incoming', 'outgoing' or 'missed'"),
    ({"from": "12345"}, "from", "not a valid phone number"),
    ({"from": "x" * 65}, "from", "at most 64 characters"),
    ({"recording_url": "ftp://pbx.example/81.mp3"}, "recording_url", "URL scheme should be 'http' or 'https'"),
    ({"recordingurl": "https://pbx.example/81.mp3"}, "recordingurl", "Extra inputs are not permitted"),
    ({"started_at": "yesterday"}, "started_at", "datetime"),
])
async def test_a_malformed_call_is_refused_naming_the_field(db, client, change, field, says):
    _, stages = await make_pipeline()
    await deal_of_anna(stages["new"])

    response = await post(client, "calls", missed_call(**change))

    assert response.status_code == 422, response.text
    assert says in fields_of(response)[field]
    assert await Message.all().count() == 0


async def test_a_body_that_is_not_json_or_not_an_object_is_refused(db, client):
    assert (await post(client, "calls", None, body=b"{nope")).status_code == 400
    assert (await post(client, "calls", ["missed"])).status_code == 400
    not_a_number = await post(client, "calls", None, body=b'{"duration_s": NaN}')  # Python reads it, JSON has none
    assert not_a_number.status_code == 400 and "NaN is not a JSON value" in not_a_number.json()["error"]
    deep = await post(client, "calls", None, body=b"[" * 100_000 + b"]" * 100_000)
    assert deep.status_code == 400 and "nested too deeply" in deep.json()["error"]


# ---------------------------------------------------------------- proving a delivery


async def test_a_wrong_signature_is_refused_with_how_to_sign_and_nothing_is_stored(db, client):
    _, stages = await make_pipeline()
    await deal_of_anna(stages["new"])
    hook = await hooks.hook("calls")

    wrong = await post(client, "calls", missed_call(), signature=hooks.signature("not the secret", b"{}"))
    unsigned = await client.post(f"/hooks/calls/{hook.token}", json=missed_call())

    assert wrong.status_code == unsigned.status_code == 401
    assert "HMAC-SHA256" in wrong.json()["error"] and "signing secret" in wrong.json()["error"]
    assert "X-Pipewright-Signature: sha256=" in unsigned.json()["error"]
    assert await Message.all().count() == 0


async def test_a_wrong_token_or_channel_is_not_found(db, client):
    hook = await hooks.hook("calls")
    body = json.dumps(missed_call()).encode()
    signed = {hooks.SIGNATURE_HEADER: hooks.signature(hook.signing_secret, body)}

    wrong_token = await client.post(f"/hooks/calls/{hook.token}x", content=body, headers=signed)
    wrong_channel = await client.post(f"/hooks/fax/{hook.token}", content=body, headers=signed)

    assert wrong_token.status_code == wrong_channel.status_code == 404
    assert wrong_token.json() == {"error": "no webhook at this address"}


async def test_a_rotated_secret_stops_the_old_url_at_once(db, client):
    old = await hooks.hook("sms")
    await hooks.rotate("sms", actor=SYSTEM)

    response = await post(client, "sms", {"from": ANNA_MOBILE, "text": "hi"}, token=old.token)

    assert response.status_code == 404


async def test_an_oversize_body_is_refused(db, client):
    _, stages = await make_pipeline()
    await deal_of_anna(stages["new"])
    body = json.dumps({"from": ANNA_MOBILE, "text": "x" * 300_000}).encode()

    response = await post(client, "sms", None, body=body)

    assert response.status_code == 413
    assert "256 KiB" in response.json()["error"]
    assert await Message.all().count() == 0


# ---------------------------------------------------------------- one delivery, one message


async def test_the_same_idempotency_key_twice_stores_one_message_and_gives_the_same_answer(db, client):
    _, stages = await make_pipeline()
    deal = await deal_of_anna(stages["new"])

    first = await post(client, "calls", missed_call(), key="delivery-81")
    again = await post(client, "calls", missed_call(), key="delivery-81")

    assert first.status_code == again.status_code == 200
    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    assert {**again.json(), "duplicate": False} == first.json()
    assert await Message.all().count() == 1
    assert len(await timeline_texts("deal", deal.id)) == 1


async def test_without_the_header_a_calls_own_id_makes_a_retry_the_same_delivery(db, client):
    _, stages = await make_pipeline()
    await deal_of_anna(stages["new"])

    first = await post(client, "calls", missed_call(call_id="CA81"))
    again = await post(client, "calls", missed_call(call_id="CA81"))
    other = await post(client, "calls", missed_call(call_id="CA82"))

    assert again.json()["message_id"] == first.json()["message_id"] != other.json()["message_id"]
    assert again.json()["duplicate"] is True
    assert await Message.all().count() == 2


@pytest.mark.production_backend
async def test_two_simultaneous_deliveries_with_one_key_store_one_message(db, served):
    _, stages = await make_pipeline()
    deal = await deal_of_anna(stages["new"])

    async with httpx.AsyncClient(base_url=f"http://{served}") as client:
        answers = await asyncio.gather(*(post(client, "sms", {"from": ANNA_MOBILE, "text": "Yes, please"},
                                              key="sms-race-1") for _ in range(4)))

    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert len({a.json()["message_id"] for a in answers}) == 1
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True, True, True]
    assert await Message.all().count() == 1
    assert len(await timeline_texts("deal", deal.id)) == 1


# ---------------------------------------------------------------- SMS replies and chat


async def test_an_sms_reply_lands_on_the_deal_timeline(db, client):
    _, stages = await make_pipeline()
    deal = await deal_of_anna(stages["new"])

    response = await post(client, "sms", {"from": "+49 1511 2345678", "to": "pipewright",
                                          "text": "Yes, please send the offer", "id": "SM1"})

    assert response.status_code == 200, response.text
    assert response.json()["elements"] == [{"type": "deal", "id": deal.id}]
    assert await timeline_texts("deal", deal.id) == ["SMS from +49 1511 2345678\n\nYes, please send the offer"]
    message = await Message.get(id=response.json()["message_id"])
    assert (message.channel, message.sender, message.text) == ("sms", ANNA_MOBILE, "Yes, please send the offer")
    assert [a.kind for a in await CustomerActivity.filter(element_id=deal.id)] == ["message"]


async def test_an_sms_over_1600_characters_is_refused(db, client):
    response = await post(client, "sms", {"from": ANNA_MOBILE, "text": "x" * 1601})

    assert response.status_code == 422
    assert "at most 1600 characters" in fields_of(response)["text"]


async def test_a_chat_message_is_matched_by_email_also_from_a_visitor_id(db, client):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "wait", {"days": 3})
    deal = await deal_of_anna(stages["offer"])
    [waiting] = await wait_for_runs("deal", deal.id, 1, statuses=("waiting",))

    by_visitor = await post(client, "chat", {"from": "visitor-5f2a", "email": "Anna@Acme.example",
                                             "name": "Anna", "text": "Is the offer still valid?"})
    by_address = await post(client, "chat", {"from": ANNA_EMAIL, "text": "Thanks!"})
    nobody = await post(client, "chat", {"from": "visitor-77", "text": "Hello?"})

    assert by_visitor.status_code == by_address.status_code == 200, (by_visitor.text, by_address.text)
    assert await timeline_texts("deal", deal.id) == [
        "Chat message from Anna <anna@acme.example>\n\nIs the offer still valid?",
        "Chat message from anna@acme.example\n\nThanks!",
    ]
    await waiting.refresh_from_db()
    assert waiting.outputs["ended_by"] == "chat"
    assert nobody.status_code == 422 and "visitor id with `email`" in fields_of(nobody)["from"]


# ---------------------------------------------------------------- web forms


def contact_form(**fields: Any) -> dict[str, Any]:
    return {"form": "contact", "fields": {"name": "Ben Ortiz", "email": "ben@ortiz.example",
                                          "message": "Please call me about solar panels", **fields}}


@pytest.mark.production_backend
async def test_a_form_from_an_unknown_sender_creates_a_contact_and_a_lead_whose_rules_run(db, client):
    _, stages = await make_pipeline("lead", "Leads")
    await add_rule(stages["new"], "add_comment", {"text": "New web lead: {{lead.title}}"})

    response = await post(client, "forms", contact_form(phone="0151 12345679"), key="form-1")
    again = await post(client, "forms", contact_form(phone="0151 12345679"), key="form-1")

    assert response.status_code == 200, response.text
    [lead] = await Lead.all()
    [contact] = await Contact.all()
    assert response.json() == {"message_id": (await Message.get(channel="form")).id, "status": "created lead",
                               "elements": [{"type": "lead", "id": lead.id}], "duplicate": False}
    assert {**again.json(), "duplicate": False} == response.json() and again.json()["duplicate"] is True
    assert (contact.name, contact.emails, contact.phones) == (
        "Ben Ortiz", [{"value": "ben@ortiz.example", "type": "work"}], [{"value": "+4915112345679", "type": "mobile"}])
    assert (lead.title, lead.source, lead.contact_id, lead.stage_id) == (
        "Ben Ortiz (web form contact)", "web form contact", contact.id, stages["new"].id)
    message = await Message.get(channel="form")
    assert (message.element_type, message.element_id) == ("lead", lead.id)
    assert message.meta["form"] == "contact" and message.meta["fields"]["message"] == "Please call me about solar panels"
    [run] = await wait_for_runs("lead", lead.id, 1)
    assert run.status == "succeeded"
    comments = await wait_until(lambda: _comments("lead", lead.id), what="the lead's rule comment")
    assert comments == ["New web lead: Ben Ortiz (web form contact)"]
    assert (await timeline_texts("lead", lead.id))[0].startswith("Web form contact from ben@ortiz.example\n\n")


async def _comments(element_type: str, element_id: int) -> list[str]:
    return [e.text for e in await TimelineEntry.filter(element_type=element_type, element_id=element_id,
                                                       kind="comment")]


async def test_a_form_from_a_known_contact_is_activity_on_their_open_deal(db, client):
    _, deal_stages = await make_pipeline()
    await make_pipeline("lead", "Leads")
    await add_rule(deal_stages["offer"], "wait", {"days": 3})
    deal = await deal_of_anna(deal_stages["offer"])
    [waiting] = await wait_for_runs("deal", deal.id, 1, statuses=("waiting",))

    response = await post(client, "forms", contact_form(name="Anna", email="ANNA@acme.example"))

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "stored"
    assert response.json()["elements"] == [{"type": "deal", "id": deal.id}]
    assert await Lead.all().count() == 0 and await Contact.all().count() == 1
    await waiting.refresh_from_db()
    assert waiting.outputs["ended_by"] == "form"
    assert [a.kind for a in await CustomerActivity.filter(element_id=deal.id)] == ["form"]


async def test_a_form_from_a_contact_without_an_open_deal_makes_a_repeat_lead_for_that_contact(db, client):
    _, deal_stages = await make_pipeline()
    _, lead_stages = await make_pipeline("lead", "Leads")
    deal = await deal_of_anna(deal_stages["won"])  # closed: the form reaches no open deal

    response = await post(client, "forms", contact_form(name="Anna", email=ANNA_EMAIL))

    assert response.json()["status"] == "created lead", response.text
    [lead] = await Lead.all()
    [anna] = await Contact.all()
    assert lead.contact_id == anna.id and lead.is_repeat
    assert await timeline_texts("deal", deal.id) == []


async def test_a_form_that_cannot_make_its_lead_leaves_nothing_behind(db, client):
    # No lead pipeline: the lead cannot be made, so neither the contact nor the message may stay.
    response = await post(client, "forms", contact_form())

    assert response.status_code == 422
    assert "no lead pipeline" in fields_of(response)["pipeline_id"]
    assert await Contact.all().count() == 0 and await Message.all().count() == 0


@pytest.mark.parametrize(("payload", "field", "says"), [
    ({"form": "Contact Us", "fields": {"email": "ben@ortiz.example"}}, "form", "should match pattern"),
    ({"form": "contact", "fields": {"email": "ben at ortiz"}}, "fields.email", "not an email address"),
    ({"form": "contact", "fields": {"phone": "12"}}, "fields.phone", "not a valid phone number"),
    ({"form": "contact", "fields": {"name": "Ben"}}, "fields", "give the sender's email or phone"),
    ({"form": "contact", "fields": {"email": "ben@ortiz.example", "message": "x" * 5001}}, "fields.message",
     "at most 5000 characters"),
    ({"form": "contact", "fields": {f"f{n}": "x" for n in range(51)}}, "fields", "at most 50 items"),
    ({"form": "contact", "fields": {"email": "ben@ortiz.example", "topics": ["a"]}}, "fields.topics",
     "valid string"),
])
async def test_a_malformed_form_is_refused_naming_the_field(db, client, payload, field, says):
    await make_pipeline("lead", "Leads")

    response = await post(client, "forms", payload)

    assert response.status_code == 422, response.text
    assert says in fields_of(response)[field]
    assert await Lead.all().count() == 0 and await Message.all().count() == 0
