"""Triggers through GraphQL, per type, as an admin configures them and as the event really happens: a mail to the
inbound receiver, the pixel and a link of a sent email, signed channel webhooks, the trigger's own webhook URL,
the API's updateDeal, closeTask and recordPayment, and the payments webhook. Each time the element moves into
the trigger's stage and that stage's rule runs. document_viewed and resource_booked are configured here; their
events are fired in tests/documents/test_public_link.py (a view of the public link) and
tests/schema/test_bookings_api.py (bookResource)."""

import json
from typing import Any

import httpx
import pytest

from server.actor import SYSTEM
from server.models import Contact, Deal, DealContact, Payment, Stage, Task, TriggerActivation
from server.services import elements as element_service
from tests.channels.test_inbound_mail import receiver, reply_mail, send  # noqa: F401 (receiver is a fixture)
from tests.channels.test_tracking import OFFER, links_of, path_of, sent_offer
from tests.channels.test_webhooks import ANNA_EMAIL, deal_of_anna, missed_call, post
from tests.rules.test_triggers import deal_in, six_stages, stage_of
from tests.support import add_rule, make_token, make_user, wait_for_runs
from tests.support.api import Api, refused_fields
from tests.support.clients import work

pytestmark = pytest.mark.production_backend

TRIGGER_FIELDS = "id name triggerType settings condition allowBack enabled position description webhookUrl"
CREATE = f"""mutation($stage: ID!, $input: TriggerInput!) {{ createTrigger(stageId: $stage, input: $input) {{
  __typename ... on Trigger {{ {TRIGGER_FIELDS} stage {{ code }} }}
  ... on ValidationError {{ errors {{ field message }} }} ... on ForbiddenError {{ message }} }} }}"""
UPDATE = f"""mutation($id: ID!, $input: TriggerInput!) {{ updateTrigger(id: $id, input: $input) {{
  __typename ... on Trigger {{ {TRIGGER_FIELDS} }} ... on ValidationError {{ errors {{ field message }} }} }} }}"""
ACTIVATIONS = """query($id: ID!) { triggerActivations(elementType: "deal", elementId: $id, first: 10) {
  event outcome reason trigger { name } fromStage { code } toStage { code } data
  evaluations { name stage matched why } } }"""


async def configure(api: Api, token: str, stage: Stage, trigger_type: str, settings: dict[str, Any] | None = None,
                    **values: Any) -> dict[str, Any]:
    """A trigger saved through GraphQL, as the admin would; with an Add comment rule on its stage, to see run."""
    result = (await api.as_(token, CREATE, stage=str(stage.id), input={
        "triggerType": trigger_type, "settings": settings or {}, **values}))["createTrigger"]
    assert result["__typename"] == "Trigger", result
    await add_rule(stage, "add_comment", {"text": f"arrived in {stage.code}"})
    return result


async def arrived(deal_id: int, code: str) -> None:
    """The deal is in `code` and that stage's rule ran."""
    assert await stage_of(await Deal.get(id=deal_id)) == code
    runs = await wait_for_runs("deal", deal_id, 1)
    assert [r.status for r in runs] == ["succeeded"]


async def admin() -> str:
    return (await make_token("admin"))[1]


# ---------------------------------------------------------------- customer channels


async def test_an_email_to_the_receiver_moves_the_senders_deal(db, api, receiver):  # noqa: F811
    stages, token = await six_stages(), await admin()
    await configure(api, token, stages["s3"], "incoming_email", {"subject_contains": "order"}, name="Ordered")
    deal = await deal_of_anna(stages["s1"])

    code, _ = await send(receiver, reply_mail(subject="Re: offer", text="Thanks"))
    assert code == 250
    assert await stage_of(deal) == "s1"  # the subject does not say order
    code, _ = await send(receiver, reply_mail(subject="Our ORDER", message_id="<reply-2@acme.example>"))
    assert code == 250
    await arrived(deal.id, "s3")


