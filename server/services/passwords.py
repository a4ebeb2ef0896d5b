"""argon2 off the event loop, bounded: a few threads hash, a short queue waits, anything beyond is refused at once.

An argon2 check costs ~0.1 s of CPU or more; on the event loop a flood of logins froze every request, and an
unbounded queue would only turn the freeze into a backlog. argon2-cffi releases the GIL while it hashes.
"""

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.errors import PipewrightError

HASH_THREADS = 2  # the machine's cores are shared with the requests themselves
HASH_QUEUE = 8  # checks that may wait for a thread; more than this at once are refused
RETRY_AFTER_S = 5

T = TypeVar("T")

_passwords = PasswordHasher()
# Recovery codes carry 50 random bits, not a human's choice: OWASP's minimum argon2id parameters are plenty,
# and a login with a recovery code has to try each of the user's ~10 codes.
_codes = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
_DUMMY_HASH = _passwords.hash("not a password anyone has")

_executor = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="argon2")
_lock = threading.Lock()
_admitted = 0


class HashingBusy(PipewrightError):
    """Too many password checks at once: refused without queueing, the client may retry shortly."""

    retry_after_s = RETRY_AFTER_S

    def __init__(self) -> None:
        super().__init__(f"The server is busy checking other logins. Try again in {RETRY_AFTER_S} seconds.")


def _release(_: Future[Any]) -> None:
    global _admitted
    with _lock:
        _admitted -= 1


async def _off_loop(work: Callable[..., T], *args: object) -> T:
    """Run `work` on the hashing threads; raise HashingBusy when threads and queue are full."""
    global _admitted
    with _lock:
        if _admitted >= HASH_THREADS + HASH_QUEUE:
            raise HashingBusy()
        _admitted += 1
    future = _executor.submit(work, *args)
    future.add_done_callback(_release)  # when the thread is done, not when a cancelled caller stops waiting
    return await asyncio.wrap_future(future)


def _verify(hasher: PasswordHasher, stored: str, secret: str) -> bool:
    try:
        return hasher.verify(stored, secret)
    except (VerificationError, InvalidHashError):
        return False


async def hash_password(password: str) -> str:
    return await _off_loop(_passwords.hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    """True if `password` matches `stored`; with no stored hash the same work is done and False returned."""
    if not stored:
        await _off_loop(_verify, _passwords, _DUMMY_HASH, password)
        return False
    return await _off_loop(_verify, _passwords, stored, password)


def _hash_all(secrets: Sequence[str]) -> list[str]:
    return [_codes.hash(secret) for secret in secrets]


async def hash_codes(codes: Sequence[str]) -> list[str]:
    """Salted argon2 hashes of one-time codes, in one trip to the hashing threads."""
    return await _off_loop(_hash_all, list(codes))


def _first_match(stored: Sequence[tuple[int, str]], code: str) -> int | None:
    for key, digest in stored:
        if _verify(_codes, digest, code):
            return key
    return None


async def find_code(stored: Sequence[tuple[int, str]], code: str) -> int | None:
    """The key of the (key, hash) pair whose hash matches `code`, or None; all tried in one thread job."""
    if not stored:
        return None
    return await _off_loop(_first_match, list(stored), code)
