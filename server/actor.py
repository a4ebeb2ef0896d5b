"""Who is acting: a user with a role, or the system (`SYSTEM`), as every layer passes it around (the permission
matrix over it is services/access.py; the live hub filters events with it)."""

from dataclasses import dataclass
from typing import Any

from server.kinds import Role

ROLES = tuple(Role)


@dataclass(frozen=True)
class Actor:
    user_id: int
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin

    @property
    def sees_all_elements(self) -> bool:
        return self.role in (Role.admin, Role.manager)


@dataclass(frozen=True)
class SystemActor:
    """The system itself: the engine, the demo loader, the CLI, start-up. It may do everything and acts for
    no user. Passed on purpose (`SYSTEM`), never implied by a missing argument."""

    user_id: None = None
    is_admin = True
    sees_all_elements = True


SYSTEM = SystemActor()

# Whoever a service acts for: a signed-in person, or the system.
Acting = Actor | SystemActor


def actor_for(user: Any) -> Actor:
    return Actor(user_id=user.id, role=Role(user.role))
