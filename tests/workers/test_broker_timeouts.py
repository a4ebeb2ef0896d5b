"""A Redis that accepts connections but never answers must not hang a request whose change has committed.

`pipewright serve` talks to Redis through a TCP stand-in that either swallows every byte (the fault) or
forwards to the real Redis (the fault mended). The worker processes are frozen meanwhile, so nothing but the
web process could send the runs; once Redis answers again, they run, sent by the scheduler from their rows.
"""

import asyncio
import contextlib
import time

import pytest

from server.models import RuleRun
from tests.support import add_rule, make_pipeline, make_token, wait_for_runs
from tests.support.serve import graphql, serve, stop, wait_ready
from tests.support.servers import free_port

pytestmark = [pytest.mark.production_backend, pytest.mark.production_only]

LIVELY_S = 10  # a generous bound on one mutation's answer; with the timeouts below it takes about 2 s


class SilentRedis:
    """A TCP endpoint in front of Redis: `silent` accepts and reads but never answers; else it forwards."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.silent = True
        self.port = free_port()
        self.held: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    def answer_again(self) -> None:
        """Forward from now on; the connections held silent are dropped, as a recovered network would."""
        self.silent = False
        for writer in list(self.held):
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in list(self.held):
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.held.add(writer)
        try:
            if self.silent:
                while await reader.read(65536):
                    pass
                return
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            self.held.add(upstream_writer)
            await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))
        except (ConnectionError, OSError):
            pass
        finally:
            self.held.discard(writer)
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            self.held.discard(writer)
            writer.close()


async def _timed(port: int, query: str, variables: dict, token: str) -> tuple[dict, float]:
    started = time.monotonic()
    data = await asyncio.wait_for(graphql(port, query, variables, token=token), timeout=60)
    return data, time.monotonic() - started


async def test_moves_answer_while_redis_hangs_and_their_runs_execute_once_it_answers(db, tmp_path, monkeypatch):
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "add_comment", {"text": "Created"})
    await add_rule(stages["offer"], "add_comment", {"text": "Offered"})
    _, token = await make_token("admin")
    redis = SilentRedis(db.redis.port)
    await redis.start()
    for name, value in (("PIPEWRIGHT_REDIS_SOCKET_TIMEOUT_MS", "500"), ("PIPEWRIGHT_REDIS_CONNECT_TIMEOUT_MS", "500"),
                        ("PIPEWRIGHT_BROKER_SEND_WAIT_MS", "1000")):
        monkeypatch.setenv(name, value)
    port = free_port()
    server = serve(db.database_url, port, tmp_path / "serve.log", broker_url=redis.url)
    db.worker.pause()
    try:
        await wait_ready(port, server)
        created, create_s = await _timed(
            port, 'mutation($s: ID!) { createDeal(input: {title: "Hung", stageId: $s}) { ... on Deal { id } } }',
            {"s": str(stages["new"].id)}, token)
        deal_id = created["createDeal"]["id"]
        moved, move_s = await _timed(
            port, 'mutation($id: ID!, $s: ID!) { moveDeal(id: $id, stageId: $s) { ... on Deal { stage { code } } } }',
            {"id": deal_id, "s": str(stages["offer"].id)}, token)
        assert moved["moveDeal"]["stage"]["code"] == "offer"
        assert create_s < LIVELY_S and move_s < LIVELY_S, (create_s, move_s)
        runs = await RuleRun.filter(element_type="deal", element_id=int(deal_id)).order_by("id")
        # The move cancelled the first stage's run before anything could run it; the offer's waits, unsent.
        assert [(r.status, r.spec["params"]["text"]) for r in runs] == [("cancelled", "Created"), ("queued", "Offered")]

        redis.answer_again()
        db.worker.resume()
        runs = await wait_for_runs("deal", int(deal_id), 2, timeout_s=30)
        assert [(r.status, r.spec["params"]["text"]) for r in runs] == [("cancelled", "Created"), ("succeeded", "Offered")]

        # The web process's Redis client recovers by itself: the next deal's run is sent and runs.
        again = await graphql(port, 'mutation($s: ID!) { createDeal(input: {title: "Back", stageId: $s}) '
                                    '{ ... on Deal { id } } }', {"s": str(stages["new"].id)}, token=token)
        await wait_for_runs("deal", int(again["createDeal"]["id"]), 1, timeout_s=20)
    finally:
        with contextlib.suppress(Exception):
            db.worker.resume()
        stop(server)
        await redis.stop()
