"""Database transactions with after-commit callbacks (Tortoise has no on-commit hook)."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

log = logging.getLogger(__name__)

Callback = Callable[[], Awaitable[None]]


class _Unit:
    def __init__(self) -> None:
        self.callbacks: list[Callback] = []
        self.batches: dict[str, list[Any]] = {}
        self.before_commit: dict[str, tuple[list[Any], Callable[[list[Any]], Awaitable[None]]]] = {}
        self.memos: dict[str, dict[Any, Any]] = {}


_unit: ContextVar[_Unit | None] = ContextVar("pipewright_unit_of_work", default=None)
_background: set[asyncio.Task[None]] = set()


@asynccontextmanager
async def transaction() -> AsyncIterator[None]:
    """One unit of work. Nested calls join the outermost; callbacks run once it has committed."""
    if _unit.get() is not None:
        yield
        return
    unit = _Unit()
    token = _unit.set(unit)
    try:
        async with in_transaction():
            yield
            while unit.before_commit:  # a flush may add to another batch (events of events)
                key = next(iter(unit.before_commit))
                items, flush = unit.before_commit.pop(key)
                await flush(items)
    finally:
        _unit.reset(token)
    for callback in unit.callbacks:
        await _safely(callback)


async def _safely(callback: Callback) -> None:
    # The transaction is committed: a failing callback (broker down) must not turn a saved
    # change into an error. What it would have done, the scheduler's next pass does.
    try:
        await callback()
    except Exception:
        log.exception("after-commit callback failed; the scheduler will catch up")


def _background_task(callback: Callback) -> None:
    task = asyncio.get_running_loop().create_task(_safely(callback))
    _background.add(task)
    task.add_done_callback(_background.discard)


def after_commit(callback: Callback) -> None:
    """Run `callback` after the current transaction commits (at once, in the background, if none)."""
    unit = _unit.get()
    if unit is None:
        _background_task(callback)
    else:
        unit.callbacks.append(callback)


def in_unit() -> bool:
    return _unit.get() is not None


def unit_memo(key: str) -> dict[Any, Any]:
    """A dict that lives as long as the current transaction (what it has loaded, say), under `key`."""
    unit = _unit.get()
    assert unit is not None, "unit_memo needs a transaction"
    return unit.memos.setdefault(key, {})


def before_commit_batch(key: str, items: list[Any], flush: Callable[[list[Any]], Awaitable[None]]) -> None:
    """Collect `items` under `key` for one `flush(all_items)` as the last step inside the current transaction."""
    unit = _unit.get()
    assert unit is not None, "before_commit_batch needs a transaction"
    entry = unit.before_commit.get(key)
    if entry is None:
        unit.before_commit[key] = (list(items), flush)
    else:
        entry[0].extend(items)


def after_commit_batch(key: str, items: list[Any], flush: Callable[[list[Any]], Awaitable[None]]) -> None:
    """Collect `items` under `key` for one `flush(all_items)` after the current transaction commits."""
    unit = _unit.get()
    if unit is None:
        _background_task(lambda: flush(list(items)))
        return
    batch = unit.batches.get(key)
    if batch is None:
        batch = unit.batches[key] = []
        unit.callbacks.append(lambda: flush(batch))
    batch.extend(items)


async def column(query: QuerySet[Any], name: str) -> list[Any]:
    """One column of a query as a flat list: `values_list(name, flat=True)`, whose annotation says tuples."""
    return list(await query.values_list(name, flat=True))
