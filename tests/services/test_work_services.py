"""The services every face calls for notifications, activities and the activity stream, with their permissions."""

from datetime import UTC, datetime

import pytest

from server.errors import Forbidden, NotFound, ValidationFailed
from server.models import Activity, Event
from server.services import activities, feed, notifications
from server.services.access import SYSTEM, Actor
from tests.support import make_user

pytestmark = pytest.mark.production_backend


def actor(user) -> Actor:
    return Actor(user.id, user.role)


async def test_notifications_unread_count_and_marking_read(db):
    ann, bob = await make_user("Ann"), await make_user("Bob")
    last_event = await Event.all().order_by("-id").first()
    first, second = [n for text in ("one", "two") for n in await notifications.notify([ann.id], text, sender_id=bob.id)]
    [for_bob] = await notifications.notify([bob.id], "bob's")

    assert await notifications.unread_count(ann.id, actor=actor(ann)) == 2
    assert [n.text for n in (await notifications.list_notifications(ann.id, actor=actor(ann))).items] == ["two", "one"]

    [marked] = await notifications.mark_read([first.id], actor=actor(ann))
    assert marked.read and marked.read_at is not None
    assert await notifications.unread_count(ann.id, actor=actor(ann)) == 1
    assert [n.id for n in (await notifications.list_notifications(ann.id, actor=actor(ann), unread_only=True)).items] == [second.id]
    assert await notifications.mark_all_read(ann.id, actor=actor(ann)) == 1
    assert await notifications.unread_count(ann.id, actor=actor(ann)) == 0
    assert await notifications.unread_count(bob.id, actor=SYSTEM) == 1
    new_events = Event.filter(kind="notification", id__gt=last_event.id if last_event else 0).order_by("id")
    assert [e.audience for e in await new_events] == [[ann.id], [ann.id], [bob.id]]
    assert for_bob.kind == "notification"


async def test_a_user_may_only_read_and_mark_their_own_notifications(db):
    ann, bob = await make_user("Ann"), await make_user("Bob", role="admin")
    [note] = await notifications.notify([ann.id], "private")

    with pytest.raises(Forbidden):
        await notifications.mark_read([note.id], actor=actor(bob))
    with pytest.raises(Forbidden):
        await notifications.list_notifications(ann.id, actor=actor(bob))
    with pytest.raises(Forbidden):
        await notifications.mark_all_read(ann.id, actor=actor(bob))
    with pytest.raises(NotFound):
        await notifications.mark_read([note.id + 1000], actor=actor(ann))
    assert await notifications.unread_count(ann.id, actor=SYSTEM) == 1


async def _activity(user_id: int, **values) -> Activity:
    return await Activity.create(kind="meeting", subject="Meet", start_at=datetime(2030, 1, 1, 9, tzinfo=UTC),
                                 end_at=datetime(2030, 1, 1, 10, tzinfo=UTC), responsible_id=user_id, **values)


async def test_completing_an_activity_is_for_its_responsible_and_moves_its_sequence(db):
    ann, boss = await make_user("Ann"), await make_user("Boss", role="admin")
    meeting = await _activity(ann.id)

    with pytest.raises(Forbidden):
        await activities.complete_activity(meeting.id, actor=actor(boss))
    done = await activities.complete_activity(meeting.id, actor=actor(ann))

    assert (done.completed, done.sequence) == (True, 1) and done.completed_at is not None
    await meeting.refresh_from_db()
    assert meeting.completed and meeting.sequence == 1
    with pytest.raises(ValidationFailed):
        await activities.complete_activity(meeting.id, actor=actor(ann))


async def test_activity_lists_respect_roles(db):
    ann, bob, manager = await make_user("Ann"), await make_user("Bob"), await make_user("Mia", role="manager")
    mine = await _activity(ann.id, element_type="deal", element_id=99)
    await _activity(bob.id)

    assert [a.id for a in await activities.list_for_user(ann.id, actor=actor(ann))] == [mine.id]
    assert [a.id for a in await activities.list_for_user(ann.id, actor=actor(manager))] == [mine.id]
    with pytest.raises(Forbidden):
        await activities.list_for_user(ann.id, actor=actor(bob))
    assert [a.id for a in await activities.list_for_element("deal", 99, actor=actor(manager))] == [mine.id]
    with pytest.raises(NotFound):  # a deleted deal's activities: managers and admins only
        await activities.list_for_element("deal", 99, actor=actor(ann))


async def test_calendar_token_is_the_users_own(db):
    ann, bob = await make_user("Ann"), await make_user("Bob")
    with pytest.raises(Forbidden):
        await activities.calendar_url_token(ann.id, actor=actor(bob))
    with pytest.raises(Forbidden):
        await activities.rotate_calendar_token(ann.id, actor=actor(bob))
    assert await activities.calendar_url_token(ann.id, actor=actor(ann))


async def test_feed_posts_by_users_are_visible_to_author_and_recipients(db):
    ann, bob, carl = await make_user("Ann"), await make_user("Bob"), await make_user("Carl", role="manager")
    post = await feed.create_post(actor(ann), title="Hello", body="Team lunch at noon", user_ids=[bob.id])

    assert [p.id for p in (await feed.list_visible(ann.id, actor=actor(ann))).items] == [post.id]
    assert [p.id for p in (await feed.list_visible(bob.id, actor=actor(bob))).items] == [post.id]
    assert (await feed.list_visible(carl.id, actor=actor(carl))).items == []
    assert await feed.recipients(post.id) == [bob.id]
    with pytest.raises(Forbidden):
        await feed.list_visible(bob.id, actor=actor(carl))
    with pytest.raises(ValidationFailed):
        await feed.create_post(actor(ann), title="", body="nobody", user_ids=[])
