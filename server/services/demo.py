"""Demo data for an empty database: a small sales team, clients, pipelines, rules that show each action
(hand-written here, or the action's own example) and triggers of every type the demo's events can fire.

Everything goes through the services a client would use, so the rules are validated and revisioned
and the leads and deals start their stage runs like any other.
"""

from datetime import date, timedelta
from typing import Any

from server.db import transaction
from server.models import CustomField, Pipeline, Stage, User, WorkCalendar
from server.rules.actions import registry
from server.rules.actions.params import describe_params, example_params
from server.services.access import SYSTEM, Actor, actor_for
from server.services.bookings import ResourceInput, ServiceInput, create_resource, create_service
from server.services.clients import Address, ClientInput, create_company, create_contact
from server.services.documents import TemplateInput, save_template
from server.services.elements import create_element
from server.services.rules import RuleInput, create_rule
from server.services.triggers import TriggerInput, create_trigger

OFFICE_HOURS = {"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "18:00"}

# key, name, role, supervisor key, time zone, working hours
USERS: tuple[tuple[str, str, str, str | None, str, dict[str, Any]], ...] = (
    ("anna", "Anna Schmidt", "admin", None, "Europe/Berlin", OFFICE_HOURS),
    ("lena", "Lena Fischer", "manager", "anna", "Europe/Berlin", OFFICE_HOURS),
    ("jonas", "Jonas Weber", "manager", "anna", "Europe/Vienna", OFFICE_HOURS),
    ("maria", "Maria Becker", "employee", "lena", "Europe/Berlin", OFFICE_HOURS),
    ("tom", "Tom Hughes", "employee", "lena", "Europe/London", {"days": [0, 1, 2, 3], "start": "08:00", "end": "16:00"}),
    ("sven", "Sven Hoffmann", "employee", "jonas", "Europe/Berlin", OFFICE_HOURS),
)

CALENDAR: dict[str, Any] = {
    "timezone": "Europe/Berlin", "work_days": [0, 1, 2, 3, 4], "day_start": "09:00", "day_end": "18:00",
}
# German public holidays on fixed dates (MM-DD), for this year and the next.
HOLIDAYS = ("01-01", "05-01", "10-03", "12-25", "12-26")

# entity type, code, name, type, options
CUSTOM_FIELDS: tuple[tuple[str, str, str, str, list[str]], ...] = (
    ("deal", "priority", "Priority", "select", ["low", "normal", "high"]),
    ("deal", "contract_number", "Contract number", "string", []),
    ("lead", "campaign", "Campaign", "string", []),
    ("lead", "interest", "What they are interested in", "text", []),
    ("contact", "position", "Position", "string", []),
    ("contact", "newsletter", "Newsletter", "bool", []),
    ("company", "customer_since", "Customer since", "date", []),
    # What a web form fills in for a lead: Create contact for lead and Convert read these.
    ("lead", "contact_name", "Contact name", "string", []),
    ("lead", "email", "Email", "string", []),
    ("lead", "phone", "Phone", "string", []),
    # Booking fields hold the bookings of resources (Book a resource, Cancel booking).
    ("deal", "partner_visit", "Partner visit", "booking", []),
)

# Bookable resources: key, name, kind, the user of an employee resource.
RESOURCES: tuple[tuple[str, str, str, str | None], ...] = (
    ("showroom", "Showroom Munich", "thing", None),
    ("jonas", "Jonas Weber", "employee", "jonas"),
)
# key, name, default duration in minutes
SERVICES: tuple[tuple[str, str, int], ...] = (
    ("partner_visit", "Partner visit", 90),
    ("contract_signing", "Contract signing", 30),
)

# A client's typed addresses: (value, type), first first. Numbers in E.164, as the clients service stores them.
Addresses = tuple[tuple[str, str], ...]

# name, emails, phones, responsible
COMPANIES: tuple[tuple[str, Addresses, Addresses, str], ...] = (
    ("Nordlicht Solar GmbH", (("info@nordlicht-solar.example", "work"),), (("+493055501200", "work"),), "maria"),
    ("Bergmann & Söhne KG", (("kontakt@bergmann-soehne.example", "work"),), (("+498955503400", "work"),), "sven"),
    ("Alpenblick Hotels AG", (("office@alpenblick.example", "work"),), (("+43155507788", "work"),), "jonas"),
    ("Hafenkante Logistik GmbH", (("service@hafenkante.example", "work"),), (("+494055509100", "work"),), "tom"),
)

# name, emails, phones, company, position: each contact has a work and a home address, a mobile and a work number.
CONTACTS: tuple[tuple[str, Addresses, Addresses, str | None, str], ...] = (
    ("Katrin Vogel", (("k.vogel@nordlicht-solar.example", "work"), ("katrin.vogel@mail.example", "home")),
     (("+4915155501201", "mobile"), ("+493055501201", "work")), "Nordlicht Solar GmbH", "Purchasing"),
    ("Michael Bergmann", (("m.bergmann@bergmann-soehne.example", "work"), ("michael.bergmann@mail.example", "home")),
     (("+4917155503401", "mobile"), ("+498955503401", "work")), "Bergmann & Söhne KG", "Owner"),
    ("Eva Gruber", (("eva.gruber@alpenblick.example", "work"), ("eva.gruber@post.example", "home")),
     (("+436645557789", "mobile"), ("+43155507789", "work")), "Alpenblick Hotels AG", "Partner manager"),
    ("Finn Petersen", (("f.petersen@hafenkante.example", "work"), ("finn.petersen@mail.example", "home")),
     (("+4916055509102", "mobile"), ("+494055509102", "work")), "Hafenkante Logistik GmbH", "CFO"),
    ("Julia Klein", (("julia.klein@studio-klein.example", "work"), ("julia.klein@mail.example", "home")),
     (("+4917655504242", "mobile"), ("+493055504242", "work")), None, "Freelancer"),
)


def _addresses(entries: Addresses) -> list[Address]:
    return [Address(value=value, type=address_type) for value, address_type in entries]


# entity type, name, default, stages (code, name, semantic)
PIPELINES: tuple[tuple[str, str, bool, tuple[tuple[str, str, str], ...]], ...] = (
    ("lead", "Leads", True, (("new", "New", "in_progress"), ("in_progress", "In progress", "in_progress"),
                             ("qualified", "Qualified", "success"), ("junk", "Junk", "failure"))),
    ("deal", "Sales", True, (("new", "New", "in_progress"), ("documents", "Preparing documents", "in_progress"),
                             ("invoice", "Invoice", "in_progress"), ("in_progress", "In progress", "in_progress"),
                             ("won", "Won", "success"), ("lost", "Lost", "failure"))),
    ("deal", "Partners", False, (("negotiation", "Negotiation", "in_progress"), ("contract", "Contract", "in_progress"),
                                 ("won", "Won", "success"), ("lost", "Lost", "failure"))),
)

# (pipeline, stage) → rules as RuleInput fields. In params, user fields name a user key, `stage` a stage code.
RULES: dict[tuple[str, str], tuple[dict[str, Any], ...]] = {
    ("Leads", "new"): (
        {"key": "assign", "action_type": "change_responsible", "title": "Hand out unassigned leads in turn",
         "params": {"users": ["maria", "tom", "sven"], "mode": "round_robin"},
         "condition": [[{"field": "responsible", "op": "empty"}]]},
        {"key": "contact_for_lead", "action_type": "create_contact_for_lead", "title": "Make a contact from the form",
         "lane": "after_previous", "params": {}, "condition": [[{"field": "contact", "op": "empty"}]]},
        {"key": "call_back", "action_type": "task", "title": "Call the new lead back", "lane": "after_previous",
         "params": {"title": "Call back: {{lead.title}}", "description": "Source: {{lead.source}}",
                    "deadline_days": 1, "priority": "high"}},
        {"key": "nudge", "action_type": "add_comment", "title": "Nudge after two hours",
         "params": {"text": "Still new after two hours: has anyone reached {{lead.contact.name|default('the customer')}}?"},
         "timing": {"kind": "after", "amount": 2, "unit": "hours"}},
    ),
    ("Leads", "in_progress"): (
        {"key": "reply", "action_type": "wait", "title": "Wait for the customer's reply",
         "params": {"days": 5, "description": "offer sent, waiting for an answer"}},
        {"key": "no_reply", "action_type": "change_stage", "title": "No reply: move to Junk", "lane": "after_previous",
         "params": {"stage": "junk"}, "condition": [[{"field": "rules.reply.ended_by", "op": "eq", "value": "timeout"}]]},
        {"key": "follow_up", "action_type": "schedule_call", "title": "Follow-up call in two days",
         "params": {"subject": "Follow up: {{lead.title}}", "description": "{% if lead.contact %}{{lead.contact.name}}, {{lead.contact.phone}}{% else %}No contact yet{% endif %}",
                    "start_in": 2, "start_unit": "days", "start_time": "10:00", "duration_minutes": 15,
                    "reminder_minutes": 10, "auto_complete": True}},
        {"key": "watch", "action_type": "control", "title": "Let the supervisor keep an eye on it",
         "params": {"message": "{{lead.title}} ({{lead.responsible.name|default('nobody assigned')}}) waits for the customer's reply"}},
    ),
    ("Leads", "junk"): (
        {"key": "spam", "action_type": "add_to_exceptions", "title": "Spam: stop storing the sender's mail",
         "params": {"delete_element": True}, "condition": [[{"field": "source", "op": "eq", "value": "spam"}]]},
        {"key": "clean_up", "action_type": "delete_element", "title": "Delete junk leads after 30 days", "params": {},
         "timing": {"kind": "after", "amount": 30, "unit": "days"}},
    ),
    ("Leads", "qualified"): (
        {"key": "note", "action_type": "history_entry", "title": "Note the qualification",
         "params": {"text": "Qualified by {{lead.responsible.name|default('nobody')}} on {{today}}"}},
        {"key": "convert", "action_type": "convert_lead", "title": "Convert into a sales deal",
         "params": {"pipeline": "Sales", "create_contact": True}},
        {"key": "announce", "action_type": "feed_post", "title": "Announce the new deal", "lane": "after_previous",
         "params": {"title": "New deal from a lead", "everyone": True,
                    "text": "{{lead.responsible.name|default('Someone')}} qualified “{{lead.title}}”: deal {{rules.convert.deal_id}} opened"}},
    ),
    ("Sales", "new"): (
        {"key": "big_deal", "action_type": "modify_element", "title": "Big deals are high priority",
         "params": {"fields": {"priority": "high"}}, "condition": [[{"field": "amount", "op": "gt", "value": 5000}]]},
        {"key": "welcome", "action_type": "history_entry", "title": "Record the new deal",
         "params": {"text": "{% if deal.company %}Deal for {{deal.company.name}}{% else %}Deal “{{deal.title}}” (no company yet){% endif %}"
                             " opened by {{deal.responsible.name|default('nobody')}}"}},
        {"key": "kick_off", "action_type": "schedule_meeting", "title": "Kick-off meeting",
         "params": {"subject": "Kick-off: {{deal.title}}", "description": "With {{deal.contact.name|default('the customer')}}",
                    "start_in": 2, "start_unit": "days", "start_time": "10:00", "duration_minutes": 60,
                    "important": True, "reminder_minutes": 30, "auto_complete": True}},
        {"key": "tell_managers", "action_type": "notification", "title": "Tell the managers",
         "params": {"text": "New deal: {{deal.title}}", "roles": ["manager"]}},
    ),
    ("Sales", "documents"): (
        {"key": "offer", "action_type": "create_document", "title": "Make the offer",
         "params": {"template": "Offer", "fields": {"title": "Offer: {{deal.title}}"}}},
        {"key": "contract", "action_type": "task", "title": "Prepare the contract",
         "params": {"title": "Prepare the contract for {{deal.title}}", "deadline_days": 2,
                    "participants": ["anna"], "wait_until_closed": True}},
        {"key": "to_invoice", "action_type": "change_stage", "title": "Contract ready: send the invoice",
         "lane": "after_previous", "params": {"stage": "invoice"}, "run_as": "lena"},
    ),
    ("Sales", "invoice"): (
        {"key": "payment", "action_type": "wait", "title": "Wait for the payment",
         "params": {"days": 7, "description": "invoice sent"}},
        {"key": "closing", "action_type": "task", "title": "Follow up the day before the close date",
         "params": {"title": "{{deal.title}} closes tomorrow: follow up", "priority": "high"},
         "timing": {"kind": "before_field", "field": "close_date", "amount": 1, "unit": "days"}},
        {"key": "payment_check", "action_type": "activity", "title": "Check the payment",
         "params": {"subject": "Check the payment of {{deal.title}}", "start_in": 3, "start_unit": "days",
                    "start_time": "09:00", "auto_complete": True}},
    ),
    ("Sales", "in_progress"): (
        {"key": "check_in", "action_type": "add_comment", "title": "Check in after three working days",
         "params": {"text": "No news for three days: call {{deal.contact.name|default('the customer')}}"
                             "{% if deal.contact.phone %} ({{deal.contact.phone}}){% endif %}."},
         "timing": {"kind": "after", "amount": 3, "unit": "days", "working_time": "company"}},
    ),
    ("Sales", "won"): (
        {"key": "promo", "action_type": "generate_code", "title": "Promo code for the next order",
         "params": {"length": 8, "digits": True, "upper": True}},
        {"key": "promo_comment", "action_type": "add_comment", "title": "Send the promo code",
         "lane": "after_previous", "params": {"text": "Your promo code: {{rules.promo.code}}"}},
        {"key": "customer_since", "action_type": "change_company", "title": "Mark the company a customer",
         "params": {"fields": {"customer_since": "{{today}}"}}, "condition": [[{"field": "company", "op": "not_empty"}]]},
        {"key": "newsletter", "action_type": "change_contact", "title": "Sign the contact up for the newsletter",
         "params": {"fields": {"newsletter": True}}, "condition": [[{"field": "contact", "op": "not_empty"}]]},
        {"key": "celebrate", "action_type": "feed_post", "title": "Celebrate the win",
         "params": {"title": "Deal won", "text": "{{deal.title}} is won!", "everyone": True}},
    ),
    ("Sales", "lost"): (
        {"key": "why_lost", "action_type": "task", "title": "Ask why we lost",
         "params": {"title": "Ask {{deal.contact.name|default('the customer')}} why we lost {{deal.title}}", "responsible": "lena",
                    "deadline_days": 3}},
    ),
    ("Partners", "negotiation"): (
        {"key": "intro", "action_type": "add_comment", "title": "Announce the talks",
         "params": {"text": "Partner talks started with {{deal.company.name|default('a new partner')}}.", "author": "jonas"}},
        {"key": "visit", "action_type": "book_resource", "title": "Book the showroom and Jonas for a partner visit",
         "params": {"field": "partner_visit", "service": "partner_visit", "resources": ["showroom", "jonas"],
                    "start_in": 2, "start_unit": "days", "start_time": "10:00"}},
    ),
    ("Partners", "contract"): (
        {"key": "legal", "action_type": "task", "title": "Legal review",
         "params": {"title": "Review the partner contract with {{deal.company.name|default('the partner')}}", "responsible": "anna",
                    "wait_until_closed": True}},
        {"key": "reviewed", "action_type": "history_entry", "title": "Record the review", "lane": "after_previous",
         "params": {"text": "Legal review done at {{rules.legal.closed_at}}"}},
        {"key": "visit_done", "action_type": "cancel_booking", "title": "Talks are over: free the partner visit",
         "params": {"field": "partner_visit"}},
    ),
    ("Partners", "won"): (
        {"key": "close_today", "action_type": "modify_element", "title": "Set the close date",
         "params": {"fields": {"close_date": "{{today}}"}}},
    ),
}

# (pipeline, stage) → triggers as TriggerInput fields. None fires while the demo loads: the events its rules cause
# (a lead handed out, a deal's priority set) reach no trigger that listens to them in that pipeline, or none whose
# settings they fit (the demo's own booking is not a contract signing).
TRIGGERS: dict[tuple[str, str], tuple[dict[str, Any], ...]] = {
    ("Leads", "new"): (
        {"name": "Contact form", "trigger_type": "web_form", "settings": {"form": "contact-us"}},
    ),
    ("Leads", "in_progress"): (
        {"name": "Missed call: call back", "trigger_type": "missed_call", "settings": {}},
        {"name": "They called us", "trigger_type": "incoming_call", "settings": {"min_duration_s": 30}},
        {"name": "We reached them", "trigger_type": "outgoing_call", "settings": {"min_duration_s": 60}},
        {"name": "Chat message", "trigger_type": "chat_message", "settings": {},
         "condition": [[{"field": "event.text", "op": "not_empty"}]]},
    ),
    ("Sales", "documents"): (
        {"name": "Pricing link clicked", "trigger_type": "link_clicked",
         "settings": {"url": "https://pipewright.example/pricing"}},
        {"name": "Amount agreed", "trigger_type": "field_changed", "settings": {"fields": ["amount"]},
         "condition": [[{"field": "amount", "op": "gte", "value": "1000"}]]},
    ),
    ("Sales", "invoice"): (
        {"name": "Contract task closed", "trigger_type": "task_status_changed", "settings": {"statuses": ["closed"]},
         "condition": [[{"field": "event.title", "op": "contains", "value": "contract"}]]},
    ),
    ("Sales", "in_progress"): (
        {"name": "Customer replied", "trigger_type": "incoming_email", "settings": {}, "allow_back": True},
        {"name": "Offer opened", "trigger_type": "email_opened", "settings": {"subject_contains": "offer"}},
        {"name": "Offer viewed", "trigger_type": "document_viewed", "settings": {}},  # the offer's public link
    ),
    ("Sales", "won"): (
        {"name": "Paid in full", "trigger_type": "payment_received", "settings": {"min_amount": "1000"}},
        {"name": "Paid in the shop", "trigger_type": "webhook", "settings": {},
         "condition": [[{"field": "event.payload.status", "op": "eq", "value": "paid"}]]},
    ),
    ("Partners", "negotiation"): (
        {"name": "New partner manager: talk again", "trigger_type": "responsible_changed", "settings": {},
         "allow_back": True},
    ),
    ("Partners", "contract"): (
        {"name": "Contract signing booked", "trigger_type": "resource_booked", "settings": {},
         "condition": [[{"field": "event.service", "op": "eq", "value": "Contract signing"}]]},
    ),
}

# title, stage, responsible, contact, source, amount, custom fields. An employee links only contacts they
# may see (services/access.py): the responsible of a lead is the one of its contact's company.
LEADS: tuple[tuple[str, str, str | None, str | None, str, int | None, dict[str, Any]], ...] = (
    ("Solar panels for the warehouse roof", "new", "maria", "Katrin Vogel", "web form", 12000,
     {"campaign": "spring-solar", "interest": "40 kWp on a flat roof"}),
    ("Website redesign enquiry", "new", "maria", "Julia Klein", "email", None, {"campaign": "newsletter"}),
    ("Fleet tracking trial", "in_progress", "tom", "Finn Petersen", "trade fair", 4500, {}),
    ("Workshop lighting", "qualified", "sven", "Michael Bergmann", "phone", 2800, {}),
    # From a web form, nobody assigned yet: the round robin picks someone, the form becomes a contact.
    ("Heat pump enquiry", "new", None, None, "web form", 9000,
     {"campaign": "heat-pumps", "contact_name": "Paul Wagner", "email": "paul.wagner@mail.example",
      "phone": "+49 170 5550 8080"}),
)

# title, pipeline, stage, responsible, company, contacts, amount, close in days, priority
DEALS: tuple[tuple[str, str, str, str, str, tuple[str, ...], int, int | None, str], ...] = (
    ("Nordlicht: 40 kWp rooftop system", "Sales", "new", "maria", "Nordlicht Solar GmbH", ("Katrin Vogel",), 48000, 30, "normal"),
    ("Bergmann: LED retrofit", "Sales", "documents", "sven", "Bergmann & Söhne KG", ("Michael Bergmann",), 3200, 14, "normal"),
    ("Hafenkante: tracking licences", "Sales", "invoice", "tom", "Hafenkante Logistik GmbH", ("Finn Petersen",), 9600, 10, "high"),
    ("Bergmann: maintenance contract", "Sales", "in_progress", "sven", "Bergmann & Söhne KG", ("Michael Bergmann",), 1800, 45, "low"),
    ("Nordlicht: battery storage", "Sales", "won", "maria", "Nordlicht Solar GmbH", ("Katrin Vogel",), 15500, 0, "normal"),
    ("Alpenblick: guest Wi-Fi resale", "Partners", "negotiation", "jonas", "Alpenblick Hotels AG", ("Eva Gruber",), 25000, 60, "normal"),
    ("Alpenblick: referral agreement", "Partners", "contract", "jonas", "Alpenblick Hotels AG", ("Eva Gruber",), 7000, 21, "high"),
)


OFFER = """<style>body { font-family: sans-serif; } h1 { color: #2b4c7e; } td { padding: 4px 12px; }</style>
<p>{{own.name|default('Pipewright Demo GmbH')}} · {{own.address|default('Musterstraße 1, 10115 Berlin')}}</p>
<h1>Offer {{document.number}}</h1>
<p>{{document.date}}</p>
<p>For {{deal.company.name|default('')}}{% if deal.contact %}, attn. {{deal.contact.name}}{% endif %}</p>
<h2>{{deal.title}}</h2>
<table><tr><td>Amount</td><td>{{deal.amount|default('')}} {{deal.currency|default('')}}</td></tr>
<tr><td>Valid until</td><td>{{deal.close_date|default('')}}</td></tr></table>
<p>Your contact: {{deal.responsible.name|default('')}} {{deal.responsible.email|default('')}}</p>"""
DOCUMENT_TEMPLATES = (("Offer", OFFER, "OF-", "yearly"),)


def _email(key: str) -> str:
    return f"{key}@pipewright.example"


def _params(action_type: str, params: dict[str, Any], users: dict[str, int], stages: dict[str, int],
            pipelines: dict[str, int], document_templates: dict[str, int], bookables: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Table params with user keys, stage codes and pipeline names replaced by ids (found by the param's kind),
    and a booking's resources and service by their keys here."""
    resolved = dict(params)
    if action_type == "book_resource":
        resolved["resources"] = [bookables["resources"][key] for key in params["resources"]]
        resolved["service"] = bookables["services"][params["service"]]
    for spec in describe_params(registry()[action_type].Params):
        if spec.name not in resolved:
            continue
        value = resolved[spec.name]
        if spec.kind == "user":
            resolved[spec.name] = users[value]
        elif spec.kind == "users":
            resolved[spec.name] = [users[key] for key in value]
        elif spec.kind == "stage":
            resolved[spec.name] = stages[value]
        elif spec.kind == "pipeline":
            resolved[spec.name] = pipelines[value]
        elif spec.kind == "document_template":
            resolved[spec.name] = document_templates[value]
    return resolved


async def _seed_examples(shown: set[str], pipelines: dict[str, int], stages: dict[str, dict[str, int]],
                         actor: Actor) -> None:
    """Every action no hand-written rule above shows gets its own example, on the first stage of the
    default pipeline of its kind: a new action is in the demo without an edit here."""
    for key, action in registry().items():
        if key in shown:
            continue
        pipeline = next(name for entity_type, name, default, _ in PIPELINES
                        if entity_type == action.example.entity_type and default)
        first_stage = next(iter(stages[pipeline].values()))
        params = await example_params(action, pipeline_id=pipelines[pipeline])
        await create_rule(first_stage, RuleInput(action_type=key, key=key, title=action.example.title, params=params),
                          actor=actor)


async def load_demo_if_empty() -> bool:
    """Load the demo data in one transaction if there are no pipelines and no users; True if it did."""
    async with transaction():
        if await Pipeline.exists() or await User.exists():
            return False
        users: dict[str, int] = {}
        actors: dict[str, Actor] = {}
        for key, name, role, supervisor, tz, hours in USERS:
            user = await User.create(name=name, email=_email(key), role=role, timezone=tz, working_hours=hours,
                                     supervisor_id=users[supervisor] if supervisor else None)
            users[key] = user.id
            actors[key] = actor_for(user)
        today = date.today()
        holidays = [f"{year}-{day}" for year in (today.year, today.year + 1) for day in HOLIDAYS]
        await WorkCalendar.create(**CALENDAR, holidays=holidays)
        for entity_type, code, name, field_type, options in CUSTOM_FIELDS:
            await CustomField.create(entity_type=entity_type, code=code, name=name, type=field_type, options=options)
        bookables: dict[str, dict[str, int]] = {"resources": {}, "services": {}}
        for key, name, kind, user_key in RESOURCES:
            bookables["resources"][key] = (await create_resource(ResourceInput(
                name=name, kind=kind, user_id=users[user_key] if user_key else None), actor=actors["anna"])).id
        for key, name, minutes in SERVICES:
            bookables["services"][key] = (await create_service(ServiceInput(name=name, duration_minutes=minutes),
                                                               actor=actors["anna"])).id
        companies: dict[str, tuple[int, str]] = {}  # name → id, responsible's key
        for name, emails, phones, owner in COMPANIES:
            firm = await create_company(ClientInput(name=name, emails=_addresses(emails), phones=_addresses(phones),
                                                       responsible_id=users[owner]), actor=actors[owner])
            companies[name] = (firm.id, owner)
        contacts: dict[str, int] = {}
        for name, emails, phones, company_name, job_title in CONTACTS:
            company_id, owner = companies[company_name] if company_name else (None, "maria")
            person = await create_contact(ClientInput(
                name=name, emails=_addresses(emails), phones=_addresses(phones), company_id=company_id,
                responsible_id=users[owner], fields={"position": job_title}), actor=actors[owner])
            contacts[name] = person.id
        stages: dict[str, dict[str, int]] = {}
        pipelines: dict[str, int] = {}
        for position, (entity_type, name, default, stage_rows) in enumerate(PIPELINES):
            pipeline = await Pipeline.create(name=name, entity_type=entity_type, is_default=default, position=position)
            pipelines[name] = pipeline.id
            stages[name] = {}
            for index, (code, stage_name, semantic) in enumerate(stage_rows):
                stage = await Stage.create(pipeline=pipeline, code=code, name=stage_name, position=index, semantic=semantic)
                stages[name][code] = stage.id
        document_templates: dict[str, int] = {}
        for name, body, prefix, counter in DOCUMENT_TEMPLATES:
            template = await save_template(TemplateInput(name=name, body=body, prefix=prefix, counter=counter),
                                           actor=actors["anna"])
            document_templates[name] = template.id
        for (pipeline_name, code), rules in RULES.items():
            for rule in rules:
                values = {**rule, "params": _params(rule["action_type"], rule["params"], users, stages[pipeline_name],
                                                    pipelines, document_templates, bookables)}
                run_as = values.pop("run_as", None)
                await create_rule(stages[pipeline_name][code], RuleInput(**values, run_as_id=users.get(run_as or "")),
                                  actor=actors["anna"])
        for (pipeline_name, code), stage_triggers in TRIGGERS.items():
            for trigger in stage_triggers:
                await create_trigger(stages[pipeline_name][code], TriggerInput(**trigger), actor=actors["anna"])
        shown = {rule["action_type"] for rules in RULES.values() for rule in rules}
        await _seed_examples(shown, pipelines, stages, actors["anna"])
        for title, code, responsible, contact, source, amount, custom in LEADS:
            fields = {"title": title, "source": source, "amount": amount,
                      "responsible": users[responsible] if responsible else None,
                      "contact": contacts[contact] if contact else None, **custom}
            await create_element("lead", fields, stage_id=stages["Leads"][code],
                                 actor=actors[responsible] if responsible else SYSTEM)
        for title, pipeline_name, code, responsible, company, names, amount, days, priority in DEALS:
            fields = {"title": title, "amount": amount, "currency": "EUR", "responsible": users[responsible],
                      "company": companies[company][0], "priority": priority,
                      "close_date": (today + timedelta(days=days)).isoformat() if days is not None else None}
            await create_element("deal", fields, stage_id=stages[pipeline_name][code],
                                 contact_ids=[contacts[n] for n in names], actor=actors[responsible])
    return True
