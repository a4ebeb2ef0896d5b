"""Employees as admins manage them: role, supervisor, working hours, absence, password."""

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from server import events
from server.db import transaction
from server.errors import FieldError, NotFound, ValidationFailed
from server.i18n import LOCALES, supported
from server.kinds import Role
from server.models import RecoveryCode, User
from server.rules.timing import parse_hh_mm, zone
from server.services import auth
from server.services.access import ROLES, Acting, Actor, SystemActor, require_admin

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass
class UserInput:
    """A user as the admin form submits it; None keeps the value on update."""

    email: str | None = None
    name: str | None = None
    role: str | None = None
    supervisor_id: int | None = None
    clear_supervisor: bool = False
    timezone: str | None = None
    locale: str | None = None  # en or de; "" for the instance's default
    working_hours: dict[str, Any] | None = None
    absent: bool | None = None
    active: bool | None = None
    password: str | None = None


async def list_users(*, actor: Acting) -> list[User]:
    """The staff directory: every signed-in user may see who works here (to pick a responsible)."""
    return await User.all().order_by("name", "id")


async def users_by_id(user_ids: Collection[int], *, actor: Acting) -> dict[int, User]:
    """The users named, by id, from the same directory (authors of a timeline, an element's responsible)."""
    ids = set(user_ids)
    return {user.id: user for user in await User.filter(id__in=ids)} if ids else {}


async def get_user(user_id: int, *, actor: Acting) -> User:
    """Admins read anyone; everyone else reads only themselves."""
    if isinstance(actor, SystemActor) or actor.user_id != user_id:
        require_admin(actor)
    user = await User.get_or_none(id=user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user


def _check_hours(hours: dict[str, Any], errors: list[FieldError]) -> None:
    days = hours.get("days", [])
    if not isinstance(days, list) or not all(isinstance(d, int) and 0 <= d <= 6 for d in days):
        errors.append(FieldError("working_hours.days", "days are numbers 0 (Monday) to 6 (Sunday)"))
    for part in ("start", "end"):
        if hours.get(part):
            try:
                parse_hh_mm(str(hours[part]))
            except ValueError as exc:
                errors.append(FieldError(f"working_hours.{part}", str(exc)))
    if hours.get("start") and hours.get("end") and str(hours["start"]) >= str(hours["end"]):
        errors.append(FieldError("working_hours.end", "must be after the start"))


async def _validate(data: UserInput, *, user_id: int | None) -> list[FieldError]:
    errors: list[FieldError] = []
    if data.email is not None:
        if not EMAIL.match(data.email.strip()):
            errors.append(FieldError("email", "enter an email address"))
        elif await User.filter(email=data.email.strip().lower()).exclude(id=user_id or 0).exists():
            errors.append(FieldError("email", "another user has this email"))
    if data.name is not None and not data.name.strip():
        errors.append(FieldError("name", "enter a name"))
    if data.role is not None and data.role not in ROLES:
        errors.append(FieldError("role", f"one of: {', '.join(ROLES)}"))
    if data.supervisor_id is not None:
        if data.supervisor_id == user_id:
            errors.append(FieldError("supervisor_id", "a user cannot supervise themselves"))
        elif not await User.exists(id=data.supervisor_id):
            errors.append(FieldError("supervisor_id", f"user {data.supervisor_id} does not exist"))
    if data.timezone is not None and zone(data.timezone).key != (data.timezone or "UTC"):
        errors.append(FieldError("timezone", f"'{data.timezone}' is not a time zone (e.g. Europe/Berlin)"))
    if data.locale and supported(data.locale) != data.locale:
        errors.append(FieldError("locale", f"'{data.locale}' is not a language of the admin: one of {', '.join(LOCALES)}"))
    if data.working_hours is not None:
        _check_hours(data.working_hours, errors)
    if data.password:
        if len(data.password) < auth.MIN_PASSWORD_LENGTH:
            errors.append(FieldError("password", f"use at least {auth.MIN_PASSWORD_LENGTH} characters"))
    return errors


async def create_user(data: UserInput, *, actor: Acting) -> User:
    require_admin(actor)
    errors = await _validate(data, user_id=None)
    if data.email is None:
        errors.append(FieldError("email", "enter an email address"))
    if data.name is None:
        errors.append(FieldError("name", "enter a name"))
    if errors:
        raise ValidationFailed(errors)
    return await User.create(
        email=(data.email or "").strip().lower(), name=(data.name or "").strip(), role=data.role or Role.employee,
        supervisor_id=data.supervisor_id, timezone=data.timezone or "UTC", locale=data.locale or None, working_hours=data.working_hours or {},
        absent=bool(data.absent), active=True if data.active is None else data.active,
        password_hash=await auth.hash_password(data.password) if data.password else None,
    )


async def update_user(user_id: int, data: UserInput, *, actor: Acting) -> User:
    require_admin(actor)
    user = await get_user(user_id, actor=actor)
    errors = await _validate(data, user_id=user_id)
    if isinstance(actor, Actor) and user_id == actor.user_id and (data.role not in (None, Role.admin) or data.active is False):
        errors.append(FieldError("role", "you cannot take away your own admin access"))
    if errors:
        raise ValidationFailed(errors)
    password_hash = await auth.hash_password(data.password) if data.password else None  # before the transaction
    access_before = (user.role, user.active)
    async with transaction():
        if data.email is not None:
            user.email = data.email.strip().lower()
        if data.name is not None:
            user.name = data.name.strip()
        for name in ("role", "timezone", "working_hours", "absent", "active"):
            if getattr(data, name) is not None:
                setattr(user, name, getattr(data, name))
        if data.locale is not None:
            user.locale = data.locale or None
        if data.supervisor_id is not None or data.clear_supervisor:
            user.supervisor_id = None if data.clear_supervisor else data.supervisor_id
        if password_hash:
            user.password_hash = password_hash
        await user.save()
        if data.active is False or data.password:
            await auth.end_all_sessions(user.id)
        if (user.role, user.active) != access_before:
            # Open websockets of the user, in every web process, take the new role or close.
            await events.emit(events.ACCESS, {"user_id": user.id, "role": user.role, "active": user.active},
                              audience=[])
    return user


async def set_password(user_id: int, password: str, *, actor: Acting) -> User:
    """A new password; the user's sessions end."""
    if len(password) < auth.MIN_PASSWORD_LENGTH:
        raise ValidationFailed.one("password", f"use at least {auth.MIN_PASSWORD_LENGTH} characters")
    return await update_user(user_id, UserInput(password=password), actor=actor)


async def reset_two_factor(user_id: int, *, actor: Acting) -> User:
    """Forget the user's TOTP secret and recovery codes: they enrol again at their next login."""
    user = await get_user(user_id, actor=actor)
    async with transaction():
        user.totp_secret = None
        user.totp_confirmed = False
        user.totp_last_step = None
        await user.save(update_fields=["totp_secret", "totp_confirmed", "totp_last_step"])
        await RecoveryCode.filter(user_id=user.id).delete()
        await auth.end_all_sessions(user.id)
    return user
