"""Who may do what: API tokens, admin sessions, recovery codes, login attempts."""

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from server.models.crm import User


class ApiToken(Model):
    """A bearer token for the GraphQL API. Only its SHA-256 is stored: the token is shown once."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    user: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "models.User", related_name="api_tokens", on_delete=fields.CASCADE
    )
    user_id: int
    token_hash = fields.CharField(max_length=64, unique=True)
    prefix = fields.CharField(max_length=16)  # the first characters, to recognise a token in lists
    created_by_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_token"


class AdminSession(Model):
    """A browser session of the admin. The cookie holds a random id, the table its SHA-256.

    `stage` is password (first factor passed, TOTP pending), setup (TOTP enrolment pending)
    or full.
    """

    id = fields.IntField(primary_key=True)
    session_hash = fields.CharField(max_length=64, unique=True)
    user: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    user_id: int
    stage = fields.CharField(max_length=20, default="password")
    csrf_token = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_seen_at = fields.DatetimeField(auto_now_add=True)
    ip = fields.CharField(max_length=64, default="")

    class Meta:
        table = "admin_session"


class RecoveryCode(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    user_id: int
    code_hash = fields.CharField(max_length=255)
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "recovery_code"


class LoginAttempt(Model):
    """A failed login step, counted per account and per IP for the lockout."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=300)  # account:<email> or ip:<address>
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "login_attempt"
        indexes = (("key", "created_at"),)


class SetupCode(Model):
    """The setup code of the first-admin page, printed on the console at start. Only its SHA-256 is kept.

    At most one row: each start that finds no admin who can log in replaces it, and it is deleted once
    the code is used or an admin exists.
    """

    id = fields.IntField(primary_key=True)
    code_hash = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "setup_code"
