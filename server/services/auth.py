"""Admin login: argon2 passwords, TOTP with replay protection, recovery codes, lockout, sessions, CSRF,
and the setup code that guards the first-admin page.

Secrets that grant access (session ids, recovery codes, the setup code) are stored only as SHA-256;
passwords as argon2. Every check that must not race (a TOTP step, a recovery code) is a conditional update.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.expressions import Q

from server import clock
from server.db import transaction
from server.errors import FieldError, PipewrightError, ValidationFailed
from server.models import AdminSession, LoginAttempt, RecoveryCode, SetupCode, User

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

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password anyone has")


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

def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_strength(password: str, *, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed.one(field, f"use at least {MIN_PASSWORD_LENGTH} characters")


def verify_password(user: User | None, password: str) -> bool:
    """True if `password` is the user's. Costs the same time when there is no such user."""
    if user is None or not user.password_hash or not user.active:
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Lockout ----------------------------------------------------------------------------------------

def _keys(email: str | None, ip: str) -> list[str]:
    account = [] if email is None else [f"account:{email.strip().lower()}"]
    return [*account, f"ip:{ip}"]


async def check_lockout(email: str | None, ip: str) -> None:
    """Raise `LockedOut` if the account or the address failed MAX_FAILURES times in the window.

    With `email` None only the address counts (the setup code belongs to no account).
    """
    now = clock.utcnow()
    longest = timedelta(0)
    for key in _keys(email, ip):
        recent = await LoginAttempt.filter(key=key, created_at__gte=now - FAILURE_WINDOW).order_by("-created_at").limit(MAX_FAILURES)
        if len(recent) >= MAX_FAILURES:
            longest = max(longest, recent[-1].created_at + FAILURE_WINDOW - now)
    if longest > timedelta(0):
        raise LockedOut(longest)


async def record_failure(email: str | None, ip: str) -> None:
    for key in _keys(email, ip):
        await LoginAttempt.create(key=key)
    await LoginAttempt.filter(created_at__lt=clock.utcnow() - FAILURE_WINDOW * 4).delete()


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
    async with transaction():
        await User.filter(id=user.id).update(totp_confirmed=True)
        codes = await new_recovery_codes(user)
    user.totp_confirmed = True
    await forget_setup_code_when_done()
    return codes


async def activate_without_code(user: User) -> list[str]:
    """For `pipewright createadmin`: the secret is handed over on the console, so no first code is asked."""
    async with transaction():
        await User.filter(id=user.id).update(totp_confirmed=True)
        codes = await new_recovery_codes(user)
    user.totp_confirmed = True
    await forget_setup_code_when_done()
    return codes


# Recovery codes ---------------------------------------------------------------------------------

def _normalise_recovery(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


async def new_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes with RECOVERY_CODES new ones; only their hashes are kept."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))  # 50 bits
        codes.append(f"{raw[:5]}-{raw[5:]}")
    async with transaction():
        await RecoveryCode.filter(user_id=user.id).delete()
        for code in codes:
            await RecoveryCode.create(user_id=user.id, code_hash=sha256(_normalise_recovery(code)))
    return codes


async def use_recovery_code(user: User, code: str) -> bool:
    digest = sha256(_normalise_recovery(code))
    return await RecoveryCode.filter(user_id=user.id, code_hash=digest, used_at__isnull=True).update(
        used_at=clock.utcnow()
    ) == 1


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
        role="admin", active=True, password_hash__isnull=False, totp_confirmed=True
    ).exists()


async def make_admin(*, email: str, name: str, password: str) -> User:
    """Create the admin, or make the user with this email an admin; a fresh TOTP secret (unconfirmed)."""
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
    async with transaction():
        user = await find_user(email)
        if user is None:
            user = await User.create(email=email, name=name.strip(), role="admin")
        user.name = name.strip()
        user.role = "admin"
        user.active = True
        user.password_hash = hash_password(password)
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


async def make_first_admin(*, code: str, email: str, name: str, password: str) -> User:
    """The setup page's admin: the setup code is used up in the same transaction (it works once)."""
    async with transaction():
        row = await _matching_setup_code(code)
        if row is None or await SetupCode.filter(id=row.id).delete() != 1:  # a concurrent setup took it
            raise ValidationFailed.one("setup_code", SETUP_CODE_WRONG if code.strip() else SETUP_CODE_MISSING)
        return await make_admin(email=email, name=name, password=password)


async def forget_setup_code_when_done() -> None:
    """Once an admin can log in, no setup code is kept."""
    if not await setup_needed():
        await SetupCode.all().delete()
