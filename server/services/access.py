"""The permission matrix, in one place: every face (GraphQL, admin) and service asks here.

- admin: everything, and the only role that changes configuration (pipelines, stages, rules,
  triggers, users, API tokens).
- manager: reads and works on every lead and deal.
- employee: reads and works on the leads and deals they are responsible for.

`actor=None` is the system (the engine, the demo loader, the CLI): it may do everything.
"""

from dataclasses import dataclass
from typing import Any

from server.errors import Forbidden

ROLES = ("admin", "manager", "employee")


@dataclass(frozen=True)
class Actor:
    user_id: int
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def sees_all_elements(self) -> bool:
        return self.role in ("admin", "manager")


def actor_for(user: Any) -> Actor:
    return Actor(user_id=user.id, role=user.role)


def require_admin(actor: Actor | None) -> None:
    if actor is not None and not actor.is_admin:
        raise Forbidden("only admins may change pipelines, rules, triggers, users and API tokens")


def can_see_element(actor: Actor | None, element: Any) -> bool:
    return actor is None or actor.sees_all_elements or element.responsible_id == actor.user_id


def require_element(actor: Actor | None, element: Any) -> None:
    """Employees work only on what they are responsible for. The message does not reveal the element."""
    if not can_see_element(actor, element):
        raise Forbidden("you may only see and change leads and deals you are responsible for")


def element_scope(actor: Actor | None) -> dict[str, Any]:
    """Filter kwargs restricting element queries to what `actor` may see."""
    if actor is None or actor.sees_all_elements:
        return {}
    return {"responsible_id": actor.user_id}
