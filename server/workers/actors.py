"""The actors: one rule run, one delivery attempt of a message, one attempt at a document's PDF. Retries are ours (durable rows), not dramatiq's.

Also the dispatcher: what a commit made due (runs, messages) is sent to the broker right after it. A web process
and the embedded worker install it themselves; each production worker process installs it when it boots, so an
email a run writes (or the next run of its lane) goes out at once instead of at the scheduler's next poll.
"""

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import uuid4

import dramatiq
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis
from dramatiq.middleware import Middleware

from server import clock
from server.channels import delivery
from server.config import settings
from server.rules import dispatch, engine, pdf, queue
from server.workers.broker import broker

log = logging.getLogger(__name__)


@dramatiq.actor(queue_name="rule_runs", max_retries=0, time_limit=10 * 60 * 1000)
async def execute_rule_run(run_id: int) -> None:
    await engine.execute(run_id)


@dramatiq.actor(queue_name="rule_runs", max_retries=0, time_limit=10 * 60 * 1000)
async def execute_rule_runs(run_ids: list[int]) -> None:
    """The runs one commit claimed: those that run together act in one transaction here, each of the others
    goes back to the broker as a message of its own, for any worker."""
    alone = await engine.execute_together(run_ids)
    if alone:
        await _hand_over(send, alone, queue.give_back, "rule runs")


# The time limit is above PIPEWRIGHT_SEND_TIMEOUT_S: the delivery step times its peer out itself.
@dramatiq.actor(queue_name="messages", max_retries=0, time_limit=10 * 60 * 1000)
async def deliver_message(message_id: int) -> None:
    await delivery.deliver(message_id)


# Its own queue: a PDF takes a worker thread for a second or so, and must not hold up rule runs or email.
@dramatiq.actor(queue_name="documents", max_retries=0, time_limit=10 * 60 * 1000)
async def make_document_pdf(document_id: int) -> None:
    await pdf.make(document_id)


def _send_all(actor: Any, ids: Sequence[Any]) -> None:
    """One message per id. To Redis in one round trip: dramatiq's own enqueue script, once per message, in one
    pipeline (RedisBroker.enqueue does the same one round trip at a time)."""
    if not isinstance(broker, RedisBroker) or len(ids) < 2:
        for one in ids:
            actor.send(one)
        return
    redis_broker: Any = broker  # dramatiq 2.x leaves RedisBroker's internals unannotated
    messages = [actor.message(one).copy(options={"redis_message_id": str(uuid4())}) for one in ids]
    enqueue = redis_broker.scripts["dispatch"]
    with redis_broker.client.pipeline(transaction=False) as pipe:
        for message in messages:
            redis_broker.emit_before("enqueue", message, None)
            # The arguments of RedisBroker._dispatch("enqueue"); maintenance (0) is left to the other commands.
            enqueue(keys=[redis_broker.namespace], client=pipe, args=[
                "enqueue", current_millis(), message.queue_name, redis_broker.broker_id,
                redis_broker.heartbeat_timeout, redis_broker.dead_message_ttl, 0, redis_broker._max_unpack_size(),
                message.options["redis_message_id"], message.encode()])
        pipe.execute()
    for message in messages:
        redis_broker.emit_after("enqueue", message, None)


def send(run_ids: list[int]) -> None:
    _send_all(execute_rule_run, run_ids)


def send_together(run_ids: list[int]) -> None:
    """The runs one commit claimed, up to `engine.TOGETHER` in one message (`execute_rule_runs`)."""
    batches = [run_ids[start:start + engine.TOGETHER] for start in range(0, len(run_ids), engine.TOGETHER)]
    send([batch[0] for batch in batches if len(batch) == 1])
    _send_all(execute_rule_runs, [batch for batch in batches if len(batch) > 1])


# Sends after commit run on their own threads, so a Redis that hangs ties up these and not the default pool
# (password checks, the embedded worker's joins); each send gives up after PIPEWRIGHT_REDIS_SOCKET_TIMEOUT_MS.
_sender = ThreadPoolExecutor(max_workers=4, thread_name_prefix="broker-send")


async def _hand_over(send_all: Callable[[list[int]], None], ids: list[int], give_back: Callable[[list[int]], Awaitable[Any]],
                     what: str) -> None:
    """Send `ids` to the broker, waiting at most PIPEWRIGHT_BROKER_SEND_WAIT_MS: the change that made them due
    has committed, and the request must answer. What the broker did not take is given back at once (its claim
    ends now), so the scheduler's next sweep sends it, instead of after the claim's whole lease. A send that
    did arrive after all is then sent twice, which the runs' compare-and-set makes harmless."""
    loop = asyncio.get_running_loop()
    wait_ms = settings().broker_send_wait_ms
    try:
        await asyncio.wait_for(loop.run_in_executor(_sender, send_all, ids), wait_ms / 1000)
    except Exception as exc:  # TimeoutError (Redis hangs), redis' ConnectionError (Redis down)
        log.warning("the broker did not take %d %s within %d ms (%s); the scheduler will send them",
                    len(ids), what, wait_ms, type(exc).__name__)
        await give_back(ids)


