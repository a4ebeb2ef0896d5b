"""Who is acting: a user with a role, as every layer passes it around (the permission matrix over it is
services/access.py; the live hub filters events with it)."""

from dataclasses import dataclass
from typing import Any

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
