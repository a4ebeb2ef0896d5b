"""The admin's auth service: sessions time out, a TOTP step is used once, lockout says how long to wait,
the setup code is kept as a hash and works once, recovery codes are argon2 and work once."""

import hashlib
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate as tortoise_migrate

from server import clock, database
from server.errors import ValidationFailed
from server.models import AdminSession, LoginAttempt, RecoveryCode, SetupCode, User
from server.services import auth


async def make_user() -> User:
    return await User.create(name="Ada", email="ada@example.com", role="admin", password_hash=await auth.hash_password("x" * 12),
                             totp_secret=pyotp.random_base32(), totp_confirmed=True)


async def test_sessions_end_after_idle_and_absolute_timeouts(db: object) -> None:
    user = await make_user()
    idle = await auth.create_session(user, stage=auth.STAGE_FULL)
    old = await auth.create_session(user, stage=auth.STAGE_FULL)
    fresh = await auth.create_session(user, stage=auth.STAGE_FULL)
    now = clock.utcnow()
    await AdminSession.filter(session_hash=auth.sha256(idle)).update(last_seen_at=now - auth.SESSION_IDLE - timedelta(seconds=5))
    await AdminSession.filter(session_hash=auth.sha256(old)).update(created_at=now - auth.SESSION_ABSOLUTE - timedelta(seconds=5))
    assert await auth.load_session(idle) is None
    assert await auth.load_session(old) is None
    session = await auth.load_session(fresh)
    assert session is not None and session.user.id == user.id and len(session.csrf_token) >= 32
    assert await AdminSession.filter(user_id=user.id).count() == 1  # expired rows are deleted
    await auth.end_session(fresh)
    assert await auth.load_session(fresh) is None


async def test_a_half_login_expires_sooner(db: object) -> None:
    user = await make_user()
    half = await auth.create_session(user, stage=auth.STAGE_PASSWORD)
    await AdminSession.filter(session_hash=auth.sha256(half)).update(
        created_at=clock.utcnow() - auth.SECOND_FACTOR_WINDOW - timedelta(seconds=5))
    assert await auth.load_session(half) is None


async def test_a_totp_step_is_accepted_once_and_older_steps_never(db: object) -> None:
    user = await make_user()
    totp = pyotp.TOTP(user.totp_secret)
    now = datetime.now(UTC)
    assert await auth.verify_totp(user, totp.at(now), at=now)
    assert not await auth.verify_totp(user, totp.at(now), at=now)  # replay
    assert not await auth.verify_totp(user, totp.at(now - timedelta(seconds=30)), at=now)  # older step
    assert await auth.verify_totp(user, totp.at(now + timedelta(seconds=30)), at=now)  # the next step, once


async def fail(email: str | None, ip: str) -> None:
    async with auth.counted_attempt(email, ip):
        pass  # not marked as succeeded: a failed guess


async def attempt_allowed(email: str | None, ip: str) -> bool:
    try:
        async with auth.counted_attempt(email, ip) as attempt:
            attempt.succeeded()
    except auth.LockedOut:
        return False
    return True


@pytest.mark.parametrize("failures,locked", [(4, False), (5, True)])
async def test_lockout_after_five_failures_says_how_long(db: object, failures: int, locked: bool) -> None:
    for _ in range(failures):
        await fail("ada@example.com", "10.0.0.1")
    if not locked:
        assert await attempt_allowed("ada@example.com", "10.0.0.1")
        return
    with pytest.raises(auth.LockedOut, match="Try again in 15 minutes"):
        async with auth.counted_attempt("ADA@example.com", "10.0.0.2"):  # the account, from elsewhere
            pass
    assert not await attempt_allowed("other@example.com", "10.0.0.1")  # the address, for another account


async def test_right_guesses_and_guesses_never_checked_do_not_count(db: object) -> None:
    user = await make_user()
    for _ in range(auth.MAX_FAILURES + 2):
        assert await auth.check_password("ada@example.com", "x" * 12, ip="10.0.0.1") is not None
    for _ in range(auth.MAX_FAILURES + 2):
        with pytest.raises(auth.HashingBusy):
            async with auth.counted_attempt(user.email, "10.0.0.1"):
                raise auth.HashingBusy()  # refused before anything was checked
    assert await LoginAttempt.all().count() == 0
    assert await auth.check_password("ada@example.com", "wrong password", ip="10.0.0.1") is None
    assert await LoginAttempt.all().count() == 2  # the address and the account


