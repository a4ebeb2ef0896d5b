"""Messages over GraphQL as a client meets them: an element's message log and who may read it, resending a failed
email (it arrives once at a real SMTP peer), exceptions, senders, channel settings, and message events live."""

import asyncio
from typing import Any

import pytest
from gql import GraphQLRequest

from server.actor import SYSTEM
from server.channels import outbox
from server.db import transaction
from server.models import Message
from server.services.elements import create_element
from tests.channels.test_send_email import deal_with_client, message_of
from tests.schema.test_subscriptions import next_event, subscribed, ws_client
from tests.support import add_rule, make_pipeline, make_token, wait_until
from tests.support.api import api, data, refused_fields

pytestmark = pytest.mark.production_backend

DEAL_MESSAGES = """query($id: ID!) { deal(id: $id) { __typename ... on Deal { messages(first: 5) { totalCount
  nodes { id subject status channel direction element { type id } } } } ... on ForbiddenError { message } } }"""
MESSAGE = """query($id: ID!) { message(id: $id) { __typename ... on Message { id status attempts reason recipient
  deliveryAttempts { number outcome answer } } ... on ForbiddenError { message } ... on NotFoundError { message } } }"""
RESEND = """mutation($id: ID!) { resendMessage(id: $id) { __typename ... on Message { status reason }
  ... on ValidationError { errors { field message } } ... on ForbiddenError { message } } }"""


async def queued(recipient: str, subject: str, *, deal_id: int | None = None) -> Message:
    """An outbound message as a rule would write it (the outbox, in a transaction), delivered by the worker."""
    async with transaction():
        return await outbox.queue(channel="email", recipient=recipient, text="Hello", subject=subject,
                                  sender="sales@pipewright.example", element_type="deal" if deal_id else None,
                                  element_id=deal_id)


async def test_an_employee_reads_the_messages_of_their_own_deals_and_no_others(db: Any, smtp: Any) -> None:
    await make_pipeline()
    maria, maria_token = await make_token("employee", "Maria")
    tom, tom_token = await make_token("employee", "Tom")
    marias = await create_element("deal", {"title": "Maria's", "responsible": maria.id}, actor=SYSTEM)
    toms = await create_element("deal", {"title": "Tom's", "responsible": tom.id}, actor=SYSTEM)
    first = await queued("anna@acme.example", "First offer", deal_id=marias.id)
    second = await queued("anna@acme.example", "Second offer", deal_id=marias.id)
    await queued("bob@acme.example", "Tom's offer", deal_id=toms.id)

    async with api(maria_token) as client:
        own = (await data(client, DEAL_MESSAGES, id=str(marias.id)))["deal"]["messages"]
        assert own["totalCount"] == 2
        element = {"type": "deal", "id": str(marias.id)}
        assert [(m["subject"], m["element"]) for m in own["nodes"]] == [("Second offer", element),
                                                                       ("First offer", element)]
        assert {(m["channel"], m["direction"]) for m in own["nodes"]} == {("email", "outbound")}
        paged = await data(client, """query($id: ID!, $after: String) { messages(elementType: "deal", elementId: $id,
            first: 1, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } } }""", id=str(marias.id))
        assert [n["id"] for n in paged["messages"]["nodes"]] == [str(second.id)]
        assert paged["messages"]["pageInfo"]["hasNextPage"]

        assert (await data(client, DEAL_MESSAGES, id=str(toms.id)))["deal"]["__typename"] == "ForbiddenError"
        refused = await client.post("/graphql", json={"query": """query($id: ID!) { messages(elementType: "deal",
            elementId: $id) { nodes { subject } } }""", "variables": {"id": str(toms.id)}})
        body = refused.json()
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert "Tom's offer" not in refused.text
        toms_message = await Message.get(element_id=toms.id)
        assert (await data(client, MESSAGE, id=str(toms_message.id)))["message"]["__typename"] == "ForbiddenError"
        shown = (await data(client, MESSAGE, id=str(first.id)))["message"]
        assert shown["__typename"] == "Message" and shown["recipient"] == "anna@acme.example"

    async with api(tom_token) as client:
        assert (await data(client, DEAL_MESSAGES, id=str(toms.id)))["deal"]["messages"]["totalCount"] == 1


