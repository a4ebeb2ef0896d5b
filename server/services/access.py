"""The permission matrix, in one place: every face (GraphQL, admin) and service asks here.

- admin: everything, and the only role that changes configuration (pipelines, stages, rules,
  triggers, users, API tokens).
- manager: reads and works on every lead and deal.
- employee: reads and works on the leads and deals they are responsible for.
- contacts and companies (clients): admins and managers see every one; an employee sees a client
  they are responsible for, or one linked to a lead or deal they are responsible for (a lead's
  contact or company, a deal's company or one of its contacts) - the same clients the API shows
  them through their own elements. Linking a client to a lead or deal needs the right to see it.

Every service takes the acting `actor`, always: a person (`Actor`), or `SYSTEM` (the engine, the demo loader,
the CLI), which may do everything and is passed on purpose.
"""

from collections.abc import Collection
from typing import Any

from server.actor import ROLES, SYSTEM, Acting, Actor, SystemActor, actor_for
from server.db import column
from server.errors import Forbidden
from server.models import Company, Contact, Deal, DealContact, Lead

__all__ = [
    "ROLES", "SYSTEM", "Acting", "Actor", "SystemActor", "actor_for", "can_see_element", "element_scope",
    "require_admin", "require_element", "visible_clients",
]


def require_admin(actor: Acting) -> None:
    if isinstance(actor, Actor) and not actor.is_admin:
        raise Forbidden("only admins may change pipelines, rules, triggers, users and API tokens")


def can_see_element(actor: Acting, element: Any) -> bool:
    return isinstance(actor, SystemActor) or actor.sees_all_elements or element.responsible_id == actor.user_id


def require_element(actor: Acting, element: Any) -> None:
    """Employees work only on what they are responsible for. The message does not reveal the element."""
    if not can_see_element(actor, element):
        raise Forbidden("you may only see and change leads and deals you are responsible for")


async def visible_clients(actor: Acting, kind: str, ids: Collection[int]) -> set[int]:
    """The ids among `ids` of contacts or companies (`kind`) that exist and `actor` may see (rule above)."""
    wanted = set(ids)
    model = Contact if kind == "contact" else Company
    if not wanted:
        return set()
    existing: set[int] = set(await column(model.filter(id__in=wanted), "id"))
    if isinstance(actor, SystemActor) or actor.sees_all_elements:
        return existing
    mine: set[int] = set(await column(model.filter(id__in=existing, responsible_id=actor.user_id), "id"))
    field = f"{kind}_id"
    for element_model in (Lead, Deal) if kind == "company" else (Lead,):
        linked = element_model.filter(responsible_id=actor.user_id, **{f"{field}__in": existing - mine})
        mine |= set(await column(linked, field))
    if kind == "contact" and existing - mine:
        links = DealContact.filter(contact_id__in=existing - mine, deal__responsible_id=actor.user_id)
        mine |= set(await column(links, "contact_id"))
    return mine


def element_scope(actor: Acting) -> dict[str, Any]:
    """Filter kwargs restricting element queries to what `actor` may see."""
    if isinstance(actor, SystemActor) or actor.sees_all_elements:
        return {}
    return {"responsible_id": actor.user_id}