async def test_the_setup_code_is_kept_as_a_hash_replaced_at_each_issue_and_used_once(db: object) -> None:
    code = await auth.issue_setup_code()
    assert code is not None and re.fullmatch(r"[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{2}", code)
    assert [row.code_hash for row in await SetupCode.all()] == [auth.sha256(code.replace("-", ""))]
    assert await auth.check_setup_code(f"  {code.lower().replace('-', ' ')} ")
    assert not await auth.check_setup_code("")
    assert not await auth.check_setup_code(code[:-1])

    newer = await auth.issue_setup_code()
    assert newer != code and await SetupCode.all().count() == 1
    assert not await auth.check_setup_code(code) and await auth.check_setup_code(newer or "")

    with pytest.raises(ValidationFailed) as refused:
        await auth.make_first_admin(code=code, email="ada@example.com", name="Ada", password="x" * 12)
    assert refused.value.errors[0].field == "setup_code"
    with pytest.raises(ValidationFailed):  # a short password: the code is not used up
        await auth.make_first_admin(code=newer or "", email="ada@example.com", name="Ada", password="short")
    assert await auth.check_setup_code(newer or "")
    user = await auth.make_first_admin(code=newer or "", email="ada@example.com", name="Ada", password="x" * 12)
    assert user.role == "admin" and not await auth.check_setup_code(newer or "")
    with pytest.raises(ValidationFailed):
        await auth.make_first_admin(code=newer or "", email="eve@example.com", name="Eve", password="x" * 12)

    await auth.issue_setup_code()  # the admin has no confirmed TOTP yet: still a code
    assert await SetupCode.all().count() == 1
    await auth.activate_without_code(user)
    assert await SetupCode.all().count() == 0  # an admin can log in: no code kept
    assert await auth.issue_setup_code() is None and await SetupCode.all().count() == 0


async def test_wrong_setup_codes_count_against_the_address_only(db: object) -> None:
    await auth.issue_setup_code()
    for _ in range(auth.MAX_FAILURES):
        assert not await auth.guess_setup_code("AAAA-BBBB-CC", ip="10.0.0.9")
    with pytest.raises(auth.LockedOut):
        await auth.guess_setup_code("AAAA-BBBB-CC", ip="10.0.0.9")
    assert await attempt_allowed("ada@example.com", "10.0.0.1")  # no account was charged


async def test_recovery_codes_are_salted_argon2_each_works_once(db: object) -> None:
    user = await make_user()
    codes = await auth.new_recovery_codes(user)
    stored = [row.code_hash for row in await RecoveryCode.filter(user_id=user.id)]
    assert len(stored) == auth.RECOVERY_CODES and all(h.startswith("$argon2id$") for h in stored)
    assert len(set(stored)) == len(stored) and not any(auth.sha256(c.replace("-", "")) in h for c in codes for h in stored)
    assert await auth.use_recovery_code(user, codes[3].upper().replace("-", " "))
    assert not await auth.use_recovery_code(user, codes[3])  # once
    assert not await auth.use_recovery_code(user, "aaaaa-bbbbb")
    assert await auth.use_recovery_code(user, codes[9])


async def test_migration_0004_rehashes_sha256_recovery_codes_and_they_keep_working_once(tmp_path: Path) -> None:
    """Codes handed out before 0004 were stored as bare SHA-256: after the migration they are argon2 and still
    work, once each."""
    url = f"sqlite://{tmp_path / 'old.db'}"
    await tortoise_migrate(config=database.tortoise_config(url), target="models.0003_setup_code")
    await Tortoise.close_connections()
    old_code = "abcde-fghij"
    with sqlite3.connect(tmp_path / "old.db") as old:
        old.execute("INSERT INTO user (name, email, role, active, absent, timezone, working_hours, totp_confirmed, created_at) "
                    "VALUES ('Ada', 'ada@example.com', 'admin', 1, 0, 'UTC', '{}', 1, '2026-01-01 00:00:00+00:00')")
        old.execute("INSERT INTO recovery_code (user_id, code_hash) VALUES (1, ?)",
                    (hashlib.sha256(b"abcdefghij").hexdigest(),))
    await database.migrate(url)
    await database.connect(url)
    try:
        [row] = await RecoveryCode.all()
        assert row.code_hash.startswith("$argon2id$") and hashlib.sha256(b"abcdefghij").hexdigest() not in row.code_hash
        user = await User.get(email="ada@example.com")
        assert await auth.use_recovery_code(user, old_code)
        assert not await auth.use_recovery_code(user, old_code)
    finally:
        await database.disconnect()
