"""The action catalogue: every module on this package's path that defines `ACTION` is registered."""

import importlib
import pkgutil
from functools import cache
from typing import Any

from server.rules.actions.base import Action


@cache
def registry() -> dict[str, Action[Any]]:
    """Key → action, from the modules found on `__path__` (call `registry.cache_clear()` after extending it)."""
    actions: dict[str, Action[Any]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        action = getattr(module, "ACTION", None)
        if isinstance(action, Action):
            actions[action.key] = action
    return actions


def get_action(key: str) -> Action[Any] | None:
    return registry().get(key)


def released_by(event: str) -> list[str]:
    """The keys of the blocking actions whose wait `event` ends (their `released_by` names it)."""
    return [key for key, action in registry().items() if event in action.released_by]