class DirectRuns:
    """Embedded: claimed runs go straight to the engine on the server's loop, at most `limit` batches at a time,
    instead of through the in-memory broker and its threads. The runs one commit claimed run together, up to
    `batch` in one transaction (`engine.execute_together`; a commit's runs come in stage order, so a batch is
    mostly one stay's). A claimed run is queued with a lease either way: one this process never ran (it
    stopped) is sent again at the next start (`resend_orphans`)."""

    def __init__(self, limit: int, *, batch: int = engine.TOGETHER) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._batch = batch
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, run_ids: list[int]) -> None:
        for start in range(0, len(run_ids), self._batch):
            self._spawn(self._run_together(run_ids[start:start + self._batch]))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_together(self, run_ids: list[int]) -> None:
        async with self._slots:
            try:
                alone = await engine.execute_together(run_ids)
            except Exception:  # the engine records every outcome; this is a bug or a lost database
                log.exception("rule runs %s raised out of the engine; their lease will bring them back", run_ids)
                return
        for run_id in alone:  # each at the same time as the others (an email's send must not hold up the rest)
            self._spawn(self._run(run_id))

    async def _run(self, run_id: int) -> None:
        async with self._slots:
            try:
                await engine.execute(run_id)
            except Exception:  # execute records every outcome; this is a bug or a lost database
                log.exception("rule run %s raised out of the engine; its lease will bring it back", run_id)

    async def drain(self) -> None:
        """Wait for every submitted run (the database is about to close)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


direct: DirectRuns | None = None  # set by the embedded worker while it is attached


async def hand_runs(run_ids: list[int]) -> None:
    """Claimed runs to whoever executes them: the engine on this loop (embedded), or the broker."""
    if direct is not None:
        direct.submit(run_ids)
    else:
        await asyncio.to_thread(send, run_ids)


async def dispatch_due(run_ids: list[int]) -> None:
    """The engine's fast path: runs due right after a commit are claimed and sent at once."""
    await hand_claimed(await queue.claim(run_ids))


async def hand_claimed(run_ids: list[int]) -> None:
    """Runs claimed (queued, with a lease) by a transaction that has committed: to the engine on this loop
    (embedded), or to the broker (what it does not take is given back to the scheduler)."""
    if run_ids and direct is not None:
        direct.submit(run_ids)
    elif run_ids:
        await _hand_over(send_together, run_ids, queue.give_back, "rule runs")


def send_messages(message_ids: list[int]) -> None:
    _send_all(deliver_message, message_ids)


async def dispatch_due_messages(message_ids: list[int]) -> None:
    """Messages written by a commit are sent at once (the claim pushes their due time back, so the next poll
    does not send them again)."""
    claimed = await delivery.claim_due(ids=message_ids)
    if claimed:
        await _hand_over(send_messages, claimed, delivery.give_back, "messages")


def send_documents(document_ids: list[int]) -> None:
    _send_all(make_document_pdf, document_ids)


async def dispatch_due_documents(document_ids: list[int]) -> None:
    claimed = await pdf.claim_due(ids=document_ids)
    if claimed:
        await _hand_over(send_documents, claimed, pdf.give_back, "documents")


def install_dispatcher() -> None:
    dispatch.RUNS.dispatcher = dispatch_due
    dispatch.RUNS.taker = hand_claimed
    dispatch.MESSAGES.dispatcher = dispatch_due_messages
    dispatch.DOCUMENTS.dispatcher = dispatch_due_documents


def uninstall_dispatcher() -> None:
    dispatch.RUNS.dispatcher = dispatch.MESSAGES.dispatcher = dispatch.DOCUMENTS.dispatcher = None
    dispatch.RUNS.taker = None


class DispatchAfterCommit(Middleware):
    """A production worker process sends what its runs commit itself (the scheduler's poll is the fallback),
    and keeps its clock in step with the database's (leases it renews, due times it writes)."""

    def __init__(self) -> None:
        self._clock: concurrent.futures.Future[None] | None = None

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        install_dispatcher()
        thread = get_event_loop_thread()  # the Database middleware connected on it
        if thread is not None:
            thread.run_coroutine(clock.sync_with_database())  # before the first run
            self._clock = asyncio.run_coroutine_threadsafe(clock.keep_in_step(), thread.loop)

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        if self._clock is not None:
            self._clock.cancel()


if not isinstance(broker, StubBroker):  # embedded: EmbeddedWorker.attach installs it on the web server's loop
    from server.workers.heartbeat import Heartbeat

    broker.add_middleware(DispatchAfterCommit())
    broker.add_middleware(Heartbeat())  # (embedded, the scheduler's loop beats for the in-process worker)