async def test_an_email_from_a_contact_moves_each_open_deal_and_no_won_or_lost_one(db, api, receiver):  # noqa: F811
    stages, token = await six_stages(), await admin()
    await configure(api, token, stages["s4"], "incoming_email", name="Answered")
    anna = await Contact.create(name="Anna Berg", emails=work(ANNA_EMAIL))
    deals = {}
    for code in ("s1", "s2", "won", "lost"):
        deals[code] = await deal_in(stages[code], title=f"Deal in {code}")
        await DealContact.create(deal_id=deals[code].id, contact_id=anna.id, position=0)

    assert (await send(receiver, reply_mail()))[0] == 250

    assert {code: await stage_of(deal) for code, deal in deals.items()} == {
        "s1": "s4", "s2": "s4", "won": "won", "lost": "lost"}
    await wait_for_runs("deal", deals["s1"].id, 1)
    await wait_for_runs("deal", deals["s2"].id, 1)
    assert not await TriggerActivation.filter(element_id__in=[deals["won"].id, deals["lost"].id]).exists()


async def test_opening_a_sent_email_moves_the_deal(db, api, smtp, client):
    message, received, deal_id = await sent_offer(smtp)
    stages = {s.code: s for s in await Stage.all()}
    await configure(api, await admin(), stages["invoice"], "email_opened", {"subject_contains": "offer"})
    await wait_for_runs("deal", deal_id, 1)  # the offer's Send email rule is done

    [pixel] = links_of(received.body("html")).images
    assert (await client.get(path_of(pixel["src"] or ""))).status_code == 200

    assert await stage_of(await Deal.get(id=deal_id)) == "invoice"
    runs = await wait_for_runs("deal", deal_id, 2)
    assert [r.action_type for r in runs if r.status == "succeeded"] == ["send_email", "add_comment"]


async def test_clicking_the_watched_link_moves_the_deal_and_another_link_does_not(db, api, smtp, client):
    message, received, deal_id = await sent_offer(smtp)
    stages = {s.code: s for s in await Stage.all()}
    await configure(api, await admin(), stages["invoice"], "link_clicked", {"url": "https://shop.acme.example/"})
    await wait_for_runs("deal", deal_id, 1)
    offer, terms = [h for h in links_of(received.body("html")).hrefs if "/click?" in h]

    assert (await client.get(path_of(terms))).status_code in (302, 303, 307)
    assert await stage_of(await Deal.get(id=deal_id)) == "offer"
    answer = await client.get(path_of(offer))
    assert answer.headers["location"] == OFFER

    assert await stage_of(await Deal.get(id=deal_id)) == "invoice"
    assert [r.action_type for r in await wait_for_runs("deal", deal_id, 2)] == ["send_email", "add_comment"]


@pytest.mark.parametrize("direction", ["incoming", "outgoing", "missed"])
async def test_a_call_of_its_direction_moves_the_deal(db, api, client, direction):
    stages, token = await six_stages(), await admin()
    await configure(api, token, stages["s3"], f"{direction}_call")
    deal = await deal_of_anna(stages["s1"])
    others = [d for d in ("incoming", "outgoing", "missed") if d != direction]
    call = {"outgoing": {"direction": "outgoing", "from": "201", "to": "030 1234567", "duration_s": 60}}

    def of(way: str) -> dict[str, Any]:
        return call.get(way) or missed_call(direction=way, duration_s=0 if way == "missed" else 60)

    assert (await post(client, "calls", of(others[0]))).status_code == 200
    assert await stage_of(deal) == "s1"
    assert (await post(client, "calls", of(direction))).status_code == 200
    await arrived(deal.id, "s3")


