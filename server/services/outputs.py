"""Run outputs as people read them: user and stage names instead of ids and codes, times in the viewer's zone,
money with its currency, lists and records in words; never a Python repr.

The texts are made for the viewer of the request (server.i18n's current locale and zone).
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from server import i18n
from server.i18n import gettext as _
from server.models import RuleRun, Stage, User
from server.services import users
from server.services.access import Acting

# Outputs that hold user ids, stage codes (or ids), amounts.
USER_OUTPUTS = ("responsible_id", "notified", "user_id", "user_ids", "author_id", "recipient_id", "recipient_ids")
STAGE_OUTPUTS = ("stage", "stage_id", "to_stage", "from_stage")
MONEY_OUTPUTS = ("amount", "total")


def _user_ids(value: Any) -> Iterable[int]:
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, int) and not isinstance(item, bool):
            yield item
        elif isinstance(item, str) and item.isdigit():
            yield int(item)


async def readable_outputs(rule_runs: Sequence[RuleRun], *, stages: Iterable[Stage],
                           actor: Acting) -> dict[int, list[tuple[str, str]]]:
    """Each run's outputs (by run id) as (output name, text); `stages` are those an output may name (the
    element's pipelines)."""
    wanted = {ident for run in rule_runs for key, value in (run.outputs or {}).items() if key in USER_OUTPUTS
              for ident in _user_ids(value)}
    people = await users.users_by_id(wanted, actor=actor)
    stage_list = list(stages)
    stage_names = {**{str(s.id): s.name for s in stage_list}, **{s.code: s.name for s in stage_list}}
    return {run.id: [(key, _text(key, value, people, stage_names)) for key, value in (run.outputs or {}).items()]
            for run in rule_runs}


def _text(key: str, value: Any, people: dict[int, User], stage_names: dict[str, str]) -> str:
    if key in USER_OUTPUTS:
        idents = list(_user_ids(value))
        if idents or value in (None, []):
            named = [people[i].name if i in people else _("user %(id)s (deleted)") % {"id": i}
                     for i in idents]
            return ", ".join(named) if named else i18n.EMPTY
    if key in STAGE_OUTPUTS and str(value) in stage_names:
        return stage_names[str(value)]
    if key in MONEY_OUTPUTS and i18n.decimal_of(value) is not None:
        return i18n.money(value)
    return shown(value, key)


def shown(value: Any, key: str = "") -> str:
    """Any JSON value of an output in words."""
    if value is None or value == "" or value == [] or value == {}:
        return i18n.EMPTY
    if isinstance(value, bool):
        return i18n.yes_no(value)
    if isinstance(value, (int, Decimal)) and (key.endswith("_id") or key.endswith("_ids") or key == "id"):
        return str(value)  # a record's number, not a quantity: no thousands separator
    if isinstance(value, (int, float, Decimal)):
        return i18n.number(value)
    if isinstance(value, list):
        return ", ".join(shown(item, key) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{name}: {shown(item, name)}" for name, item in value.items())
    if isinstance(value, str) and _looks_like_a_moment(value):
        return i18n.when(value)
    return str(value)


def _looks_like_a_moment(text: str) -> bool:
    """ISO timestamps as actions store them (2026-01-13T09:00:00+00:00); a plain date or a code is left alone."""
    if len(text) < 16 or text[4:5] != "-" or "T" not in text:
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True
