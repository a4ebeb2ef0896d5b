"""My work (services/activities.open_work): a user's open tasks and activities, grouped overdue / today / later,
"today" being the day in the viewer's time zone."""

from datetime import UTC, datetime, timedelta

import pytest

from server.errors import Forbidden, ValidationFailed
from server.models import Activity, Task
from server.services import activities
from server.services.access import Actor
from tests.support import ClockControl, make_user

pytestmark = pytest.mark.production_backend

# 22:30 UTC is 23:30 in Berlin (winter): half an hour of Berlin's day is left.
NOW = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)


def actor(user) -> Actor:  # type: ignore[no-untyped-def]
    return Actor(user.id, user.role)


def titles(groups: dict[str, list[activities.WorkItem]]) -> dict[str, list[str]]:
    return {group: [item.title for item in items] for group, items in groups.items()}


async def _meeting(user_id: int, subject: str, start_at: datetime, **values) -> Activity:  # type: ignore[no-untyped-def]
    return await Activity.create(kind=values.pop("kind", "meeting"), subject=subject, start_at=start_at,
                                 end_at=start_at + timedelta(hours=1), responsible_id=user_id, **values)


async def test_open_work_is_grouped_by_the_viewers_day(db, clock_control: ClockControl) -> None:  # type: ignore[no-untyped-def]
    clock_control.offset = NOW - clock_control.real()
    maria, bob = await make_user("Maria", timezone="Europe/Berlin"), await make_user("Bob")
    await Task.create(title="Late offer", responsible_id=maria.id, deadline=NOW - timedelta(hours=2))
    await Task.create(title="Before midnight in Berlin", responsible_id=maria.id, deadline=NOW + timedelta(minutes=15))
    await Task.create(title="After midnight in Berlin", responsible_id=maria.id, deadline=NOW + timedelta(hours=1))
    await Task.create(title="Some day", responsible_id=maria.id)
    await Task.create(title="Done already", responsible_id=maria.id, status="closed", deadline=NOW)
    await Task.create(title="Bob's, Maria helps", responsible_id=bob.id, participants=[maria.id],
                      deadline=NOW + timedelta(minutes=20))
    await Task.create(title="Bob's alone", responsible_id=bob.id, deadline=NOW)
    await _meeting(maria.id, "Call the bank", NOW + timedelta(minutes=10), kind="call")
    await _meeting(maria.id, "Old meeting, done", NOW - timedelta(days=1), completed=True)

    groups = await activities.open_work(maria.id, actor=actor(maria), zone="Europe/Berlin")
    assert titles(groups) == {
        "overdue": ["Late offer"],
        "today": ["Call the bank", "Before midnight in Berlin", "Bob's, Maria helps"],
        "later": ["After midnight in Berlin", "Some day"],
    }
    # in UTC the same evening has 1.5 hours left, so the 23:30 UTC task is due today
    in_utc = await activities.open_work(maria.id, actor=actor(maria), zone="UTC")
    assert "After midnight in Berlin" in titles(in_utc)["today"]
    calls = await activities.open_work(maria.id, actor=actor(maria), zone="Europe/Berlin", kind="call")
    assert titles(calls) == {"overdue": [], "today": ["Call the bank"], "later": []}


async def test_open_work_refuses_another_users_for_employees_and_names_a_bad_kind(db) -> None:  # type: ignore[no-untyped-def]
    maria, bob = await make_user("Maria"), await make_user("Bob")
    boss = await make_user("Boss", role="manager")
    await Task.create(title="Bob's", responsible_id=bob.id)
    with pytest.raises(Forbidden):
        await activities.open_work(bob.id, actor=actor(maria), zone=None)
    assert titles(await activities.open_work(bob.id, actor=actor(boss), zone=None))["later"] == ["Bob's"]
    with pytest.raises(ValidationFailed) as refused:
        await activities.open_work(maria.id, actor=actor(maria), zone=None, kind="holiday")
    assert refused.value.errors[0].field == "kind" and "task, call, meeting" in refused.value.errors[0].message


def test_an_unknown_zone_reads_as_utc() -> None:
    assert activities.zone_named("Mars/Olympus").key == "UTC"
    assert activities.zone_named(None).key == "UTC"
