"""A million pending delayed runs: does the claim stay flat, and do runs that come due still start on time?

    .venv/bin/python -m bench.pending_runs --backend sqlite --pending 1000000
    .venv/bin/python -m bench.pending_runs --backend postgres --pending 1000000

Set-up: a deal pipeline with two stages, each with one `generate_code` rule: "Later" (after 30 days) and
"Soon" (after `--delay-s` seconds). `--deals` real deals enter Later through `create_element`, so each has a
real stage run and a scheduled run. The pending runs are copies of those runs, made in the database in one
statement per 100,000 rows (a recursive CTE on SQLite, generate_series on PostgreSQL), due between 1 and 31
days from now, spread over the deals' stage runs.

At each level (0, 10k, 100k, ... up to `--pending`) the bench measures, with nothing due:

- the claim: `server.rules.queue.claim_due()` called `--claims` times (p50/p99), and the plan of its SELECT
  (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL);
- the scheduler's whole wake-up: `server.workers.scheduler.tick(sweep=True)` (p50/p99);
- the operations page and /health: `server.services.operations.figures` and `health`;
- due -> started for a trickle: `--trickle` deals enter Soon, `--spacing` s apart, while the pending runs wait;
  each run's `started_at - due_at`, through the real scheduler (poll `--poll-ms`, the default 500 ms) and
  worker (embedded: the EmbeddedWorker on this loop; postgres: `server.cli worker` processes and Redis);
- after the levels, a due backlog: `--due` runs due at once (within the last hour), the claim while it drains
  (p50/p99 of `--due-claims` claims of 200, runs claimed per second, no worker taking them) and its plans, and
  the operations figures with them due;
- the database's size (the SQLite file and its WAL; PostgreSQL: rule_run with its indexes) and the peak RSS of
  this process, which on SQLite is the embedded server (worker, scheduler and database in one process), and
  on PostgreSQL of the worker processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import ROOT, WorkerProcess, cancel_on_sigterm, group_rss_kib, percentile, rss_kib

CHUNK = 100_000
SPREAD_S = 30 * 86400  # pending runs are due over 30 days, from a day from now


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.pending_runs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pending", type=int, default=1_000_000, help="pending delayed runs at the last level")
    parser.add_argument("--levels", default="", help="comma-separated levels (default 0,10000,100000,... to --pending)")
    parser.add_argument("--deals", type=int, default=200, help="real deals whose stage runs the pending runs share")
    parser.add_argument("--claims", type=int, default=200, help="claims timed per level")
    parser.add_argument("--trickle", type=int, default=20, help="runs that come due per level")
    parser.add_argument("--spacing", type=float, default=0.25, help="seconds between the trickle's deals")
    parser.add_argument("--delay-s", type=int, default=2, help="the Soon rule's delay")
    parser.add_argument("--poll-ms", type=int, default=500, help="PIPEWRIGHT_POLL_MS (default: the shipped 500)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--due", type=int, default=100_000, help="runs due at once for the due-backlog level (0: none)")
    parser.add_argument("--due-claims", type=int, default=100, help="claims timed while the due backlog drains")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    if args.pending < 0 or args.deals < 1:
        parser.error("--pending must be at least 0 and --deals at least 1")
    if args.levels:
        args.level_list = sorted({int(v) for v in args.levels.split(",")})
    else:
        args.level_list = [0] + [n for n in (10_000, 100_000, 1_000_000, 10_000_000) if n < args.pending] + (
            [args.pending] if args.pending else [])
    return args


def ms_figures(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {"p50": percentile(values, 50), "p99": percentile(values, 99), "max": values[-1] if values else float("nan")}


# ---------------------------------------------------------------- set-up and filling


async def setup(args: argparse.Namespace) -> dict[str, Any]:
    from server.actor import SYSTEM
    from server.models import Pipeline, RuleRun, Stage
    from server.services.elements import create_element
    from server.services.rules import RuleInput, create_rule

    pipeline = await Pipeline.create(name="Bench", entity_type="deal", is_default=True)
    later = await Stage.create(pipeline=pipeline, code="later", name="Later", position=0)
    soon = await Stage.create(pipeline=pipeline, code="soon", name="Soon", position=1)
    later_rule = await create_rule(later.id, RuleInput(action_type="generate_code", key="later", params={"length": 8},
                                                       timing={"kind": "after", "amount": 30, "unit": "days"}),
                                   actor=SYSTEM)
    soon_rule = await create_rule(soon.id, RuleInput(action_type="generate_code", key="soon", params={"length": 8},
                                                     timing={"kind": "after", "amount": args.delay_s,
                                                             "unit": "seconds"}), actor=SYSTEM)
    for i in range(args.deals):
        await create_element("deal", {"title": f"Pending {i}", "amount": "100"}, stage_id=later.id, actor=SYSTEM)
    templates = await RuleRun.filter(rule_id=later_rule.id).count()
    assert templates == args.deals, f"{templates} scheduled runs for {args.deals} deals"
    return {"later_rule": later_rule.id, "soon_rule": soon_rule.id, "soon_stage": soon.id, "copied": 0}


COLUMNS = ("stage_run_id, element_type, element_id, rule_id, rule_key, action_type, title, position, lane, "
           "spec, status, due_at, attempts, outputs, revision, created_at")


async def fill(backend: str, state: dict[str, Any], upto: int, *, due_now: bool = False) -> float:
    """Copies of the Later runs until `upto` pending runs exist (beyond the templates); returns the seconds.
    `due_now`: the copies are due within the last hour instead (the due backlog), counted in state["due"]."""
    from tortoise.connection import get_connection

    from server import clock
    conn = get_connection("default")
    key, spread = ("due", 3600) if due_now else ("copied", SPREAD_S)
    base = clock.utcnow() - timedelta(seconds=spread + 1) if due_now else clock.utcnow() + timedelta(days=1)
    started = time.perf_counter()
    rule_id = state["later_rule"]
    state.setdefault(key, 0)
    while state[key] < upto:
        first, n = state[key], min(CHUNK, upto - state[key])
        select = (f"t.stage_run_id, t.element_type, t.element_id, t.rule_id, t.rule_key, t.action_type, t.title, "
                  f"t.position, t.lane, t.spec, 'scheduled', {{due}}, 0, t.outputs, t.revision, t.created_at")
        if backend == "sqlite":
            due = (f"strftime('%Y-%m-%d %H:%M:%f', '{base:%Y-%m-%d %H:%M:%S}', '+' || ((n.i * 7919) % {spread}) "
                   f"|| ' seconds') || '000+00:00'")
            sql = (f"WITH RECURSIVE n(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM n WHERE i < {first + n - 1}), "
                   f"t AS (SELECT *, row_number() OVER (ORDER BY id) - 1 AS k FROM rule_run WHERE rule_id = {rule_id} "
                   f"AND id <= (SELECT min(id) + {state['templates'] - 1} FROM rule_run WHERE rule_id = {rule_id})) "
                   f"INSERT INTO rule_run ({COLUMNS}) SELECT {select.format(due=due)} "
                   f"FROM n JOIN t ON t.k = n.i % {state['templates']}")
        else:
            due = f"timestamptz '{base.isoformat()}' + ((n.i::bigint * 7919) % {spread}) * interval '1 second'"
            sql = (f"WITH t AS (SELECT *, row_number() OVER (ORDER BY id) - 1 AS k FROM rule_run WHERE rule_id = {rule_id} "
                   f"ORDER BY id LIMIT {state['templates']}) "
                   f"INSERT INTO rule_run ({COLUMNS}) SELECT {select.format(due=due)} "
                   f"FROM generate_series({first}, {first + n - 1}) AS n(i) JOIN t ON t.k = n.i % {state['templates']}")
        await conn.execute_script(sql)  # one statement: its own transaction
        state[key] += n
    if backend == "postgres":
        await conn.execute_script("ANALYZE rule_run")
    return time.perf_counter() - started


# ---------------------------------------------------------------- measuring one level


async def claim_plan(backend: str) -> list[str]:
    """The plans of the claim's SELECTs (one per claimable status), as the database runs them now."""
    from tortoise.connection import get_connection

    from server import clock
    from server.rules import queue

    conn = get_connection("default")
    lines = []
    for status in queue.CLAIMABLE:
        sql = queue.due_runs(status, clock.utcnow(), 200).only("id", "due_at").sql(params_inline=True)
        lines.append(f"{status.value}:")
        if backend == "sqlite":
            _, rows = await conn.execute_query(f"EXPLAIN QUERY PLAN {sql}")
            lines += [f"  {row[3]}" for row in rows]
        else:
            _, rows = await conn.execute_query(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql} FOR UPDATE SKIP LOCKED")
            lines += [f"  {row[0]}" for row in rows]
    return lines