async def test_resending_a_failed_email_sends_it_once_through_the_smtp_peer(db: Any, smtp: Any) -> None:
    smtp.refuse = "550 5.1.1 mailbox unavailable"
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "send_email", {"subject": "Your offer", "text": "Hello again"})
    deal = await deal_with_client(stages["new"])
    failed = await message_of(deal, "failed")
    _, token = await make_token("manager", "Mona")

    async with api(token) as client:
        before = (await data(client, MESSAGE, id=str(failed.id)))["message"]
        assert before["status"] == "failed" and before["reason"] == "refused: 550 5.1.1 mailbox unavailable"
        assert before["deliveryAttempts"] == [{"number": 1, "outcome": "failed",
                                               "answer": "550 5.1.1 mailbox unavailable"}]
        smtp.refuse = None
        resent = (await data(client, RESEND, id=str(failed.id)))["resendMessage"]
        assert resent["status"] == "queued" and resent["reason"].startswith("sent again by Mona at ")

        await message_of(deal, "sent")
        await wait_until(lambda: _now(len(smtp.messages()) >= 1), what="the email at the peer")
        after = (await data(client, MESSAGE, id=str(failed.id)))["message"]
        assert after["status"] == "sent" and after["attempts"] == 2
        assert [a["outcome"] for a in after["deliveryAttempts"]] == ["failed", "sent"]
        again = (await data(client, RESEND, id=str(failed.id)))["resendMessage"]
        assert refused_fields(again) == {"id": "only failed messages can be sent again; this one is sent"}

    await asyncio.sleep(0.3)  # time for a second delivery, if anything had queued one
    [received] = smtp.messages()
    assert received.message["Subject"] == "Your offer" and "Hello again" in received.body("plain")


async def test_exceptions_are_added_validated_and_removed_by_admins(db: Any) -> None:
    _, admin = await make_token("admin")
    _, employee = await make_token("employee")
    add = """mutation($v: String!) { addException(value: $v, note: "competitor") { __typename
      ... on ExceptionEntry { id kind value note } ... on ValidationError { errors { field message } }
      ... on ForbiddenError { message } } }"""
    async with api(admin) as client:
        entry = (await data(client, add, v="Spam@Example.com"))["addException"]
        assert (entry["kind"], entry["value"], entry["note"]) == ("email", "spam@example.com", "competitor")
        phone = (await data(client, add, v="+49 30 1234567"))["addException"]
        assert phone["value"] == "+49301234567"
        assert refused_fields((await data(client, add, v="spam@example.com"))["addException"]) == {
            "value": "spam@example.com is on the exception list already"}
        assert refused_fields((await data(client, add, v="no address"))["addException"]) == {
            "value": "'no address' is neither an email address nor a phone number in international format "
                     "(e.g. +49 30 1234567)"}
        listed = await data(client, "{ exceptions(first: 10) { totalCount nodes { value } } }")
        assert [n["value"] for n in listed["exceptions"]["nodes"]] == ["+49301234567", "spam@example.com"]
        removed = await data(client, """mutation($id: ID!) { removeException(id: $id) { __typename } }""",
                             id=entry["id"])
        assert removed["removeException"]["__typename"] == "ExceptionEntry"
        assert (await data(client, "{ exceptions { totalCount } }"))["exceptions"]["totalCount"] == 1
    async with api(employee) as client:
        assert (await data(client, add, v="x@example.com"))["addException"]["__typename"] == "ForbiddenError"


