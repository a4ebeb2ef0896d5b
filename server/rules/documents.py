"""Documents: a number allocated in the creating transaction, the HTML rendered at once with the rules' sandbox,
the PDF left to its own durable step (`rules/pdf.py`).

Numbers are gapless per template and period: the counter row is taken with one `UPDATE … RETURNING` inside the
transaction that writes the document (PostgreSQL holds the row lock until it commits; SQLite's write
transactions are serialised), so a rolled-back document gives its number back and two at once never share one.
"""

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape
from tortoise.connection import get_connection

from server import clock
from server.config import settings
from server.models import Document, DocumentTemplate, Element
from server.rules import dispatch, elements, placeholders
from server.rules.placeholders import Record, Value
from server.rules.templates import render_async

COUNTERS = ("continuous", "yearly", "monthly")
OWN_FIELDS = ("name", "address", "email", "phone", "tax_id")
ASSETS = ("stamp", "signature")
ASSET_SCHEME = "asset:"  # {{document.stamp}} renders to asset:stamp; only such URLs are ever loaded


def own_company() -> dict[str, str]:
    """The company's own details (PIPEWRIGHT_COMPANY_*), as {{own.<name>}}."""
    config = settings()
    return {"name": config.company_name, "address": config.company_address, "email": config.company_email,
            "phone": config.company_phone, "tax_id": config.company_tax_id}


async def names(entity_type: str) -> Record:
    """Every name a document template may use: the element (also as `element` and under its type, with its
    contact, company and responsible), `own` (the company's details), `document` (number, date, stamp,
    signature), `now` and `today`."""
    element = await placeholders.element_record(entity_type)
    own = Record({name: Value("string") for name in OWN_FIELDS}, hint=f"its fields: {', '.join(OWN_FIELDS)}")
    document = Record({"number": Value("string"), "date": Value("date"), **{a: Value("string") for a in ASSETS}})
    return Record({**element.fields, entity_type: element, "element": element, "own": own, "document": document,
                   "now": Value("string"), "today": Value("string")},
                  hint=f"names start with {entity_type}., own., document., or are now / today")


def period_of(counter: str, at: datetime) -> str:
    return {"yearly": f"{at:%Y}", "monthly": f"{at:%Y-%m}"}.get(counter, "")


def format_number(template: DocumentTemplate, period: str, value: int) -> str:
    """OF-2026-007: the prefix, the period when the counter resets, the counter padded to the template's digits."""
    return f"{template.prefix}{period + '-' if period else ''}{value:0{max(template.digits, 1)}d}"


async def next_number(template: DocumentTemplate, *, at: datetime | None = None) -> str:
    """Take the template's next number. Call inside the transaction that writes the document."""
    period = period_of(template.counter, at or clock.utcnow())
    connection = get_connection("default")
    marks = ("$1", "$2") if connection.capabilities.dialect == "postgres" else ("?", "?")
    await connection.execute_query(
        f"INSERT INTO document_counter (template_id, period, next_value) VALUES ({marks[0]}, {marks[1]}, 1) "
        "ON CONFLICT (template_id, period) DO NOTHING", [template.id, period])
    rows = await connection.execute_query_dict(  # (execute_query drops an UPDATE's RETURNING rows on asyncpg)
        f"UPDATE document_counter SET next_value = next_value + 1 WHERE template_id = {marks[0]} "
        f"AND period = {marks[1]} RETURNING next_value - 1 AS value", [template.id, period])
    return format_number(template, period, int(rows[0]["value"]))


async def peek_number(template: DocumentTemplate) -> str:
    """The number the next document would get (for a preview; nothing is taken)."""
    from server.models import DocumentCounter

    period = period_of(template.counter, clock.utcnow())
    counter = await DocumentCounter.get_or_none(template_id=template.id, period=period)
    return format_number(template, period, counter.next_value if counter else 1)


def escaped(value: Any) -> Any:
    """Values as HTML text: an element's title "<b>" shows as written and cannot add markup to the page."""
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, Mapping):
        return {k: escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escaped(v) for v in value]
    return value


def document_context(base: Mapping[str, Any], element_type: str, *, number: str, at: datetime,
                     overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The run's (or a preview's) context with the field overrides applied to the element, `own` and
    `document` added, every value escaped as HTML text."""
    element = {**base.get("element", {}), **(overrides or {})}
    context = {**base, **(overrides or {}), "element": element, element_type: element, "own": own_company(),
               "document": {"number": number, "date": at.date().isoformat(),
                            **{a: ASSET_SCHEME + a for a in ASSETS}}}
    return escaped(context)  # type: ignore[no-any-return]  # a dict in, a dict out


async def element_context(element_type: str, element: Element) -> dict[str, Any]:
    """The element as a document template sees it outside a run (a preview, a document made by hand)."""
    data = await elements.build_context(element_type, element)
    now = clock.utcnow()
    return {**data, "element": data, element_type: data, "rules": {}, "now": now.isoformat(timespec="seconds"),
            "today": now.date().isoformat()}


async def create(template: DocumentTemplate, element_type: str, element: Element, base: Mapping[str, Any], *,
                 overrides: Mapping[str, Any] | None = None, rule_run_id: int | None = None,
                 created_by_id: int | None = None) -> Document:
    """A numbered document with its HTML; its PDF is made after the transaction commits. Call inside
    `transaction()`. A run that repeats gets the document its first attempt wrote."""
    if rule_run_id is not None and (existing := await Document.get_or_none(rule_run_id=rule_run_id)) is not None:
        return existing
    now = clock.utcnow()
    number = await next_number(template, at=now)
    html = await render_async(template.body, document_context(base, element_type, number=number, at=now,
                                                               overrides=overrides))
    document = await Document.create(
        template_id=template.id, element_type=element_type, element_id=element.id, title=template.name,
        number=number, html=html, token=secrets.token_urlsafe(24), pdf_due_at=now, rule_run_id=rule_run_id,
        created_by_id=created_by_id)
    dispatch.DOCUMENTS.now([document.id])
    return document


EXAMPLE_BODY = """<h1>Offer {{document.number}}</h1>
<p>{{own.name|default('')}}</p>
<p>For {{deal.company.name|default(deal.contact.name|default(''))}}, {{document.date}}</p>
<h2>{{deal.title}}</h2>
<p>Amount: {{deal.amount|default('')}} {{deal.currency|default('')}}</p>
<p>Your contact: {{deal.responsible.name|default('')}}</p>"""


async def example_template(name: str, entity_type: str = "deal") -> DocumentTemplate:
    """The template an action example names: the one of that name, made with a plain offer body if missing."""
    template = await DocumentTemplate.filter(name=name, entity_type=entity_type).order_by("id").first()
    if template is None:
        template = await DocumentTemplate.create(name=name, entity_type=entity_type, body=EXAMPLE_BODY,
                                                 prefix=f"{name[:2].upper()}-", counter="yearly")
    return template
