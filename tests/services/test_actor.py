"""Who acts is always said: every service takes `actor` with no default, and the system is an explicit `SYSTEM`."""

import importlib
import inspect
import pkgutil

import pytest

import server.services
from server.actor import SYSTEM, Actor
from server.errors import Forbidden
from server.kinds import Role
from server.services import pipelines
from server.services.access import require_admin


def _service_functions() -> list[tuple[str, inspect.Signature]]:
    found = []
    for info in pkgutil.iter_modules(server.services.__path__):
        module = importlib.import_module(f"server.services.{info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__ and not name.startswith("_"):
                found.append((f"{info.name}.{name}", inspect.signature(function)))
    return found


def test_no_service_defaults_its_actor() -> None:
    """A forgotten `actor` used to mean "the system may do anything"; now it is a TypeError at the call."""
    defaulted = [name for name, signature in _service_functions()
                 if "actor" in signature.parameters and signature.parameters["actor"].default is not inspect.Parameter.empty]
    assert len(_service_functions()) > 50
    assert not defaulted, "services with a default actor: " + ", ".join(defaulted)


async def test_a_call_without_an_actor_is_refused_and_the_system_is_named(db: object) -> None:
    with pytest.raises(TypeError, match="actor"):
        await pipelines.create_pipeline("Sales", "deal")  # type: ignore[call-arg]  # the omission under test
    created = await pipelines.create_pipeline("Sales", "deal", actor=SYSTEM)
    assert created.name == "Sales"


def test_the_system_passes_the_admin_check_and_a_manager_does_not() -> None:
    require_admin(SYSTEM)
    with pytest.raises(Forbidden):
        require_admin(Actor(user_id=1, role=Role.manager))