async def test_a_chat_message_and_a_web_form_move_the_deal(db, api, client):
    stages, token = await six_stages(), await admin()
    await configure(api, token, stages["s2"], "chat_message", {"text_contains": "price"})
    await configure(api, token, stages["s4"], "web_form", {"form": "quote"})
    deal = await deal_of_anna(stages["s1"])

    assert (await post(client, "chat", {"from": ANNA_EMAIL, "text": "What is the price?"})).status_code == 200
    await arrived(deal.id, "s2")  # its rule done before the next event moves the deal on (else it is cancelled)
    form = {"form": "quote", "fields": {"email": ANNA_EMAIL, "name": "Anna Berg"}}
    assert (await post(client, "forms", form)).status_code == 200
    assert await stage_of(deal) == "s4"
    assert [r.status for r in await wait_for_runs("deal", deal.id, 2)] == ["succeeded", "succeeded"]


# ---------------------------------------------------------------- the inbound webhook trigger


async def test_the_trigger_webhook_url_moves_once_per_idempotency_key_and_refuses_wrong_urls(db, api, client):
    stages, token = await six_stages(), await admin()
    trigger = await configure(api, token, stages["s3"], "webhook", name="Signed",
                              condition=[[{"field": "event.payload.status", "op": "eq", "value": "signed"}]])
    deal = await deal_in(stages["s1"])
    url = trigger["webhookUrl"]
    assert url.startswith("http") and "/hooks/triggers/" in url
    path = path_of(url)
    body = {"element_type": "deal", "element_id": deal.id, "status": "signed"}

    wrong = await client.post(path[:-3] + "xyz", json=body)
    assert wrong.status_code == 404
    assert not await TriggerActivation.filter(element_id=deal.id).exists()

    malformed = await client.post(path, json={"element_type": "deal", "element_id": "ACME"})
    assert malformed.status_code == 422
    assert [f["field"] for f in malformed.json()["fields"]] == ["element_id"]
    assert (await client.post(path, content=b"{not json")).status_code == 400

    first = await client.post(path, json=body, headers={"Idempotency-Key": "contract-7"})
    again = await client.post(path, json=body, headers={"Idempotency-Key": "contract-7"})
    assert first.status_code == again.status_code == 200
    assert first.json()["outcome"] == "moved" and again.json()["duplicate"] is True
    assert {k: v for k, v in again.json().items() if k != "duplicate"} == {
        k: v for k, v in first.json().items() if k != "duplicate"}
    assert await TriggerActivation.filter(element_id=deal.id).count() == 1
    await arrived(deal.id, "s3")

    rotated = (await api.as_(token, """mutation($id: ID!) { rotateTriggerWebhook(id: $id) {
        ... on Trigger { webhookUrl } } }""", id=trigger["id"]))["rotateTriggerWebhook"]
    assert rotated["webhookUrl"] != url
    assert (await client.post(path, json=body)).status_code == 404


# ---------------------------------------------------------------- the API's own events


async def test_updating_a_watched_field_and_the_responsible_through_the_api_move_the_deal(db, api):
    stages, token = await six_stages(), await admin()
    await configure(api, token, stages["s2"], "field_changed", {"fields": ["amount"]})
    await configure(api, token, stages["s4"], "responsible_changed")
    bob = await make_user("Bob")
    deal = await deal_in(stages["s1"])
    update = """mutation($id: ID!, $f: JSON!) { updateDeal(id: $id, fields: $f) { __typename } }"""

    assert (await api.as_(token, update, id=str(deal.id), f={"title": "ACME 2"}))["updateDeal"]["__typename"] == "Deal"
    assert await stage_of(deal) == "s1"
    await api.as_(token, update, id=str(deal.id), f={"amount": "2500"})
    await arrived(deal.id, "s2")  # its rule done before the next event moves the deal on (else it is cancelled)
    await api.as_(token, update, id=str(deal.id), f={"responsible": str(bob.id)})
    assert await stage_of(deal) == "s4"
    assert [r.status for r in await wait_for_runs("deal", deal.id, 2)] == ["succeeded", "succeeded"]


