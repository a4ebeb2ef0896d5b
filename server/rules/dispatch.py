"""How the engine and the outbox say "these are due now" without knowing about brokers.

The worker layer installs a dispatcher for rule runs, one for messages and one for document PDFs; without one, the scheduler's next
poll finds them.
"""

from collections.abc import Awaitable, Callable

from server.db import after_commit_batch

Dispatcher = Callable[[list[int]], Awaitable[None]]


class Due:
    """One kind of work the broker takes (rule runs, messages), handed over once the transaction that made it
    due has committed."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.dispatcher: Dispatcher | None = None
        # Takes work the transaction already claimed (written queued with its lease): handed over after the
        # commit without a claim of its own. Without one, the work is written due and `dispatcher` claims it.
        self.taker: Dispatcher | None = None

    def now(self, ids: list[int]) -> None:
        dispatcher = self.dispatcher
        if dispatcher is not None and ids:
            after_commit_batch(self.key, ids, dispatcher)

    def claimed(self, ids: list[int]) -> None:
        """`ids` were written claimed in this transaction: hand them to the taker once it commits."""
        taker = self.taker
        if taker is not None and ids:
            after_commit_batch(self.key + "_claimed", ids, taker)


RUNS = Due("due_runs")
MESSAGES = Due("due_messages")
DOCUMENTS = Due("due_documents")  # documents whose PDF is to be made
