"""The trigger catalogue: every module on this package's path that defines `TRIGGER` is registered."""

import importlib
import pkgutil
from functools import cache
from typing import Any

from server.rules.triggers.base import TriggerType


@cache
def registry() -> dict[str, TriggerType[Any]]:
    """Key → trigger type, from the modules found on `__path__`."""
    types: dict[str, TriggerType[Any]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        trigger = getattr(module, "TRIGGER", None)
        if isinstance(trigger, TriggerType):
            types[trigger.key] = trigger
    return types


def get_trigger_type(key: str) -> TriggerType[Any] | None:
    return registry().get(key)


def listening_to(event: str) -> list[str]:
    """The keys of the trigger types an event of kind `event` may fire."""
    return [key for key, trigger in registry().items() if trigger.event == event]