async def test_closing_a_linked_task_through_the_api_moves_the_deal(db, api):
    stages, token = await six_stages(), await admin()
    await configure(api, token, stages["s3"], "task_status_changed", {"statuses": ["closed"]})
    deal = await deal_in(stages["s1"])
    task = await Task.create(title="Send the contract", element_type="deal", element_id=deal.id)

    closed = await api.as_(token, "mutation($id: ID!) { closeTask(id: $id) { __typename } }", id=str(task.id))
    assert closed["closeTask"]["__typename"] == "Task"
    await arrived(deal.id, "s3")


RECORD_PAYMENT = """mutation($id: ID!, $amount: String!, $key: String) { recordPayment(elementType: "deal",
  elementId: $id, amount: $amount, reference: "INV-7", idempotencyKey: $key) { __typename
  ... on Payment { amount currency duplicate element { id } } ... on ValidationError { errors { field message } }
  ... on ForbiddenError { message } } }"""


async def test_a_payment_recorded_by_the_responsible_moves_the_deal_once_per_key(db, api):
    stages, token = await six_stages(), await admin()
    await configure(api, token, stages["s3"], "payment_received", {"min_amount": "100"})
    maria, marias = await make_token("employee", "Maria")
    _, toms = await make_token("employee", "Tom")
    deal = await deal_in(stages["s1"], responsible=maria.id, currency="EUR")

    refused = (await api.as_(toms, RECORD_PAYMENT, id=str(deal.id), amount="500"))["recordPayment"]
    assert refused["__typename"] == "ForbiddenError"
    bad = (await api.as_(marias, RECORD_PAYMENT, id=str(deal.id), amount="lots"))["recordPayment"]
    assert "amount" in refused_fields(bad)
    small = (await api.as_(marias, RECORD_PAYMENT, id=str(deal.id), amount="20"))["recordPayment"]
    assert small["__typename"] == "Payment"
    assert await stage_of(deal) == "s1"

    paid = (await api.as_(marias, RECORD_PAYMENT, id=str(deal.id), amount="500", key="pay-1"))["recordPayment"]
    again = (await api.as_(marias, RECORD_PAYMENT, id=str(deal.id), amount="500", key="pay-1"))["recordPayment"]
    assert (paid["amount"], paid["currency"], paid["duplicate"], again["duplicate"]) == ("500.00", "EUR", False, True)
    assert await Payment.filter(element_id=deal.id).count() == 2
    assert await TriggerActivation.filter(element_id=deal.id, outcome="moved").count() == 1
    await arrived(deal.id, "s3")


async def test_the_payments_webhook_moves_the_deal_once_per_key_and_names_bad_fields(db, api, client):
    stages, token = await six_stages(), await admin()
    await configure(api, token, stages["s5"], "payment_received")
    deal = await deal_in(stages["s1"])
    notice = {"element_type": "deal", "element_id": deal.id, "amount": 1250, "currency": "EUR", "reference": "tx-9"}

    bad = await post(client, "payments", {"element_type": "offer", "element_id": deal.id, "amount": 5, "note": "x"})
    assert bad.status_code == 422
    assert {f["field"] for f in bad.json()["fields"]} == {"element_type", "note"}
    missing = await post(client, "payments", {**notice, "element_id": deal.id + 1000})
    assert (missing.status_code, [f["field"] for f in missing.json()["fields"]]) == (422, ["element_id"])

    first = await post(client, "payments", notice, key="tx-9")
    again = await post(client, "payments", notice, key="tx-9")
    assert first.status_code == again.status_code == 200
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert first.json()["payment_id"] == again.json()["payment_id"]
    assert first.json()["amount"] == "1250.00"
    assert await Payment.filter(element_id=deal.id).count() == 1
    await arrived(deal.id, "s5")


# ---------------------------------------------------------------- matching, as triggerActivations explains it


