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

        async def work() -> int:
            return 42

        def worker_thread() -> None:
            try:
                results.append(stand_in.run_coroutine(work()))
            except Exception as exc:  # what dramatiq would log as a failed message
                results.append(exc)

        thread = threading.Thread(target=worker_thread)
        thread.start()
        thread.join(0.3)  # the loop is not running yet: the message waits
        assert thread.is_alive() and results == []
        loop.run_until_complete(asyncio.sleep(0.3))
        thread.join(5)
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
