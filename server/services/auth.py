"""Admin login: argon2 passwords, TOTP with replay protection, recovery codes, lockout, sessions, CSRF,
and the setup code that guards the first-admin page.

Secrets that grant access by themselves (session ids, the setup code) are stored only as SHA-256;
passwords and recovery codes as salted argon2, hashed off the event loop (server/services/passwords.py).
Every check that must not race (a TOTP step, a recovery code) is a conditional update, and every guess is
counted before it is checked, so simultaneous guesses cannot outrun the lockout.
"""

import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
import segno
from tortoise.expressions import Q

from server import clock
from server.db import transaction
from server.errors import FieldError, PipewrightError, ValidationFailed
from server.kinds import Role
from server.models import AdminSession, LoginAttempt, RecoveryCode, SetupCode, User
from server.services import passwords
from server.services.passwords import HashingBusy as HashingBusy  # re-exported: the faces catch auth.HashingBusy

ISSUER = "pipewright"
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
SESSION_IDLE = timedelta(minutes=30)
SESSION_ABSOLUTE = timedelta(hours=12)
SECOND_FACTOR_WINDOW = timedelta(minutes=10)  # a half-logged-in session (password only) lives this long
RECOVERY_CODES = 10
MIN_PASSWORD_LENGTH = 10
RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
SETUP_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 symbols, no 0/O or 1/I
SETUP_CODE_LENGTH = 10  # 50 bits; guessing online is capped by the lockout

STAGE_PASSWORD = "password"  # first factor passed, TOTP pending
STAGE_SETUP = "setup"  # password set, TOTP enrolment pending
STAGE_FULL = "full"