async def test_of_two_matching_triggers_ahead_the_nearest_moves_the_deal_once_and_the_other_says_why(db, api):
    stages, token = await six_stages(), await admin()
    await configure(api, token, stages["s3"], "field_changed", {"fields": ["amount"]}, name="Priced")
    await configure(api, token, stages["s5"], "field_changed", {"fields": ["amount"]}, name="Priced too")
    deal = await deal_in(stages["s1"])

    await element_service.update_element("deal", deal.id, {"amount": "900"}, actor=SYSTEM)

    await arrived(deal.id, "s3")
    [activation] = (await api.as_(token, ACTIVATIONS, id=str(deal.id)))["triggerActivations"]
    assert (activation["event"], activation["outcome"], activation["trigger"]["name"]) == (
        "field_changed", "moved", "Priced")
    assert (activation["fromStage"]["code"], activation["toStage"]["code"]) == ("s1", "s3")
    assert [(e["name"], e["stage"], e["matched"], e["why"]) for e in activation["evaluations"]] == [
        ("Priced", "S3", True, "matched"), ("Priced too", "S5", False, "not tried: “Priced” fired first")]
    assert activation["data"]["field"] == "amount"


async def test_a_trigger_behind_moves_the_deal_back_only_once_it_allows_it(db, api):
    stages, token = await six_stages(), await admin()
    behind = await configure(api, token, stages["s2"], "field_changed", {"fields": ["title"]}, name="Renamed")
    deal = await deal_in(stages["s4"])

    await element_service.update_element("deal", deal.id, {"title": "ACME 2"}, actor=SYSTEM)
    assert await stage_of(deal) == "s4"
    [refused] = (await api.as_(token, ACTIVATIONS, id=str(deal.id)))["triggerActivations"]
    assert refused["outcome"] == "no_match" and refused["trigger"] is None
    assert refused["evaluations"][0]["why"] == "its stage is behind the element's and it does not allow moving back"

    allowed = (await api.as_(token, UPDATE, id=behind["id"], input={"allowBack": True}))["updateTrigger"]
    assert allowed["allowBack"] is True
    await element_service.update_element("deal", deal.id, {"title": "ACME 3"}, actor=SYSTEM)
    await arrived(deal.id, "s2")


# ---------------------------------------------------------------- configuring


async def test_the_catalogue_lists_every_type_with_its_settings_and_event_data(db, api):
    types = (await api.as_(await admin(), """{ triggerTypes { key title event dataFields
        settings { name type required choices help } } }"""))["triggerTypes"]
    by_key = {t["key"]: t for t in types}
    assert len(by_key) == 15
    assert [(s["name"], s["type"], s["required"]) for s in by_key["field_changed"]["settings"]] == [
        ("fields", "list", True)]
    assert by_key["task_status_changed"]["settings"][0]["choices"] == ["open", "closed"]
    assert by_key["payment_received"]["dataFields"] == ["amount", "currency", "reference", "payment_id"]
    assert by_key["missed_call"]["event"] == "call"


async def test_document_viewed_and_resource_booked_are_saved_described_and_checked_by_field(db, api):
    stages, token = await six_stages(), await admin()
    viewed = await configure(api, token, stages["s2"], "document_viewed",
                             condition=[[{"field": "event.number", "op": "contains", "value": "Q-"}]])
    booked = await configure(api, token, stages["s3"], "resource_booked")
    assert viewed["description"].startswith("When ") and "event.number" in viewed["description"]
    assert booked["description"].startswith("When ") and booked["webhookUrl"] is None

    wrong = (await api.as_(token, CREATE, stage=str(stages["s4"].id), input={
        "triggerType": "resource_booked", "settings": {"room": "A"},
        "condition": [[{"field": "event.nope", "op": "eq", "value": 1}]]}))["createTrigger"]
    fields = refused_fields(wrong)
    assert set(fields) == {"settings.room", "condition.0.0.field"}


