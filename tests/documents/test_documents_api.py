"""Documents through GraphQL, as a client would use them: a template saved (an unknown placeholder refused with a
did-you-mean), previewed against a deal, a document made, listed with its link and PDF, and revoked."""

from tests.documents.conftest import OFFER, new_deal
from tests.support import make_token, wait_until
from tests.support.api import refused_fields

TEMPLATE = """mutation($input: DocumentTemplateInput!) { createDocumentTemplate(input: $input) {
  __typename ... on DocumentTemplate { id name counter } ... on ValidationError { errors { field message } } } }"""
PREVIEW = """query($deal: ID!, $body: String) { previewDocument(dealId: $deal, body: $body) {
  __typename ... on DocumentPreview { html } ... on ValidationError { errors { field message } } } }"""
MAKE = """mutation($template: ID!, $deal: ID!) { createDocument(templateId: $template, elementType: "deal",
  elementId: $deal) { __typename ... on Document { id number pdfStatus } } }"""
LIST = """query($deal: ID!) { documents(elementType: "deal", elementId: $deal) {
  id number pdfStatus publicLink pdfUrl revokedAt } }"""
REVOKE = """mutation($id: ID!) { revokeDocument(id: $id) { __typename ... on Document { publicLink revokedAt } } }"""


async def test_a_template_is_saved_previewed_used_listed_and_its_link_revoked(sales, api):
    _, token = await make_token("admin", "Anna")
    refused = (await api.as_(token, TEMPLATE, input={"name": "Offer", "body": "<p>{{deal.titel}}</p>"}))
    assert refused_fields(refused["createDocumentTemplate"]) == {
        "body": "{{deal.titel}}: deal has no field 'titel'; did you mean 'deal.title'?"}
    saved = (await api.as_(token, TEMPLATE, input={"name": "Offer", "body": OFFER, "prefix": "OF-",
                                                    "counter": "continuous"}))["createDocumentTemplate"]
    assert saved["__typename"] == "DocumentTemplate" and saved["counter"] == "continuous"
    deal = await new_deal(sales, title="Acme roof repair")

    preview = (await api.as_(token, PREVIEW, deal=str(deal.id), body=OFFER))["previewDocument"]
    assert "<h1>Offer PREVIEW</h1>" in preview["html"] and "<h2>Acme roof repair</h2>" in preview["html"]

    made = (await api.as_(token, MAKE, template=saved["id"], deal=str(deal.id)))["createDocument"]
    assert made["number"] == "OF-001"

    async def ready() -> dict | None:
        [row] = (await api.as_(token, LIST, deal=str(deal.id)))["documents"]
        return row if row["pdfStatus"] == "ready" else None

    listed = await wait_until(ready, what="the PDF")
    assert listed["publicLink"].startswith("/d/") and listed["pdfUrl"] == f"/admin/documents/{made['id']}.pdf"
    assert (await api.get(listed["publicLink"])).status_code == 200

    revoked = (await api.as_(token, REVOKE, id=made["id"]))["revokeDocument"]
    assert revoked["publicLink"] is None and revoked["revokedAt"]
    assert (await api.get(listed["publicLink"])).status_code == 404


async def test_an_employee_may_not_write_templates(sales, api):
    _, token = await make_token("employee", "Erik")
    body = (await api.as_(token, TEMPLATE, input={"name": "Offer", "body": OFFER}))["createDocumentTemplate"]
    assert body["__typename"] == "ForbiddenError"