class LockedOut(PipewrightError):
    """Too many failed attempts: the message says how long to wait."""

    def __init__(self, wait: timedelta) -> None:
        self.wait = wait
        minutes = max(1, -(-int(wait.total_seconds()) // 60))
        super().__init__(
            f"Too many failed attempts for this account or address. Try again in {minutes} "
            f"minute{'s' if minutes != 1 else ''}."
        )


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# Passwords ---------------------------------------------------------------------------------------

async def hash_password(password: str) -> str:
    """argon2, on the bounded hashing threads (raises HashingBusy when they are full)."""
    return await passwords.hash_password(password)


def check_password_strength(password: str, *, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed.one(field, f"use at least {MIN_PASSWORD_LENGTH} characters")


async def verify_password(user: User | None, password: str) -> bool:
    """True if `password` is the user's. Costs the same work when there is no such user (or no password)."""
    usable = user is not None and user.active and bool(user.password_hash)
    return await passwords.verify_password(user.password_hash if usable and user else None, password)


# Lockout ----------------------------------------------------------------------------------------
# Each guess inserts its attempt row first and only then counts the rows of its key in the window: of any
# set of simultaneous guesses, the last to count sees the rows of all the others, so no more than
# MAX_FAILURES guesses per key and window are ever checked, on SQLite and PostgreSQL alike (every statement
# commits on its own). A guess that turns out right, or is refused, takes its rows back.

def _keys(email: str | None, ip: str) -> list[str]:
    """The address first, then the account (none for the setup code, which belongs to no account)."""
    account = [] if email is None else [f"account:{email.strip().lower()[:280]}"]
    return [f"ip:{ip[:64]}", *account]


async def _recent(key: str, since: datetime) -> int:
    return await LoginAttempt.filter(key=key, created_at__gte=since).count()


async def _wait(key: str, now: datetime) -> timedelta:
    """Until the oldest of the key's latest MAX_FAILURES attempts leaves the window."""
    recent = await LoginAttempt.filter(key=key, created_at__gte=now - FAILURE_WINDOW).order_by(
        "-created_at").limit(MAX_FAILURES)
    return recent[-1].created_at + FAILURE_WINDOW - now if recent else timedelta(minutes=1)


class Attempt:
    """One counted guess. It stays counted as a failure unless `succeeded()` is called."""

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids = list(ids)
        self.failed = True

    def succeeded(self) -> None:
        self.failed = False


@asynccontextmanager
async def counted_attempt(email: str | None, ip: str) -> AsyncIterator[Attempt]:
    """Count a guess for the address (and the account) before it is checked; raise `LockedOut` beyond the
    limit. An error inside (HashingBusy, a crash) means nothing was checked: the guess is not counted."""
    keys = _keys(email, ip)
    now = clock.utcnow()
    since = now - FAILURE_WINDOW
    for key in keys:  # a key already at the limit is refused without a write (floods stay cheap)
        if await _recent(key, since) >= MAX_FAILURES:
            raise LockedOut(await _wait(key, now))
    ids = [(await LoginAttempt.create(key=key, created_at=now)).id for key in keys]
    for key in keys:
        if await _recent(key, since) > MAX_FAILURES:
            await LoginAttempt.filter(id__in=ids).delete()
            raise LockedOut(await _wait(key, now))
    attempt = Attempt(ids)
    try:
        yield attempt
    except BaseException:
        attempt.failed = False
        raise
    finally:
        if attempt.failed:
            await LoginAttempt.filter(created_at__lt=now - FAILURE_WINDOW * 4).delete()  # old rows
        else:
            await LoginAttempt.filter(id__in=attempt.ids).delete()


async def check_password(email: str, password: str, *, ip: str) -> User | None:
    """The user whose email and password these are, else None. Counted before argon2 runs: raises
    `LockedOut` past the limit and `HashingBusy` when too many checks run at once."""
    async with counted_attempt(email, ip) as attempt:
        user = await find_user(email)
        if not await verify_password(user, password):
            return None
        attempt.succeeded()
        return user


async def check_second_factor(user: User, code: str, *, ip: str) -> bool:
    """The login's second step (TOTP or recovery code), counted like a password guess of the account."""
    async with counted_attempt(user.email, ip) as attempt:
        if not await verify_second_factor(user, code):
            return False
        attempt.succeeded()
        return True


async def find_user(email: str) -> User | None:
    return await User.get_or_none(email=email.strip().lower()) or await User.get_or_none(email=email.strip())


# TOTP -------------------------------------------------------------------------------------------

def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: User) -> str:
    return pyotp.TOTP(user.totp_secret or "").provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code (no Pillow needed)."""
    return segno.make(uri, error="m").svg_inline(scale=5, dark="#111", light="#fff", title="TOTP QR code")


async def verify_totp(user: User, code: str, *, at: datetime | None = None) -> bool:
    """Accept a code once: its time step must be newer than the last accepted one (compare-and-set)."""
    code = "".join(code.split())
    if not user.totp_secret or not code.isdigit():
        return False
    try:
        step = pyotp.TOTP(user.totp_secret).verify_and_get_timecode(code, for_time=at or datetime.now(UTC), valid_window=1)
    except pyotp.OTPVerificationError:
        return False
    updated = await User.filter(Q(totp_last_step__isnull=True) | Q(totp_last_step__lt=step), id=user.id).update(
        totp_last_step=step
    )
    return updated == 1


async def start_enrolment(user: User) -> User:
    """A fresh, unconfirmed TOTP secret for `user`."""
    user.totp_secret = new_totp_secret()
    user.totp_confirmed = False
    user.totp_last_step = None
    await user.save(update_fields=["totp_secret", "totp_confirmed", "totp_last_step"])
    return user


async def confirm_enrolment(user: User, code: str) -> list[str]:
    """Confirm the secret with a first code; returns the recovery codes (shown once)."""
    if not await verify_totp(user, code):
        raise ValidationFailed.one("code", "that code does not match: check the time on your phone and try the next code")
    codes, hashes = await _fresh_recovery_codes()
    async with transaction():
        await User.filter(id=user.id).update(totp_confirmed=True)
        await _store_recovery_codes(user, hashes)
    user.totp_confirmed = True
    await forget_setup_code_when_done()
    return codes


async def activate_without_code(user: User) -> list[str]:
    """For `pipewright createadmin`: the secret is handed over on the console, so no first code is asked."""
    codes, hashes = await _fresh_recovery_codes()
    async with transaction():
        await User.filter(id=user.id).update(totp_confirmed=True)
        await _store_recovery_codes(user, hashes)
    user.totp_confirmed = True
    await forget_setup_code_when_done()
    return codes


# Recovery codes ---------------------------------------------------------------------------------
# Stored as argon2 over the code's SHA-256: migration 0004 could so re-hash the SHA-256 digests databases
# held before, and every code, old or new, is checked the same way.

def _normalise_recovery(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def recovery_secret(code: str) -> str:
    """What argon2 hashes for a recovery code: the SHA-256 of its normalised form."""
    return sha256(_normalise_recovery(code))


async def _fresh_recovery_codes() -> tuple[list[str], list[str]]:
    """RECOVERY_CODES new codes and their hashes (hashed before any transaction: it takes a while)."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))  # 50 bits
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes, await passwords.hash_codes([recovery_secret(code) for code in codes])


async def _store_recovery_codes(user: User, hashes: list[str]) -> None:
    async with transaction():
        await RecoveryCode.filter(user_id=user.id).delete()
        for code_hash in hashes:
            await RecoveryCode.create(user_id=user.id, code_hash=code_hash)


async def new_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes with RECOVERY_CODES new ones; only their hashes are kept."""
    codes, hashes = await _fresh_recovery_codes()
    await _store_recovery_codes(user, hashes)
    return codes


async def use_recovery_code(user: User, code: str) -> bool:
    """True once per code: the user's unused codes are tried off the loop, the match used up by compare-and-set."""
    cleaned = _normalise_recovery(code)
    if not cleaned or len(cleaned) > 64:
        return False
    unused = await RecoveryCode.filter(user_id=user.id, used_at__isnull=True).values_list("id", "code_hash")
    found = await passwords.find_code([(row_id, code_hash) for row_id, code_hash in unused], sha256(cleaned))
    if found is None:
        return False
    return await RecoveryCode.filter(id=found, used_at__isnull=True).update(used_at=clock.utcnow()) == 1


async def verify_second_factor(user: User, code: str) -> bool:
    """A TOTP code (six digits) or a recovery code."""
    cleaned = "".join(code.split())
    if cleaned.isdigit() and len(cleaned) <= 8:
        return await verify_totp(user, cleaned)
    return await use_recovery_code(user, cleaned)


# Sessions ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Session:
    row: AdminSession
    user: User

    @property
    def csrf_token(self) -> str:
        return self.row.csrf_token

    @property
    def stage(self) -> str:
        return self.row.stage


async def create_session(user: User, *, stage: str, ip: str = "", replaces: str | None = None) -> str:
    """A new session (a new random id, also when logging in from a half session); returns the cookie value."""
    session_id = secrets.token_urlsafe(32)
    async with transaction():
        if replaces:
            await AdminSession.filter(session_hash=sha256(replaces)).delete()
        await AdminSession.create(
            session_hash=sha256(session_id), user_id=user.id, stage=stage,
            csrf_token=secrets.token_urlsafe(32), ip=ip[:64],
        )
    return session_id


async def load_session(session_id: str | None) -> Session | None:
    """The live session for a cookie value, its idle clock renewed; None when absent or expired."""
    if not session_id:
        return None
    row = await AdminSession.get_or_none(session_hash=sha256(session_id))
    if row is None:
        return None
    now = clock.utcnow()
    lifetime = SESSION_ABSOLUTE if row.stage == STAGE_FULL else SECOND_FACTOR_WINDOW
    if now - row.created_at > lifetime or now - row.last_seen_at > SESSION_IDLE:
        await row.delete()
        return None
    user = await User.get_or_none(id=row.user_id, active=True)
    if user is None:
        await row.delete()
        return None
    if now - row.last_seen_at > timedelta(seconds=30):  # spare a write per request
        await AdminSession.filter(id=row.id).update(last_seen_at=now)
    return Session(row, user)


async def end_session(session_id: str | None) -> None:
    if session_id:
        await AdminSession.filter(session_hash=sha256(session_id)).delete()


async def end_all_sessions(user_id: int) -> None:
    await AdminSession.filter(user_id=user_id).delete()


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


# The first admin --------------------------------------------------------------------------------

async def setup_needed() -> bool:
    """True while no admin can log in (no admin with a password and a confirmed TOTP)."""
    return not await User.filter(
        role=Role.admin, active=True, password_hash__isnull=False, totp_confirmed=True
    ).exists()


@dataclass(frozen=True)
class _AdminInput:
    email: str
    name: str
    password_hash: str


async def _admin_input(email: str, name: str, password: str) -> _AdminInput:
    """Checked and hashed before any transaction (argon2 takes a while; a transaction would hold its lock)."""
    email = email.strip().lower()
    errors = []
    if "@" not in email or len(email) > 254:
        errors.append(("email", "enter an email address"))
    if not name.strip():
        errors.append(("name", "enter a name"))
    if len(password) < MIN_PASSWORD_LENGTH:
        errors.append(("password", f"use at least {MIN_PASSWORD_LENGTH} characters"))
    if errors:
        raise ValidationFailed([FieldError(f, m) for f, m in errors])
    return _AdminInput(email, name.strip(), await hash_password(password))


async def make_admin(*, email: str, name: str, password: str) -> User:
    """Create the admin, or make the user with this email an admin; a fresh TOTP secret (unconfirmed)."""
    return await _save_admin(await _admin_input(email, name, password))


async def _save_admin(data: _AdminInput) -> User:
    async with transaction():
        user = await find_user(data.email)
        if user is None:
            user = await User.create(email=data.email, name=data.name, role=Role.admin)
        user.name = data.name
        user.role = Role.admin
        user.active = True
        user.password_hash = data.password_hash
        user.totp_secret = new_totp_secret()
        user.totp_confirmed = False
        user.totp_last_step = None
        await user.save()
        await end_all_sessions(user.id)
    return user


# The setup code -----------------------------------------------------------------------------------
# The setup page is open while no admin can log in; to use it one needs the code printed on the
# server's console at start, so only whoever runs the server can become the first admin.

SETUP_CODE_MISSING = "enter the setup code printed in the server's console"
SETUP_CODE_WRONG = ("the setup code does not match the one printed in the server's console "
                    "(each start prints a new one: use the latest)")


def _normalise_setup_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").upper()


def _format_setup_code(raw: str) -> str:
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


async def issue_setup_code() -> str | None:
    """At start: a new setup code while setup is needed (replacing any earlier one), shown grouped
    like K7QF-M2XD-9P; None (and no code left) once an admin can log in. Only its hash is stored."""
    if not await setup_needed():
        await SetupCode.all().delete()
        return None
    raw = "".join(secrets.choice(SETUP_CODE_ALPHABET) for _ in range(SETUP_CODE_LENGTH))
    async with transaction():
        await SetupCode.all().delete()
        await SetupCode.create(code_hash=sha256(raw))
    return _format_setup_code(raw)


async def _matching_setup_code(code: str) -> SetupCode | None:
    cleaned = _normalise_setup_code(code)
    if not cleaned:
        return None
    digest = sha256(cleaned)
    found = None
    for row in await SetupCode.all():
        if hmac.compare_digest(row.code_hash, digest):
            found = row
    return found


async def check_setup_code(code: str) -> bool:
    """True if `code` is the current setup code (case, dashes and spaces do not matter)."""
    return await _matching_setup_code(code) is not None


async def guess_setup_code(code: str, *, ip: str) -> bool:
    """`check_setup_code` for the setup page: counted against the address before it is checked, so
    simultaneous guesses cannot outrun the lockout (raises `LockedOut`)."""
    async with counted_attempt(None, ip) as attempt:
        if not await check_setup_code(code):
            return False
        attempt.succeeded()
        return True


async def make_first_admin(*, code: str, email: str, name: str, password: str) -> User:
    """The setup page's admin: the setup code is used up in the same transaction (it works once)."""
    data = await _admin_input(email, name, password)
    async with transaction():
        row = await _matching_setup_code(code)
        if row is None or await SetupCode.filter(id=row.id).delete() != 1:  # a concurrent setup took it
            raise ValidationFailed.one("setup_code", SETUP_CODE_WRONG if code.strip() else SETUP_CODE_MISSING)
        return await _save_admin(data)


async def forget_setup_code_when_done() -> None:
    """Once an admin can log in, no setup code is kept."""
    if not await setup_needed():
        await SetupCode.all().delete()
