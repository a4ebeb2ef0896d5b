"""Rule-run throughput and latency: N deals entering a stage with three immediate rules.

    .venv/bin/python -m bench.rule_runs --mode embedded --deals 300
    .venv/bin/python -m bench.rule_runs --mode production --deals 300
    .venv/bin/python -m bench.rule_runs --mode both

The stage has three parallel, immediate rules: add_comment (a template), modify_element
(currency → USD, so a real change with an audit row and a save) and generate_code. A single
producer creates the deals one after another (`--via create`, server.services.elements.create_element)
or creates them in a rule-less stage first and then moves each one in (`--via move`). For each
deal, latency = max(RuleRun.finished_at) of its three runs minus the clock.utcnow() taken just
before its create/move call. Wall time runs from the first create/move to the last finished run.

- embedded: a fresh SQLite file in a temp dir, migrate + connect, and the EmbeddedWorker on this
  process's loop (as tests/conftest.py's `db` fixture does); the producer shares that loop.
- production: PostgreSQL and Redis from tests.support.servers, migrate, `python -m server.cli worker
  --processes P --threads T` as a child process (dramatiq + scheduler), and in this process the
  dispatcher (server.workers.scheduler.install_dispatcher) so due runs go to Redis right after
  commit. Completion is found by polling the database.

One warm-up deal goes through first (and is left out of the figures) so that worker start-up,
template compilation and connection pools are not measured. `--mode both` runs each mode in its
own child process (the broker is chosen when server.workers is first imported) and prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import WorkerProcess, cancel_on_sigterm, group_cpu_s, group_rss_kib, machine_cpu, percentile, rss_kib

ROOT = Path(__file__).resolve().parent.parent

# The three rules of the measured stage: (action_type, key, params).
RULES: list[tuple[str, str, dict[str, Any]]] = [
    ("add_comment", "comment", {"text": "Deal {{deal.title}} entered {{deal.stage.name}} "
                                        "({{deal.amount}} {{deal.currency}}) at {{now}}"}),
    ("modify_element", "set_currency", {"fields": {"currency": "USD"}}),
    ("generate_code", "code", {"length": 10}),
]


# ---------------------------------------------------------------- arguments and figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.rule_runs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("embedded", "production", "both"), default="both")
    parser.add_argument("--deals", type=int, default=300, help="deals to create (default 300)")
    parser.add_argument("--via", choices=("create", "move"), default="create",
                        help="create deals in the rule stage, or create them elsewhere and move them in")
    parser.add_argument("--rate", type=float, default=0,
                        help="deals per second for the producer (default 0: as fast as it can)")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (embedded worker, and per process)")
    parser.add_argument("--processes", type=int, default=2, help="production: dramatiq worker processes")
    parser.add_argument("--poll-ms", type=int, default=50, help="PIPEWRIGHT_POLL_MS for the scheduler")
    parser.add_argument("--pg-options", default="",
                        help="production: query string for the PostgreSQL URL, e.g. maxsize=10 (pool size)")
    parser.add_argument("--timeout", type=float, default=180, help="give up when no run finished for this long (s)")
    parser.add_argument("--csv-out", default=None,
                        help="write one row per rule run (deal, t0, created, started, finished) to this CSV file")
    parser.add_argument("--json-out", default=None, help="also write the figures as JSON to this file")
    args = parser.parse_args(argv)
    if args.deals < 1:
        parser.error("--deals must be at least 1")
    return args




def report(result: dict[str, Any]) -> str:
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(result["statuses"].items()))
    lat, start = result["latency_ms"], result["first_start_ms"]
    rate = f", at most {result['rate']:g}/s" if result["rate"] else ""
    lines = [
        f"mode {result['mode']}: {result['setup']}",
        f"  deals                {result['deals']} (via {result['via']}"
        f"{rate}), rules per deal 3",
        f"  total rule runs      {result['rule_runs']} ({statuses})",
        f"  producer             {result['producer_s']:.2f} s ({result['deals_per_s']:.0f} {result['via']}s/s)",
        f"  wall time            {result['wall_s']:.2f} s (first {result['via']} -> last rule run finished)",
        f"  rule runs per second {result['runs_per_s']:.1f}",
        f"  latency {result['via']} -> last rule done   p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms, "
        f"max {lat['max']:.0f} ms",
        f"  latency {result['via']} -> first rule start p50 {start['p50']:.0f} ms, p99 {start['p99']:.0f} ms",
        f"  per run: created -> started p50 {result['run_wait_ms']['p50']:.0f} ms, p99 "
        f"{result['run_wait_ms']['p99']:.0f} ms; started -> finished p50 {result['run_exec_ms']['p50']:.0f} ms, "
        f"p99 {result['run_exec_ms']['p99']:.0f} ms",
    ]
    cpu = result["cpu"]
    lines.append(f"  CPU                  machine {cpu['machine_busy_pct']:.0f}% busy (all cores, every process); "
                 f"this process {cpu['bench_process_s']:.1f} s"
                 + (f"; worker processes {cpu['worker_processes_s']:.1f} s "
                    f"({1000 * cpu['worker_processes_s'] / max(result['rule_runs'], 1):.1f} ms per rule run)"
                    if cpu["worker_processes_s"] is not None else ""))
    memory = result["memory_mib"]
    lines.append(f"  memory               this process: RSS {memory['rss']:.0f} MiB, peak {memory['peak']:.0f} MiB"
                 + (f"; worker processes: RSS {memory['workers_rss']:.0f} MiB together, largest peak "
                    f"{memory['workers_peak']:.0f} MiB" if memory.get("workers_rss") is not None else ""))
    lines.append(f"  effects check        {result['checks']}")
    if result.get("unfinished"):
        lines.append(f"  UNFINISHED           {result['unfinished']} runs did not finish (timed out)")
    return "\n".join(lines)


# ---------------------------------------------------------------- CPU accounting (Linux /proc)




# ---------------------------------------------------------------- the measurement (either mode)


async def _setup_stage() -> tuple[Any, Any, list[int]]:
    """A deal pipeline with a rule-less inbox stage and the measured stage with the three rules."""
    from server.actor import SYSTEM
    from server.models import Pipeline, Stage
    from server.services.rules import RuleInput, create_rule

    pipeline = await Pipeline.create(name="Bench", entity_type="deal", is_default=True)
    inbox = await Stage.create(pipeline=pipeline, code="inbox", name="Inbox", position=0)
    stage = await Stage.create(pipeline=pipeline, code="bench", name="Bench", position=1)
    rule_ids = []
    for action_type, key, params in RULES:
        rule = await create_rule(stage.id, RuleInput(action_type=action_type, key=key, params=params), actor=SYSTEM)
        rule_ids.append(rule.id)
    return inbox, stage, rule_ids


async def _enter(via: str, title: str, inbox: Any, stage: Any) -> tuple[int, datetime]:
    """One deal into the measured stage; returns its id and the time taken just before the call."""
    from server import clock
    from server.actor import SYSTEM
    from server.services.elements import create_element, move_element

    if via == "create":
        t0 = clock.utcnow()
        deal = await create_element("deal", {"title": title, "amount": "1200"}, stage_id=stage.id, actor=SYSTEM)
        return deal.id, t0
    deal = await create_element("deal", {"title": title, "amount": "1200"}, stage_id=inbox.id, actor=SYSTEM)
    t0 = clock.utcnow()
    await move_element("deal", deal.id, stage.id, actor=SYSTEM)
    return deal.id, t0


async def _wait_finished(rule_ids: list[int], expected: int, *, timeout_s: float,
                         alive: Any = None) -> int:
    """Poll until `expected` runs of these rules are finished; returns the number still unfinished."""
    from server.models import RuleRun
    from server.rules.engine import FINISHED

    last_done, last_progress = -1, time.monotonic()
    while True:
        done = await RuleRun.filter(rule_id__in=rule_ids, status__in=FINISHED).count()
        if done >= expected:
            return 0
        if done != last_done:
            last_done, last_progress = done, time.monotonic()
        if alive is not None:
            alive()
        if time.monotonic() - last_progress > timeout_s:
            return expected - done
        await asyncio.sleep(0.1)


async def _check_effects(deal_ids: list[int], rule_ids: list[int]) -> str:
    """The rules did what they say: currency set, one rendered comment, a 10-character code per deal."""
    from server.models import Deal, RuleRun, TimelineEntry

    problems = []
    usd = await Deal.filter(id__in=deal_ids, currency="USD").count()
    if usd != len(deal_ids):
        problems.append(f"{len(deal_ids) - usd} deals kept their currency")
    comments = await TimelineEntry.filter(element_type="deal", element_id__in=deal_ids, kind="comment").values_list(
        "text", flat=True)
    if len(comments) != len(deal_ids) or any("{" in c or "Bench deal" not in c for c in comments):
        problems.append(f"{len(comments)} comments for {len(deal_ids)} deals, or unrendered text")
    codes = await RuleRun.filter(rule_id=rule_ids[2], element_id__in=deal_ids).values_list("outputs", flat=True)
    if sum(len((o or {}).get("code", "")) == 10 for o in codes) != len(deal_ids):
        problems.append("some deals have no 10-character code")
    return "; ".join(problems) or "ok"


def _write_csv(path: str, rows: list[dict[str, Any]], marks: dict[int, datetime]) -> None:
    import csv

    start = min(marks.values())

    def ms(value: datetime | None) -> str:
        return f"{(value - start).total_seconds() * 1000:.1f}" if value is not None else ""

    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["deal_id", "rule_key", "status", "t0_ms", "created_ms", "started_ms", "finished_ms"])
        for r in sorted(rows, key=lambda r: (r["element_id"], r["rule_key"])):
            out.writerow([r["element_id"], r["rule_key"], r["status"], ms(marks.get(r["element_id"])),
                          ms(r["created_at"]), ms(r["started_at"]), ms(r["finished_at"])])


async def measure(args: argparse.Namespace, *, alive: Any = None, worker_pgid: int | None = None) -> dict[str, Any]:
    """Set up, warm up with one deal, then run the measured deals and compute the figures."""
    from server.models import RuleRun

    inbox, stage, rule_ids = await _setup_stage()
    warm_id, _ = await _enter(args.via, "warm-up", inbox, stage)
    if await _wait_finished(rule_ids, len(RULES), timeout_s=120, alive=alive):
        raise RuntimeError("the warm-up deal's rule runs did not finish within 120 s")

    marks: dict[int, datetime] = {}
    cpu_before = machine_cpu(), time.process_time(), group_cpu_s(worker_pgid) if worker_pgid else 0.0
    started = time.perf_counter()
    for i in range(args.deals):
        if args.rate > 0:
            await asyncio.sleep(max(0.0, started + i / args.rate - time.perf_counter()))
        deal_id, t0 = await _enter(args.via, f"Bench deal {i}", inbox, stage)
        marks[deal_id] = t0
    producer_s = time.perf_counter() - started
    expected = len(RULES) * (args.deals + 1)
    unfinished = await _wait_finished(rule_ids, expected, timeout_s=args.timeout, alive=alive)
    (busy0, total0), own0, workers0 = cpu_before
    busy1, total1 = machine_cpu()
    cpu = {
        "machine_busy_pct": 100 * (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0,
        "bench_process_s": time.process_time() - own0,
        "worker_processes_s": (group_cpu_s(worker_pgid) - workers0) if worker_pgid else None,
    }
    # Embedded, this process is the server (worker, scheduler, database); its peak includes start-up (migrate).
    rss, peak = rss_kib()
    memory: dict[str, float | None] = {"rss": rss / 1024, "peak": peak / 1024, "workers_rss": None}
    if worker_pgid:
        workers_rss, workers_peak = group_rss_kib(worker_pgid)
        memory.update(workers_rss=workers_rss / 1024, workers_peak=workers_peak / 1024)

    rows = await RuleRun.filter(rule_id__in=rule_ids).exclude(element_id=warm_id).values(
        "element_id", "rule_key", "status", "created_at", "started_at", "finished_at"
    )
    if args.csv_out:
        _write_csv(args.csv_out, rows, marks)
    statuses: dict[str, int] = {}
    last_done: dict[int, datetime] = {}
    first_start: dict[int, datetime] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
        eid = row["element_id"]
        if row["finished_at"] is not None:
            last_done[eid] = max(last_done.get(eid, row["finished_at"]), row["finished_at"])
        if row["started_at"] is not None:
            first_start[eid] = min(first_start.get(eid, row["started_at"]), row["started_at"])
    # Per run: created (inside the producer's transaction) -> started, and started -> finished.
    waits = sorted((r["started_at"] - r["created_at"]).total_seconds() * 1000 for r in rows if r["started_at"])
    execs = sorted((r["finished_at"] - r["started_at"]).total_seconds() * 1000
                   for r in rows if r["started_at"] and r["finished_at"])
    latencies = sorted((last_done[d] - t0).total_seconds() * 1000 for d, t0 in marks.items() if d in last_done)
    starts = sorted((first_start[d] - t0).total_seconds() * 1000 for d, t0 in marks.items() if d in first_start)
    checks = await _check_effects(list(marks), rule_ids)
    wall_s = (max(last_done.values()) - min(marks.values())).total_seconds() if last_done else math.nan
    return {
        "deals": args.deals,
        "via": args.via,
        "rate": args.rate,
        "rule_runs": len(rows),
        "statuses": statuses,
        "unfinished": unfinished,
        "producer_s": producer_s,
        "deals_per_s": args.deals / producer_s,
        "wall_s": wall_s,
        "runs_per_s": sum(v for k, v in statuses.items() if k not in ("scheduled", "queued", "running")) / wall_s,
        "latency_ms": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "max": latencies[-1] if latencies else math.nan},
        "first_start_ms": {"p50": percentile(starts, 50), "p99": percentile(starts, 99)},
        "checks": checks,
        "cpu": cpu,
        "memory_mib": memory,
        "run_wait_ms": {"p50": percentile(waits, 50), "p99": percentile(waits, 99)},
        "run_exec_ms": {"p50": percentile(execs, 50), "p99": percentile(execs, 99)},
    }


# ---------------------------------------------------------------- embedded mode


async def run_embedded(args: argparse.Namespace) -> dict[str, Any]:
    cancel_on_sigterm()
    workdir = tempfile.mkdtemp(prefix="pw-bench-")
    try:
        url = f"sqlite://{workdir}/bench.db"
        os.environ["PIPEWRIGHT_DATABASE_URL"] = url
        os.environ.pop("PIPEWRIGHT_BROKER_URL", None)
        os.environ["PIPEWRIGHT_POLL_MS"] = str(args.poll_ms)
        from server import config, database

        config.reload()
        await database.migrate_in_child(url)  # as `serve` does: the server never carries the loader
        await database.connect(url)
        from server.workers.embedded import EmbeddedWorker

        worker = EmbeddedWorker(threads=args.threads)
        await worker.start()
        try:
            result = await measure(args)
        finally:
            await worker.stop()
            await database.disconnect()
        result.update(mode="embedded", setup=f"SQLite file, EmbeddedWorker on the producer's loop, "
                                              f"{args.threads} threads, poll {args.poll_ms} ms")
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- production mode


async def run_production(args: argparse.Namespace) -> dict[str, Any]:
    from tests.support.servers import start_postgres, start_redis

    cancel_on_sigterm()
    workdir = tempfile.mkdtemp(prefix="pw-bench-")
    postgres = redis = worker = None
    connected = False
    try:
        postgres = start_postgres()
        redis = start_redis()
        database_url = f"{postgres.url}?{args.pg_options}" if args.pg_options else postgres.url
        # Before anything imports server.workers: the broker module picks Redis from the environment.
        os.environ.update({
            "PIPEWRIGHT_DATABASE_URL": database_url,
            "PIPEWRIGHT_BROKER_URL": redis.url,
            "PIPEWRIGHT_POLL_MS": str(args.poll_ms),
        })
        assert "server.workers.broker" not in sys.modules, "the broker was imported before its URL was set"
        from server import config, database

        config.reload()
        await database.migrate(database_url)
        await database.connect(database_url)
        connected = True
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        worker = WorkerProcess(args, env, Path(workdir) / "worker.log")

        from server.workers import scheduler

        scheduler.install_dispatcher()
        try:
            result = await measure(args, alive=worker.check_alive, worker_pgid=worker.process.pid)
        except Exception:
            print(f"worker log (last lines):\n{worker.tail()}", file=sys.stderr)
            raise
        result.update(mode="production", setup=f"PostgreSQL + Redis, `server.cli worker --processes {args.processes} "
                                                f"--threads {args.threads}`, poll {args.poll_ms} ms, "
                                                f"dispatcher in the producer"
                                                f"{', ' + args.pg_options if args.pg_options else ''}")
        return result
    finally:
        if "server.rules.dispatch" in sys.modules:
            sys.modules["server.rules.dispatch"].RUNS.dispatcher = None
            sys.modules["server.rules.dispatch"].RUNS.taker = None
        if worker is not None:
            worker.stop()
        if connected:
            from server import database

            await database.disconnect()
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- both modes, each in a child process


def run_both(args: argparse.Namespace) -> int:
    results = []
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as tmp:
        for mode in ("embedded", "production"):
            out = Path(tmp) / f"{mode}.json"
            command = [
                sys.executable, "-m", "bench.rule_runs", "--mode", mode, "--deals", str(args.deals),
                "--via", args.via, "--rate", str(args.rate), "--threads", str(args.threads),
                "--processes", str(args.processes), "--poll-ms", str(args.poll_ms), "--pg-options", args.pg_options,
                "--timeout", str(args.timeout), "--json-out", str(out),
                *(["--csv-out", f"{args.csv_out}.{mode}.csv"] if args.csv_out else []),
            ]
            child = subprocess.Popen(command, cwd=ROOT)
            # SIGTERM goes on to the child, which cleans up after itself; then this loop stops.
            signal.signal(signal.SIGTERM, lambda signum, frame, child=child: child.send_signal(signum))
            try:
                code = child.wait()
            except KeyboardInterrupt:  # the child got SIGINT too (same process group): let it finish
                code = child.wait(timeout=60)
            if code != 0:
                print(f"{mode} mode failed with exit code {code}", file=sys.stderr)
                return code
            results.append(json.loads(out.read_text()))
            print(flush=True)
    print(f"summary ({args.deals} deals via {args.via}, 3 rules each)")
    print(f"  {'mode':<11} {'rule runs':>9} {'wall s':>7} {'runs/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for r in results:
        lat = r["latency_ms"]
        print(f"  {r['mode']:<11} {r['rule_runs']:>9} {r['wall_s']:>7.2f} {r['runs_per_s']:>7.1f} "
              f"{lat['p50']:>7.0f} {lat['p99']:>7.0f} {lat['max']:>7.0f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return 0




def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mode == "both":
        return run_both(args)
    runner = run_embedded if args.mode == "embedded" else run_production
    try:
        result = asyncio.run(runner(args))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("interrupted; worker, servers and temp dirs stopped and removed", file=sys.stderr)
        return 130
    print(report(result), flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    return 1 if result["unfinished"] else 0


if __name__ == "__main__":
    sys.exit(main())
