"""Database transactions with after-commit callbacks (Tortoise has no on-commit hook)."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar

from tortoise.transactions import in_transaction

Callback = Callable[[], Awaitable[None]]

_pending: ContextVar[list[Callback] | None] = ContextVar("pipewright_after_commit", default=None)
_background: set[asyncio.Task[None]] = set()


@asynccontextmanager
async def transaction() -> AsyncIterator[None]:
    """One unit of work. Nested calls join the outermost; callbacks run once it has committed."""
    if _pending.get() is not None:
        yield
        return
    callbacks: list[Callback] = []
    token = _pending.set(callbacks)
    try:
        async with in_transaction():
            yield
    finally:
        _pending.reset(token)
    for callback in callbacks:
        await callback()


def after_commit(callback: Callback) -> None:
    """Run `callback` after the current transaction commits (at once, in the background, if none)."""
    callbacks = _pending.get()
    if callbacks is not None:
        callbacks.append(callback)
        return
    task = asyncio.get_running_loop().create_task(callback())
    _background.add(task)
    task.add_done_callback(_background.discard)
