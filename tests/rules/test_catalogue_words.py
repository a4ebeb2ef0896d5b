"""Every action and trigger type explains itself in the designer's catalogue: a one-line summary, and what its
outputs (or its event's data) are in words, not as keys."""

import pytest

from server.rules.actions import registry as actions
from server.rules.triggers import registry as triggers

ACTIONS = sorted(actions().values(), key=lambda a: a.key)
TRIGGERS = sorted(triggers().values(), key=lambda t: t.key)


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.key)
def test_an_action_says_what_it_does_and_what_it_gives_in_words(action) -> None:  # type: ignore[no-untyped-def]
    assert action.summary.endswith(".") and len(action.summary) <= 110, action.summary
    assert bool(action.gives) == bool(action.outputs), "outputs in words exactly when there are outputs"
    assert not any(key in action.gives for key in action.outputs if "_" in key), f"keys in {action.gives!r}"


@pytest.mark.parametrize("kind", TRIGGERS, ids=lambda t: t.key)
def test_a_trigger_says_when_it_fires_and_what_conditions_can_compare(kind) -> None:  # type: ignore[no-untyped-def]
    assert kind.summary.endswith(".") and len(kind.summary) <= 110, kind.summary
    assert bool(kind.gives) == bool(kind.data_fields)
    assert not any(key in kind.gives for key in kind.data_fields if "_" in key), f"keys in {kind.gives!r}"
