"""Document numbers: gapless and unique under concurrency, reset per year or month when the template says so."""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from server.actor import SYSTEM
from server.db import transaction
from server.models import Document, DocumentTemplate
from server.rules import documents
from server.services import documents as document_service
from tests.documents.conftest import new_deal, offer_template


async def _fifty_at_once(sales) -> list[str]:
    template = await offer_template(counter="continuous", digits=4)
    deals = [await new_deal(sales, title=f"Deal {i}") for i in range(50)]
    made = await asyncio.gather(*(document_service.create_document(template.id, "deal", d.id, actor=SYSTEM)
                                  for d in deals))
    return [d.number for d in made]


async def test_fifty_documents_made_at_once_get_fifty_consecutive_numbers(sales):
    numbers = await _fifty_at_once(sales)
    assert sorted(numbers) == [f"OF-{n:04d}" for n in range(1, 51)]


@pytest.mark.production_backend
async def test_fifty_documents_made_at_once_get_fifty_consecutive_numbers_on_postgres(sales):
    numbers = await _fifty_at_once(sales)
    assert sorted(numbers) == [f"OF-{n:04d}" for n in range(1, 51)]


async def test_a_document_whose_transaction_rolls_back_gives_its_number_back(sales):
    template = await offer_template(counter="continuous")
    deal = await new_deal(sales)
    with pytest.raises(RuntimeError):
        async with transaction():
            await documents.create(template, "deal", deal, await documents.element_context("deal", deal))
            raise RuntimeError("the run failed after making it")
    made = await document_service.create_document(template.id, "deal", deal.id, actor=SYSTEM)
    assert made.number == "OF-001"


async def test_a_yearly_counter_starts_again_in_a_new_year(sales):
    template = await offer_template(counter="yearly")
    new_year = datetime(2027, 1, 1, 0, 0, 5, tzinfo=timezone.utc)
    async with transaction():
        last_year = [await documents.next_number(template, at=new_year - timedelta(days=1)) for _ in range(3)]
        this_year = [await documents.next_number(template, at=new_year) for _ in range(2)]
    assert last_year == ["OF-2026-001", "OF-2026-002", "OF-2026-003"]
    assert this_year == ["OF-2027-001", "OF-2027-002"]


async def test_a_monthly_counter_starts_again_each_month_and_a_continuous_one_never(db):
    monthly = await DocumentTemplate.create(name="Invoice", body="x", prefix="IN-", counter="monthly", digits=2)
    continuous = await DocumentTemplate.create(name="Contract", body="x", prefix="C", counter="continuous")
    async with transaction():
        numbers = [await documents.next_number(t, at=datetime(2026, month, 3, tzinfo=timezone.utc))
                   for month in (4, 4, 5) for t in (monthly, continuous)]
    assert numbers == ["IN-2026-04-01", "C001", "IN-2026-04-02", "C002", "IN-2026-05-01", "C003"]
    assert await Document.all().count() == 0  # numbers alone make no documents