async def timed(make: Any, times: int) -> dict[str, float]:
    took = []
    for _ in range(times):
        started = time.perf_counter()
        await make()
        took.append((time.perf_counter() - started) * 1000)
    return ms_figures(took)


async def db_size(backend: str, path: Path | None) -> int:
    if backend == "sqlite":
        assert path is not None
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    from tortoise.connection import get_connection

    _, rows = await get_connection("default").execute_query("SELECT pg_total_relation_size('rule_run')")
    return int(next(iter(dict(rows[0]).values())))


async def trickle(args: argparse.Namespace, state: dict[str, Any]) -> dict[str, Any]:
    """`--trickle` deals enter Soon; their runs come due `--delay-s` later; due -> started for each."""
    from server.actor import SYSTEM
    from server.models import RuleRun
    from server.services.elements import create_element

    before = set(await RuleRun.filter(rule_id=state["soon_rule"]).values_list("id", flat=True))
    for i in range(args.trickle):
        await create_element("deal", {"title": f"Soon {i}", "amount": "1"}, stage_id=state["soon_stage"], actor=SYSTEM)
        await asyncio.sleep(args.spacing)
    deadline = time.monotonic() + args.delay_s + 60
    while True:
        rows = [r for r in await RuleRun.filter(rule_id=state["soon_rule"]).values("id", "status", "due_at",
                                                                                 "started_at")
                if r["id"] not in before]
        if all(r["status"] == "succeeded" for r in rows) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    lags = [(r["started_at"] - r["due_at"]).total_seconds() * 1000 for r in rows if r["started_at"]]
    return {"runs": len(rows), "succeeded": sum(r["status"] == "succeeded" for r in rows),
            "due_to_started_ms": ms_figures(lags)}


