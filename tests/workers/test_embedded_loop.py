"""Embedded mode submits actor coroutines to a loop it does not own: a moment when that loop is not running
(between two run_until_complete calls of a test runner) must delay a message, not drop it."""

import asyncio
import threading

import pytest

from server.workers.broker import _RunningLoop


def test_a_message_taken_while_the_loop_is_stopped_waits_for_it_to_run_again() -> None:
    loop = asyncio.new_event_loop()
    try:
        stand_in = _RunningLoop(loop)
        results: list[object] = []
        taking = threading.Event()

        async def work() -> int:
            return 42

        def worker_thread() -> None:
            taking.set()
            try:
                results.append(stand_in.run_coroutine(work()))
            except Exception as exc:  # what dramatiq would log as a failed message
                results.append(exc)

        thread = threading.Thread(target=worker_thread)
        thread.start()
        assert taking.wait(5)  # the thread has the message while the loop is not running
        thread.join(0.2)
        assert thread.is_alive() and results == []  # it waits, it does not fail
        loop.run_until_complete(asyncio.to_thread(thread.join, 10))  # the loop runs until the thread is done
        assert results == [42]
    finally:
        loop.close()


def test_a_closed_loop_fails_the_message_without_leaving_a_coroutine_never_awaited() -> None:
    loop = asyncio.new_event_loop()
    loop.close()

    async def work() -> int:
        return 42

    with pytest.raises(RuntimeError, match="not running"):
        _RunningLoop(loop).run_coroutine(work())
