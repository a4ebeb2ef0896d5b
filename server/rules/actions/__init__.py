"""The action catalogue: every module in this package that defines `ACTION` is registered."""

import importlib
import pkgutil
from functools import cache

from server.rules.actions.base import Action


@cache
def registry() -> dict[str, Action]:
    actions: dict[str, Action] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        action = getattr(module, "ACTION", None)
        if isinstance(action, Action):
            actions[action.key] = action
    return actions


def get_action(key: str) -> Action | None:
    return registry().get(key)
