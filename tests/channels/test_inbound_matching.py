"""Finding the clients an inbound address belongs to: exact entries, any case, non-ASCII, and LIKE's wildcards
taken literally (a parameterised query over the JSON address columns)."""

import pytest

from server.models import Company, Contact
from server.services.inbound import clients_with

pytestmark = pytest.mark.production_backend


def entries(*values: str) -> list[dict[str, str]]:
    return [{"value": value, "type": "work"} for value in values]


async def test_an_address_finds_the_contacts_and_companies_that_hold_it_exactly(db):
    anna = await Contact.create(name="Anna", emails=entries("Anna@Acme.example"), phones=entries("+49301234567"))
    firm = await Company.create(name="Acme", emails=entries("anna@acme.example"))
    jurgen = await Contact.create(name="Jürgen", emails=entries("jürgen@müller.example"))
    await Contact.create(name="Hanna", emails=entries("hanna@acme.example"))  # contains "anna@acme.example"
    await Contact.create(name="Wild", emails=entries("a_b%c@x.example"))

    assert [c.name for c in await clients_with("ANNA@acme.example")] == [anna.name, firm.name]
    assert [c.name for c in await clients_with("+49301234567")] == [anna.name]
    assert [c.name for c in await clients_with("Jürgen@Müller.example")] == [jurgen.name]
    assert await clients_with("axbxc@x.example") == []  # _ and % are no wildcards
    assert [c.name for c in await clients_with("a_b%c@x.example")] == ["Wild"]
    assert await clients_with("nobody@acme.example") == []
    assert await clients_with("x' OR '1'='1") == []