async def measure_level(args: argparse.Namespace, state: dict[str, Any], level: int, db_path: Path | None,
                        start_worker: Any, stop_worker: Any) -> dict[str, Any]:
    from server.actor import SYSTEM
    from server.models import RuleRun
    from server.rules import queue
    from server.services import operations
    from server.workers import scheduler

    fill_s = await fill(args.backend, state, level)
    pending = await RuleRun.filter(status="scheduled").count()
    assert await queue.claim_due() == [], "nothing may be due while the claim is timed"
    result: dict[str, Any] = {
        "level": level, "pending": pending, "fill_s": fill_s,
        "claim_ms": await timed(queue.claim_due, args.claims),
        "tick_ms": await timed(lambda: scheduler.tick(sweep=True), max(20, args.claims // 4)),
        "figures_ms": await timed(lambda: operations.figures(actor=SYSTEM), 10),
        "health_ms": await timed(lambda: operations.health(actor=SYSTEM), 20),
        "plan": await claim_plan(args.backend),
    }
    worker_pgid = await start_worker()
    try:
        result["trickle"] = await trickle(args, state)
        result["worker_rss_kib"] = group_rss_kib(worker_pgid) if worker_pgid else None
    finally:
        await stop_worker()
    result["db_bytes"] = await db_size(args.backend, db_path)
    result["rss_kib"], result["peak_rss_kib"] = rss_kib()
    return result


async def measure_due_backlog(args: argparse.Namespace, state: dict[str, Any]) -> dict[str, Any]:
    """`--due` runs due at once (within the last hour, beside the pending ones): the claim while they drain
    (p50/p99 of `--due-claims` claims, the runs claimed per second), and the operations figures with them due."""
    from server.actor import SYSTEM
    from server.models import RuleRun
    from server.rules import queue
    from server.services import operations

    fill_s = await fill(args.backend, state, args.due, due_now=True)
    due = await RuleRun.filter(status="scheduled", due_at__lte=time_now()).count()
    figures = await timed(lambda: operations.figures(actor=SYSTEM), 10)
    plan = await claim_plan(args.backend)
    took, claimed = [], 0
    for _ in range(args.due_claims):
        started = time.perf_counter()
        claimed += len(await queue.claim_due())
        took.append((time.perf_counter() - started) * 1000)
    return {"due": due, "fill_s": fill_s, "claim_ms": ms_figures(took), "claimed": claimed,
            "claimed_per_s": claimed / (sum(took) / 1000), "figures_ms": figures, "plan": plan}


def time_now() -> Any:
    from server import clock

    return clock.utcnow()


def report_due(backend: str, r: dict[str, Any]) -> str:
    c, f = r["claim_ms"], r["figures_ms"]
    return "\n".join([
        f"{backend}: due backlog of {r['due']:,} runs (filled in {r['fill_s']:.1f} s)",
        f"  claim_due           p50 {c['p50']:.2f} ms  p99 {c['p99']:.2f} ms;  {r['claimed']:,} claimed, "
        f"{r['claimed_per_s']:,.0f} runs/s",
        f"  operations figures  p50 {f['p50']:.1f} ms  p99 {f['p99']:.1f} ms",
        "  claim plan:",
        *(f"    {line}" for line in r["plan"]),
    ])


def report_level(backend: str, r: dict[str, Any]) -> str:
    c, t, f, h, d = r["claim_ms"], r["tick_ms"], r["figures_ms"], r["health_ms"], r["trickle"]["due_to_started_ms"]
    lines = [
        f"{backend}: {r['pending']:,} pending runs (filled in {r['fill_s']:.1f} s), database {r['db_bytes'] / 2**20:.0f} MiB",
        f"  claim_due           p50 {c['p50']:.2f} ms  p99 {c['p99']:.2f} ms",
        f"  scheduler tick      p50 {t['p50']:.2f} ms  p99 {t['p99']:.2f} ms",
        f"  operations figures  p50 {f['p50']:.1f} ms  p99 {f['p99']:.1f} ms;  health p50 {h['p50']:.2f} ms",
        f"  due -> started      p50 {d['p50']:.0f} ms  p99 {d['p99']:.0f} ms  max {d['max']:.0f} ms "
        f"({r['trickle']['succeeded']}/{r['trickle']['runs']} succeeded)",
        f"  RSS of this process {r['rss_kib'] / 1024:.0f} MiB, peak {r['peak_rss_kib'] / 1024:.0f} MiB"
        + (f"; worker processes {r['worker_rss_kib'][0] / 1024:.0f} MiB together, largest peak "
           f"{r['worker_rss_kib'][1] / 1024:.0f} MiB" if r.get("worker_rss_kib") else ""),
        "  claim plan:",
        *(f"    {line}" for line in r["plan"]),
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- the backends


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    cancel_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="pw-bench-pending-"))
    postgres = redis = None
    connected = False
    stops: list[Any] = []
    try:
        env = {"PIPEWRIGHT_POLL_MS": str(args.poll_ms)}
        db_path: Path | None = None
        if args.backend == "sqlite":
            db_path = workdir / "bench.db"
            env["PIPEWRIGHT_DATABASE_URL"] = url = f"sqlite://{db_path}"
            os.environ.pop("PIPEWRIGHT_BROKER_URL", None)
        else:
            from tests.support.servers import start_postgres, start_redis

            postgres, redis = start_postgres(), start_redis()
            env["PIPEWRIGHT_DATABASE_URL"] = url = postgres.url
            env["PIPEWRIGHT_BROKER_URL"] = redis.url
            assert "server.workers.broker" not in sys.modules, "the broker was imported before its URL was set"
        os.environ.update(env)
        from server import config, database

        config.reload()
        await database.migrate_in_child(url)  # as `serve` does: the server never carries the loader
        await database.connect(url)
        connected = True
        from server.workers import scheduler

        if args.backend == "sqlite":
            from server.workers.embedded import EmbeddedWorker

            embedded = EmbeddedWorker(threads=args.threads)
            embedded.start_threads()
            stops.append(embedded.stop)

            async def start_worker() -> int | None:
                await embedded.attach()
                return None

            async def stop_worker() -> None:
                await embedded.detach()
        else:
            scheduler.install_dispatcher()
            process: list[WorkerProcess] = []

            async def start_worker() -> int | None:
                """A fresh worker group, measured only once its scheduler and a worker have beaten (booted)."""
                from server import clock
                from server.models import WorkerBeat

                since = clock.utcnow()
                process.append(WorkerProcess(args, {**os.environ, "PYTHONPATH": str(ROOT)}, workdir / "worker.log"))
                deadline = time.monotonic() + 60
                while len(set(await WorkerBeat.filter(beat_at__gte=since).values_list("role", flat=True))) < 2:
                    process[-1].check_alive()
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the worker did not beat within 60 s:\n{process[-1].tail()}")
                    await asyncio.sleep(0.2)
                return process[-1].process.pid

            async def stop_worker() -> None:
                await asyncio.to_thread(process.pop().stop)

        state = await setup(args)
        state["templates"] = args.deals
        results = []
        for level in args.level_list:
            result = await measure_level(args, state, level, db_path, start_worker, stop_worker)
            print(report_level(args.backend, result), flush=True)
            results.append(result)
        if args.due:
            due = await measure_due_backlog(args, state)
            print(report_due(args.backend, due), flush=True)
            results.append({"due_backlog": due})
        return results
    finally:
        for stop in stops:
            await stop()
        if "server.rules.dispatch" in sys.modules:
            sys.modules["server.rules.dispatch"].RUNS.dispatcher = None
            sys.modules["server.rules.dispatch"].RUNS.taker = None
        if connected:
            from server import database

            await database.disconnect()
        for server in (redis, postgres):
            if server is not None:
                server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def summary(backend: str, results: list[dict[str, Any]]) -> str:
    lines = [f"summary ({backend}; poll as configured, times in ms)",
             f"  {'pending':>9} {'claim p50':>9} {'p99':>7} {'tick p50':>8} {'p99':>7} {'figures':>8} "
             f"{'due->start p50':>14} {'p99':>6} {'db MiB':>7} {'peak RSS MiB':>12}"]
    for r in results:
        if "due_backlog" in r:
            b = r["due_backlog"]
            lines.append(f"  due backlog {b['due']:,}: claim p50 {b['claim_ms']['p50']:.2f} p99 {b['claim_ms']['p99']:.2f}, "
                         f"{b['claimed_per_s']:,.0f} runs/s claimed; figures {b['figures_ms']['p50']:.1f}")
            continue
        d = r["trickle"]["due_to_started_ms"]
        lines.append(f"  {r['pending']:>9,} {r['claim_ms']['p50']:>9.2f} {r['claim_ms']['p99']:>7.2f} "
                     f"{r['tick_ms']['p50']:>8.2f} {r['tick_ms']['p99']:>7.2f} {r['figures_ms']['p50']:>8.1f} "
                     f"{d['p50']:>14.0f} {d['p99']:>6.0f} {r['db_bytes'] / 2**20:>7.0f} "
                     f"{r['peak_rss_kib'] / 1024:>12.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    try:
        results = asyncio.run(run(args))
    except (asyncio.CancelledError, KeyboardInterrupt):
        import traceback
        traceback.print_exc()
        print("interrupted; worker, servers and temp dirs stopped and removed", file=sys.stderr)
        return 130
    print(summary(args.backend, results))
    print(f"load average {os.getloadavg()[0]:.1f}; peak RSS of this process (getrusage) "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2, default=str))
    unfinished = sum(r["trickle"]["runs"] - r["trickle"]["succeeded"] for r in results if "trickle" in r)
    return 1 if unfinished else 0


if __name__ == "__main__":
    sys.exit(main())
