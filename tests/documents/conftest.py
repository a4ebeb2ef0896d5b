from typing import Any

import pytest

from server.actor import SYSTEM
from server.models import Company, Contact, Deal, DocumentTemplate
from server.services import documents as document_service
from server.services import elements as element_service
from tests.support import make_pipeline, make_user
from tests.support.clients import work

OFFER = """<h1>Offer {{document.number}}</h1>
<p>{{own.name|default('')}}</p>
<h2>{{deal.title}}</h2>
<p>For {{deal.company.name}}, {{deal.contact.name}}. Your contact: {{deal.responsible.name}}.</p>"""


@pytest.fixture
async def sales(db: Any) -> dict[str, Any]:
    """A deal pipeline, an owner, and an Acme deal in its first stage (no rules yet)."""
    pipeline, stages = await make_pipeline()
    owner = await make_user("Maria Becker", role="employee")
    company = await Company.create(name="Acme GmbH", emails=work("office@acme.example"))
    contact = await Contact.create(name="Carla Jung", emails=work("carla@acme.example"), company_id=company.id)
    return {"pipeline": pipeline, "stages": stages, "owner": owner, "company": company, "contact": contact}


async def new_deal(sales: dict[str, Any], title: str = "Acme roof", stage: str = "new") -> Deal:
    deal = await element_service.create_element(
        "deal", {"title": title, "responsible": sales["owner"].id, "company": sales["company"].id},
        stage_id=sales["stages"][stage].id, contact_ids=[sales["contact"].id], actor=SYSTEM)
    assert isinstance(deal, Deal)
    return deal


async def offer_template(**values: Any) -> DocumentTemplate:
    values = {"name": "Offer", "body": OFFER, "prefix": "OF-", "counter": "yearly", **values}
    return await document_service.save_template(document_service.TemplateInput(**values), actor=SYSTEM)