async def test_admins_configure_senders_and_read_channel_settings(db: Any) -> None:
    _, admin = await make_token("admin")
    _, employee = await make_token("employee")
    create = """mutation($input: MailSenderInput!) { createMailSender(input: $input) { __typename
      ... on MailSender { id address isDefault } ... on ValidationError { errors { field message } } } }"""
    settings_query = """{ channelSettings { __typename ... on ChannelSettings { smtpServer mailFrom
      webhooks { channel url signingSecret } } ... on ForbiddenError { message } } }"""
    async with api(admin) as client:
        sales = (await data(client, create, input={"name": "Sales",
                                                   "address": "sales@acme.example"}))["createMailSender"]
        assert sales["isDefault"]
        support = (await data(client, create, input={"name": "Support", "address": "support@acme.example",
                                                     "isDefault": True}))["createMailSender"]
        senders = (await data(client, "{ mailSenders { address isDefault } }"))["mailSenders"]
        assert senders == [{"address": "support@acme.example", "isDefault": True},
                           {"address": "sales@acme.example", "isDefault": False}]
        bad = (await data(client, create, input={"name": "X", "address": "x"}))["createMailSender"]
        assert refused_fields(bad) == {"address": "'x' is not an email address"}
        deleted = await data(client, """mutation($id: ID!) { deleteMailSender(id: $id) { __typename } }""",
                             id=support["id"])
        assert deleted["deleteMailSender"]["__typename"] == "MailSender"
        assert (await data(client, "{ mailSenders { address isDefault } }"))["mailSenders"] == [
            {"address": "sales@acme.example", "isDefault": True}]

        shown = (await data(client, settings_query))["channelSettings"]
        assert shown["smtpServer"] == f"smtp://127.0.0.1:{db_smtp_port()}"
        calls = next(h for h in shown["webhooks"] if h["channel"] == "calls")
        rotated = (await data(client, """mutation { rotateWebhookSecret(channel: "calls") { __typename
          ... on Webhook { url signingSecret } } }"""))["rotateWebhookSecret"]
        assert rotated["url"] != calls["url"] and rotated["signingSecret"] != calls["signingSecret"]
        unknown = (await data(client, """mutation { rotateWebhookSecret(channel: "fax") { __typename } }"""))
        assert unknown["rotateWebhookSecret"]["__typename"] == "NotFoundError"
    async with api(employee) as client:
        assert (await data(client, settings_query))["channelSettings"]["__typename"] == "ForbiddenError"
        assert len((await data(client, "{ mailSenders { id } }"))["mailSenders"]) == 1  # a rule form's choices


def db_smtp_port() -> str:
    from server.config import settings

    return settings().smtp_url.rsplit(":", 1)[1]


STREAM = """subscription { activityStream { kind elementType elementId data } }"""
CHANGES = """subscription($id: ID!) { elementChanged(elementType: "deal", elementId: $id) { change elementId
  message { id status subject recipient } } }"""


async def test_message_events_reach_the_activity_stream_and_element_subscribers_who_may_see_them(
    served: str, smtp: Any,
) -> None:
    await make_pipeline()
    maria, maria_token = await make_token("employee", "Maria")
    _, admin_token = await make_token("admin")
    marias = await create_element("deal", {"title": "Maria's", "responsible": maria.id}, actor=SYSTEM)

    async with ws_client(served, maria_token) as maria_session, ws_client(served, admin_token) as admin_session:
        maria_stream = maria_session.subscribe(GraphQLRequest(STREAM))
        maria_next = await subscribed(maria_stream)
        admin_stream = admin_session.subscribe(GraphQLRequest(STREAM))
        admin_next = await subscribed(admin_stream)
        changes = maria_session.subscribe(GraphQLRequest(CHANGES, variable_values={"id": str(marias.id)}))
        change_next = await subscribed(changes)

        loose = await queued("someone@acme.example", "Belongs to no deal")
        await queued("anna@acme.example", "Maria's offer", deal_id=marias.id)

        seen_by_admin = (await admin_next)["activityStream"]
        assert seen_by_admin["kind"] == "message" and seen_by_admin["data"]["id"] == loose.id
        seen_by_maria = (await maria_next)["activityStream"]  # not the message of no deal: it names a customer
        assert (seen_by_maria["kind"], seen_by_maria["elementId"]) == ("message", str(marias.id))
        assert seen_by_maria["data"]["subject"] == "Maria's offer"
        change = (await change_next)["elementChanged"]
        assert change["change"] == "message" and change["message"]["subject"] == "Maria's offer"
        statuses = [change["message"]["status"]]
        while statuses[-1] != "sent":
            statuses.append((await next_event(changes))["elementChanged"]["message"]["status"])
        assert statuses == ["queued", "sending", "sent"]
        for stream in (maria_stream, admin_stream, changes):
            await stream.aclose()


async def _now(value: Any) -> Any:
    return value
