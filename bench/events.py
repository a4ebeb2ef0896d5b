"""Live events on PostgreSQL: events per second with N concurrent writers, and commit -> hub delivery delay.

    .venv/bin/python -m bench.events                      # 1, 4 and 16 writers, 5 s each
    .venv/bin/python -m bench.events --writers 16 --seconds 10 --events-per-transaction 3
    .venv/bin/python -m bench.events --stall 3            # plus: one writer stops for 3 s inside its transaction

A fresh PostgreSQL and Redis (tests.support.servers), migrated. A child process is the web process: its live
hub listens to Redis and one admin subscription takes every event (`--subscriber`, started by the bench). Each writer is an asyncio task that loops
for `--seconds`: one transaction (`server.db.transaction`) writing `--events-per-transaction` feed events with
`server.events.emit`, then commit. Throughput = events committed / wall time. Delay = the time the hub handed
the event to the subscription minus the time taken just before the transaction committed (the event's
payload carries it; CLOCK_MONOTONIC is one clock for both processes). The subscriber checks that every event arrives once and each
writer's events in the order that writer committed them; exit status 1 when not.

`--stall S` adds a phase with 4 writers where one writes its event, then waits S seconds before committing
(a paused host): it prints how many events the others committed meanwhile and how late theirs were delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.common import ROOT, cancel_on_sigterm, percentile


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4, 16], help="concurrent writers per phase")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase (default 5)")
    parser.add_argument("--events-per-transaction", type=int, default=1)
    parser.add_argument("--stall", type=float, default=0.0, help="also run the stalled-writer phase (seconds)")
    parser.add_argument("--pool", type=int, default=40, help="PostgreSQL pool size of this process (default 40)")
    parser.add_argument("--subscriber", action="store_true", help=argparse.SUPPRESS)  # the child
    return parser.parse_args(argv)


@dataclass
class Received:
    delays: list[float] = field(default_factory=list)
    seen: dict[tuple[int, int, int], int] = field(default_factory=dict)  # (phase, writer, n) -> times received
    out_of_order: int = 0
    last: dict[tuple[int, int], int] = field(default_factory=dict)  # (phase, writer) -> last n


async def subscribe(received: Received) -> asyncio.Task[None]:
    from server import live
    from server.actor import Actor, Role

    connection = live.Connection(close=lambda code, reason: None)
    live.hub.open(connection, token_id=0, actor=Actor(user_id=1, role=Role.admin))
    subscription = live.hub.subscribe(connection, lambda event: True, ("feed",))
    assert subscription is not None

    async def take() -> None:
        while True:
            event = await subscription.queue.get()
            if event is None:
                raise RuntimeError("the subscription was dropped (too slow)")
            now = time.monotonic()
            p = event.payload
            key = (p["phase"], p["writer"], p["n"])
            received.seen[key] = received.seen.get(key, 0) + 1
            received.delays.append(now - p["t"])
            order = (p["phase"], p["writer"])
            if p["n"] <= received.last.get(order, -1):
                received.out_of_order += 1
            received.last[order] = p["n"]

    return asyncio.get_running_loop().create_task(take())


async def writer(phase: int, number: int, until: float, per_transaction: int, written: list[int],
                 stall_s: float = 0.0) -> None:
    from server import db, events

    n = 0
    while time.monotonic() < until:
        async with db.transaction():
            t = time.monotonic()
            for _ in range(per_transaction):
                await events.emit("feed", {"phase": phase, "writer": number, "n": n, "t": t})
                n += 1
            if stall_s:  # once, after the events are written, before the commit
                db.before_commit_batch("zz-stall", [None], lambda _, s=stall_s: asyncio.sleep(s))
                stall_s = 0.0
    written[number] = n


async def subscriber_main() -> int:
    """The child: hub + subscription; for each line "PHASE EXPECTED" on stdin, one JSON line of what came."""
    import json

    from server import database, live

    await database.connect()
    await live.hub.start()
    received = Received()
    taker = await subscribe(received)
    await asyncio.sleep(0.5)  # the hub's Redis subscription is up
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            phase, expected = (int(v) for v in line.split())
            deadline = time.monotonic() + 30
            while sum(1 for key in received.seen if key[0] == phase) < expected and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            keys = [key for key in received.seen if key[0] == phase]
            print(json.dumps({"delays": sorted(received.delays), "received": len(keys),
                              "twice": sum(1 for key in keys if received.seen[key] > 1),
                              "out_of_order": received.out_of_order}), flush=True)
            received.delays.clear()
    finally:
        taker.cancel()
        await live.hub.stop()
        await database.disconnect()
    return 0


async def run_phase(phase: int, writers: int, args: argparse.Namespace, child: subprocess.Popen,
                    stall_s: float = 0.0) -> dict[str, Any]:
    import json

    written = [0] * writers
    started = time.monotonic()
    until = started + args.seconds
    await asyncio.gather(*(writer(phase, i, until, args.events_per_transaction, written,
                                  stall_s if i == 0 else 0.0) for i in range(writers)))
    wall = time.monotonic() - started
    total = sum(written)
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(f"{phase} {total}\n")
    child.stdin.flush()
    came = json.loads(await asyncio.get_running_loop().run_in_executor(None, child.stdout.readline))
    delays = came["delays"]
    return {
        "writers": writers, "events": total, "per_s": total / wall, "p50_ms": percentile(delays, 50) * 1000,
        "p99_ms": percentile(delays, 99) * 1000, "max_ms": (delays[-1] if delays else 0) * 1000,
        "lost": total - came["received"], "twice": came["twice"], "out_of_order": came["out_of_order"],
        "stalled": bool(stall_s),
    }


async def main(args: argparse.Namespace) -> int:
    from tests.support.servers import start_postgres, start_redis

    cancel_on_sigterm()
    postgres, redis = start_postgres(), start_redis()
    try:
        url = f"{postgres.url}?minsize=1&maxsize={args.pool}"
        os.environ.update({"PIPEWRIGHT_DATABASE_URL": url, "PIPEWRIGHT_BROKER_URL": redis.url})
        from server import config, database

        config.reload()
        await database.migrate(url)
        await database.connect(url)
        from server import live

        live.install_publisher()
        child = subprocess.Popen([sys.executable, "-m", "bench.events", "--subscriber"], cwd=ROOT, env=os.environ,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        rows = []
        try:
            assert child.stdout is not None
            assert (await asyncio.get_running_loop().run_in_executor(None, child.stdout.readline)).strip() == "ready"
            for phase, writers in enumerate(args.writers, start=1):
                rows.append(await run_phase(phase, writers, args, child))
            if args.stall:
                rows.append(await run_phase(len(args.writers) + 1, 4, args, child, stall_s=args.stall))
        finally:
            if child.stdin is not None:
                child.stdin.close()
            child.wait(timeout=30)
            await database.disconnect()
    finally:
        redis.stop()
        postgres.stop()
    print(f"\nevents per transaction: {args.events_per_transaction}, {args.seconds:.0f} s per phase, "
          f"PostgreSQL pool {args.pool}")
    print("| writers | events | events/s | delivery p50 | p99 | max | lost | twice |")
    print("|---|---|---|---|---|---|---|---|")
    failed = False
    for row in rows:
        name = f"{row['writers']}" + (f" (one stalls {args.stall:.0f} s)" if row["stalled"] else "")
        print(f"| {name} | {row['events']} | {row['per_s']:.0f} | {row['p50_ms']:.1f} ms | {row['p99_ms']:.1f} ms | "
              f"{row['max_ms']:.0f} ms | {row['lost']} | {row['twice']} |")
        failed |= bool(row["lost"] or row["twice"] or row["out_of_order"])
    if failed:
        print("CHECK FAILED: events lost (not delivered within 30 s), delivered twice, or out of their writer's order")
    return 1 if failed else 0


if __name__ == "__main__":
    arguments = parse_args()
    sys.exit(asyncio.run(subscriber_main() if arguments.subscriber else main(arguments)))
