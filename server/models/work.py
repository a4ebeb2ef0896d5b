"""What rules create for people: activities (calls, meetings), notifications, feed posts."""

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from server.models.crm import User


class Activity(Model):
    """A call, meeting, generic activity or to-do of one responsible user, on an element.

    A rule naming several responsibles creates one activity per user (each completes their own).
    """

    id = fields.IntField(primary_key=True)
    kind = fields.CharField(max_length=20)  # call | meeting | activity | todo
    subject = fields.CharField(max_length=255)
    description = fields.TextField(default="")
    start_at = fields.DatetimeField()
    end_at = fields.DatetimeField()
    important = fields.BooleanField(default=False)
    reminder_minutes = fields.IntField(null=True)
    responsible: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    responsible_id: int
    element_type = fields.CharField(max_length=10, null=True)
    element_id = fields.IntField(null=True)
    auto_complete = fields.BooleanField(default=False)  # completed when the element changes stage
    completed = fields.BooleanField(default=False)
    completed_at = fields.DatetimeField(null=True)
    rule_run_id = fields.IntField(null=True)
    sequence = fields.IntField(default=0)  # iCalendar SEQUENCE: bumped on every change
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "activity"
        indexes = (("element_type", "element_id"), ("responsible_id", "start_at"))
        unique_together = (("rule_run_id", "responsible"),)


class Notification(Model):
    """An in-app notification to one user, optionally about an element."""

    id = fields.IntField(primary_key=True)
    recipient: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    recipient_id: int
    sender: fields.ForeignKeyNullableRelation["User"] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    sender_id: int | None
    kind = fields.CharField(max_length=20, default="notification")  # notification | control | call | meeting
    text = fields.TextField()
    read = fields.BooleanField(default=False)
    read_at = fields.DatetimeField(null=True)
    element_type = fields.CharField(max_length=10, null=True)
    element_id = fields.IntField(null=True)
    rule_run_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "notification"
        indexes = (("recipient_id", "read"),)


class FeedPost(Model):
    """An activity stream post. Who sees it is materialised in FeedRecipient at posting time."""

    id = fields.IntField(primary_key=True)
    author: fields.ForeignKeyNullableRelation["User"] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    author_id: int | None
    title = fields.CharField(max_length=255, default="")
    body = fields.TextField()
    to_everyone = fields.BooleanField(default=False)
    element_type = fields.CharField(max_length=10, null=True)
    element_id = fields.IntField(null=True)
    rule_run_id = fields.IntField(null=True, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "feed_post"


class FeedRecipient(Model):
    id = fields.IntField(primary_key=True)
    post: fields.ForeignKeyRelation[FeedPost] = fields.ForeignKeyField(
        "models.FeedPost", related_name="recipients", on_delete=fields.CASCADE
    )
    post_id: int
    user: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    user_id: int

    class Meta:
        table = "feed_recipient"
        unique_together = (("post", "user"),)


class RoundRobinCursor(Model):
    """The next position of a Change responsible rule in round robin mode, kept per rule."""

    id = fields.IntField(primary_key=True)
    rule_id = fields.IntField(unique=True)
    position = fields.IntField(default=0)

    class Meta:
        table = "round_robin_cursor"
