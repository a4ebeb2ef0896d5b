"""Contacts and companies: lists, and each one's page with its fields and its leads and deals."""

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.i18n import N_
from server.i18n import gettext as _
from server.services import clients, users
from web.guard import page
from web.templating import render

KINDS = {"contacts": "contact", "companies": "company"}
KIND_NAMES = (N_("contact"), N_("company"))  # client.html shows the kind as `_(kind)`


def _kind(request: Request) -> str:
    return KINDS[request.url.path.split("/")[2]]


def client_fields(kind: str, client: Any, *, company: Any, responsible: Any) -> list[tuple[str, Any]]:
    """(label, value) rows of a contact's or company's page; custom fields by their code. The template
    translates the labels (`_(label)`); those with the address's type in them are translated here."""
    rows: list[tuple[str, Any]] = [(N_("Name"), client.name)]
    rows += [(_("Email (%(type)s)") % {"type": a.get("type", "")}, a.get("value", "")) for a in client.emails or []]
    rows += [(_("Phone (%(type)s)") % {"type": a.get("type", "")}, a.get("value", "")) for a in client.phones or []]
    if kind == "contact":
        rows.append((N_("Company"), company.name if company else "—"))
    rows.append((N_("Responsible"), responsible.name if responsible else "—"))
    rows += [(name.replace("_", " ").capitalize(), value) for name, value in sorted((client.custom or {}).items())]
    return rows


@page()
async def client_list(request: Request) -> Response:
    kind = _kind(request)
    search = request.query_params.get("q") or ""
    found = await clients.list_clients(kind, actor=request.state.actor, search=search or None)
    return render(request, "clients.html", {"kind": kind, "items": found, "q": search, "shown": clients.LIST_MAX})


@page()
async def client_page(request: Request) -> Response:
    kind = _kind(request)
    actor = request.state.actor
    ident = int(request.path_params["client_id"])
    client = await (clients.get_contact(ident, actor=actor) if kind == "contact"
                    else clients.get_company(ident, actor=actor))
    company = None
    company_id = getattr(client, "company_id", None)
    if company_id:
        company = await clients.get_company(company_id, actor=actor)
    people = await users.users_by_id([client.responsible_id] if client.responsible_id else [], actor=actor)
    linked = await clients.client_elements(kind, ident, actor=actor)
    contacts = await clients.list_company_contacts(ident, actor=actor) if kind == "company" else []
    return render(request, "client.html", {
        "kind": kind, "client": client, "company": company, "contacts": contacts, "linked": linked,
        "fields": client_fields(kind, client, company=company, responsible=people.get(client.responsible_id or 0)),
    })


routes = [
    route
    for plural in KINDS
    for route in (
        Route(f"/{plural}", client_list, methods=["GET"]),
        Route(f"/{plural}/{{client_id:int}}", client_page, methods=["GET"]),
    )
]
