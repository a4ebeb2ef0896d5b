"""How the engine says "these runs are due now" without knowing about brokers.

The worker layer installs a dispatcher; without one, the scheduler's next poll finds the runs.
"""

from collections.abc import Awaitable, Callable

from server.db import after_commit_batch

Dispatcher = Callable[[list[int]], Awaitable[None]]

_dispatcher: Dispatcher | None = None


def set_dispatcher(dispatcher: Dispatcher | None) -> None:
    global _dispatcher
    _dispatcher = dispatcher


def due_now(run_ids: list[int]) -> None:
    """Hand these runs to the dispatcher once the transaction that made them due has committed."""
    dispatcher = _dispatcher
    if dispatcher is not None and run_ids:
        after_commit_batch("due_runs", run_ids, dispatcher)