async def test_bad_input_is_refused_by_field_and_only_admins_configure(db, api):
    stages, token = await six_stages(), await admin()
    _, employee = await make_token("employee", "Eve")

    unknown = (await api.as_(token, CREATE, stage=str(stages["s2"].id), input={"triggerType": "telepathy"}))
    assert "triggerType" in refused_fields(unknown["createTrigger"])
    no_fields = (await api.as_(token, CREATE, stage=str(stages["s2"].id), input={
        "triggerType": "field_changed", "settings": {"fields": ["colour"]}}))["createTrigger"]
    assert list(refused_fields(no_fields)) == ["settings.fields.0"]  # the unknown field, by its place
    forbidden = (await api.as_(employee, CREATE, stage=str(stages["s2"].id), input={
        "triggerType": "responsible_changed"}))["createTrigger"]
    assert forbidden["__typename"] == "ForbiddenError"

    listed = await api.as_(token, """query($id: ID!) { stage(id: $id) { triggers { id } } }""",
                           id=str(stages["s2"].id))
    assert listed["stage"]["triggers"] == []


async def test_an_admin_reorders_a_stages_triggers_naming_each_once(db, api):
    stages, token = await six_stages(), await admin()
    first = await configure(api, token, stages["s2"], "field_changed", {"fields": ["amount"]}, name="First")
    second = await configure(api, token, stages["s2"], "responsible_changed", name="Second")
    reorder = """mutation($s: ID!, $ids: [ID!]!) { reorderTriggers(stageId: $s, triggerIds: $ids) { __typename
        ... on StageTriggers { triggers { name position } } ... on ValidationError { errors { field message } } } }"""

    done = (await api.as_(token, reorder, s=str(stages["s2"].id), ids=[second["id"], first["id"]]))["reorderTriggers"]
    assert [(t["name"], t["position"]) for t in done["triggers"]] == [("Second", 0), ("First", 1)]
    partial = (await api.as_(token, reorder, s=str(stages["s2"].id), ids=[second["id"]]))["reorderTriggers"]
    assert refused_fields(partial) == {"triggerIds": "list every trigger of the stage exactly once"}
    shown = await api.as_(token, """query($id: ID!) { stage(id: $id) { triggers { name description } } }""",
                          id=str(stages["s2"].id))
    assert [t["name"] for t in shown["stage"]["triggers"]] == ["Second", "First"]


async def test_an_employee_cannot_read_a_stages_triggers_or_their_webhook_urls(db, api):
    stages, token = await six_stages(), await admin()
    await configure(api, token, stages["s2"], "webhook")
    _, employee = await make_token("employee", "Eve")
    transport = api.transport
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test",
                                 headers={"Authorization": f"Bearer {employee}"}) as client:
        body = (await client.post("/graphql", json={"query": "query($id: ID!) { stage(id: $id) { triggers { "
                                                             "webhookUrl } } }",
                                                    "variables": {"id": str(stages["s2"].id)}})).json()
        lookup = (await client.post("/graphql", json={"query": "query($id: ID!) { triggers(stageId: $id) { "
                                                               "__typename } }",
                                                      "variables": {"id": str(stages["s2"].id)}})).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "webhookUrl" not in json.dumps(body.get("data") or {})
    assert lookup["data"]["triggers"]["__typename"] == "ForbiddenError"


async def test_a_deals_activations_are_shown_to_whoever_may_see_the_deal(db, api):
    stages, token = await six_stages(), await admin()
    await configure(api, token, stages["s3"], "responsible_changed")
    maria, marias = await make_token("employee", "Maria")
    _, toms = await make_token("employee", "Tom")
    deal = await deal_in(stages["s1"])
    await element_service.update_element("deal", deal.id, {"responsible": maria.id}, actor=SYSTEM)

    query = """query($id: ID!) { deal(id: $id) { __typename ... on Deal { triggerActivations(first: 5) {
        outcome toStage { code } } } } }"""
    own = (await api.as_(marias, query, id=str(deal.id)))["deal"]
    assert own["triggerActivations"] == [{"outcome": "moved", "toStage": {"code": "s3"}}]
    assert (await api.as_(toms, query, id=str(deal.id)))["deal"]["__typename"] == "ForbiddenError"
