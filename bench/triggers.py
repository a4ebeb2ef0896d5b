"""Inbound webhook events turned into moves: POST /hooks/triggers/{token} over real HTTP, each naming a deal.

    .venv/bin/python -m bench.triggers --mode embedded
    .venv/bin/python -m bench.triggers --mode production
    .venv/bin/python -m bench.triggers --mode both

A deal pipeline has an Inbox stage and a Paid stage; Paid has one inbound webhook trigger and one cheap rule
(add_comment). Deals are created in Inbox; each event is a POST naming one deal, so each should move it into
Paid and run the comment once. A share of events (`--repeat-share`) is sent twice with the same Idempotency-Key:
half of those retries go at the same moment as the first call, half right after its answer; neither may move
again. Two phases on fresh deals: paced (`--rate` events/s) and flat out (`--concurrency` clients).

Latency = finished_at of the deal's comment run minus the clock taken just before its first POST ("event ->
first rule of the new stage done"); the answer latency is the HTTP round trip of the first POST.

- embedded: a fresh SQLite file, the EmbeddedWorker and the app under uvicorn on this process's loop (as
  `pipewright serve` and tests/support/live_server.py); the httpx client shares that loop.
- production: PostgreSQL + Redis from tests.support.servers, `python -m server.cli serve --no-demo` as the web
  process (the webhook's face; its dispatcher sends due runs to Redis) and `python -m server.cli worker`.

The checks count, per deal, one activation (moved), one stay in Paid and one succeeded comment, and per retried
event one first answer and one duplicate naming the same activation. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT, WorkerProcess, cancel_on_sigterm, machine_cpu, percentile, stop_group

COMMENT = "Deal {{deal.title}} paid (webhook)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.triggers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("embedded", "production", "both"), default="both")
    parser.add_argument("--paced", type=int, default=200, help="events in the paced phase (default 200)")
    parser.add_argument("--rate", type=float, default=20, help="events per second in the paced phase (default 20)")
    parser.add_argument("--flat", type=int, default=400, help="events in the flat-out phase (default 400)")
    parser.add_argument("--concurrency", type=int, default=16, help="clients in the flat-out phase (default 16)")
    parser.add_argument("--repeat-share", type=float, default=0.2,
                        help="share of events sent twice with the same Idempotency-Key (default 0.2)")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (embedded worker, and per process)")
    parser.add_argument("--processes", type=int, default=2, help="production: dramatiq worker processes")
    parser.add_argument("--poll-ms", type=int, default=50, help="PIPEWRIGHT_POLL_MS for the scheduler")
    parser.add_argument("--timeout", type=float, default=120, help="give up when no run finished for this long (s)")
    parser.add_argument("--json-out", default=None, help="also write the figures as JSON to this file")
    args = parser.parse_args(argv)
    if args.paced < 1 or args.flat < 1 or args.concurrency < 1 or not 0 <= args.repeat_share <= 1:
        parser.error("--paced, --flat and --concurrency must be at least 1, --repeat-share within 0..1")
    return args


# ---------------------------------------------------------------- the pipeline and the events


@dataclass
class Bench:
    token: str
    inbox_id: int
    paid_id: int
    rule_id: int


@dataclass
class Sent:
    deal_id: int
    t0: datetime
    answer_ms: float
    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (status, body) of each POST
    retried: str = ""  # "", "at once" or "after"


async def setup() -> Bench:
    from server.actor import SYSTEM
    from server.models import Pipeline, Stage
    from server.services.rules import RuleInput, create_rule
    from server.services.triggers import TriggerInput, create_trigger

    pipeline = await Pipeline.create(name="Bench", entity_type="deal", is_default=True)
    inbox = await Stage.create(pipeline=pipeline, code="inbox", name="Inbox", position=0)
    paid = await Stage.create(pipeline=pipeline, code="paid", name="Paid", position=1)
    trigger = await create_trigger(paid.id, TriggerInput(trigger_type="webhook", name="Paid in the shop"),
                                   actor=SYSTEM)
    rule = await create_rule(paid.id, RuleInput(action_type="add_comment", key="comment", params={"text": COMMENT}),
                             actor=SYSTEM)
    assert trigger.token is not None
    return Bench(trigger.token, inbox.id, paid.id, rule.id)


async def new_deals(bench: Bench, count: int, prefix: str) -> list[int]:
    from server.actor import SYSTEM
    from server.services.elements import create_element

    return [(await create_element("deal", {"title": f"{prefix} {i}"}, stage_id=bench.inbox_id, actor=SYSTEM)).id
            for i in range(count)]


def retry_kind(index: int, share: float) -> str:
    """Every 1/share-th event is retried, alternately at once and after the first answer."""
    if share <= 0:
        return ""
    every = max(1, round(1 / share))
    if index % every:
        return ""
    return "at once" if (index // every) % 2 == 0 else "after"


async def send(client: Any, bench: Bench, deal_id: int, index: int, share: float, phase: str) -> Sent:
    from server import clock

    body = {"element_type": "deal", "element_id": deal_id, "order": f"{phase}-{index}"}
    headers = {"Idempotency-Key": f"{phase}-{index}"}
    url = f"/hooks/triggers/{bench.token}"

    async def post() -> tuple[int, dict[str, Any]]:
        response = await client.post(url, json=body, headers=headers)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, {"error": response.text[:200]}

    kind = retry_kind(index, share)
    t0 = clock.utcnow()
    started = time.perf_counter()
    if kind == "at once":
        answers = list(await asyncio.gather(post(), post()))
    else:
        answers = [await post()]
    answer_ms = 1000 * (time.perf_counter() - started)
    if kind == "after":
        answers.append(await post())
    return Sent(deal_id, t0, answer_ms, answers, kind)


async def phase_events(base: str, bench: Bench, deals: list[int], args: argparse.Namespace, *,
                       phase: str, rate: float = 0, concurrency: int = 1) -> tuple[list[Sent], float]:
    """Send one event per deal, paced or from `concurrency` clients; returns what was sent and the seconds."""
    import httpx

    limits = httpx.Limits(max_connections=max(concurrency, 1) * 2, max_keepalive_connections=max(concurrency, 1) * 2)
    sent: list[Sent] = []
    async with httpx.AsyncClient(base_url=f"http://{base}", limits=limits, timeout=60) as client:
        started = time.perf_counter()
        if rate > 0:
            tasks = []
            for i, deal_id in enumerate(deals):
                await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
                tasks.append(asyncio.create_task(send(client, bench, deal_id, i, args.repeat_share, phase)))
            sent = list(await asyncio.gather(*tasks))
        else:
            queue = list(enumerate(deals))
            queue.reverse()

            async def client_loop() -> None:
                while queue:
                    i, deal_id = queue.pop()
                    sent.append(await send(client, bench, deal_id, i, args.repeat_share, phase))

            await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        return sent, time.perf_counter() - started


async def wait_comments(bench: Bench, deals: list[int], *, timeout_s: float, alive: Any = None) -> int:
    """Poll until every deal's comment run finished; returns how many did not."""
    from server.models import RuleRun
    from server.rules.engine import FINISHED

    last_done, last_progress = -1, time.monotonic()
    while True:
        done = await RuleRun.filter(rule_id=bench.rule_id, element_id__in=deals, status__in=FINISHED).count()
        if done >= len(deals):
            return 0
        if done != last_done:
            last_done, last_progress = done, time.monotonic()
        if alive is not None:
            alive()
        if time.monotonic() - last_progress > timeout_s:
            return len(deals) - done
        await asyncio.sleep(0.1)


async def check(bench: Bench, sent: list[Sent]) -> tuple[str, dict[str, int]]:
    """Every event moved its deal exactly once; every retry was answered as the first call's duplicate."""
    from server.models import Deal, RuleRun, StageRun, TriggerActivation

    deals = [s.deal_id for s in sent]
    problems: list[str] = []
    statuses: dict[str, int] = {}
    for s in sent:
        for status, _ in s.answers:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
    if set(statuses) != {"200"}:
        problems.append(f"answers by status {statuses}")
    activations = await TriggerActivation.filter(element_type="deal", element_id__in=deals).values(
        "element_id", "outcome", "id")
    per_deal: dict[int, list[dict[str, Any]]] = {}
    for a in activations:
        per_deal.setdefault(a["element_id"], []).append(a)
    not_once = [d for d in deals if [a["outcome"] for a in per_deal.get(d, [])] != ["moved"]]
    if not_once:
        problems.append(f"{len(not_once)} deals without exactly one 'moved' activation (e.g. deal {not_once[0]}: "
                        f"{[a['outcome'] for a in per_deal.get(not_once[0], [])]})")
    in_paid = await Deal.filter(id__in=deals, stage_id=bench.paid_id).count()
    if in_paid != len(deals):
        problems.append(f"{len(deals) - in_paid} deals not in Paid")
    stays = await StageRun.filter(element_type="deal", element_id__in=deals, stage_id=bench.paid_id).count()
    if stays != len(deals):
        problems.append(f"{stays} stays in Paid for {len(deals)} deals")
    comments = await RuleRun.filter(rule_id=bench.rule_id, element_id__in=deals, status="succeeded").count()
    if comments != len(deals):
        problems.append(f"{comments} succeeded comments for {len(deals)} deals")
    bad_retries = 0
    for s in sent:
        if not s.retried:
            continue
        bodies = [b for status, b in s.answers if status == 200]
        firsts = [b for b in bodies if not b.get("duplicate")]
        dups = [b for b in bodies if b.get("duplicate")]
        if len(firsts) != 1 or len(dups) != 1 or dups[0]["activation_id"] != firsts[0]["activation_id"] \
                or firsts[0]["outcome"] != "moved":
            bad_retries += 1
    if bad_retries:
        problems.append(f"{bad_retries} retried events not answered once first and once as its duplicate")
    return "; ".join(problems) or "ok", statuses


async def measure_phase(base: str, bench: Bench, args: argparse.Namespace, *, phase: str, count: int,
                        rate: float = 0, concurrency: int = 1, alive: Any = None) -> dict[str, Any]:
    from server.models import RuleRun

    deals = await new_deals(bench, count, f"Bench {phase}")
    cpu0 = machine_cpu()
    load0 = os.getloadavg()
    sent, send_s = await phase_events(base, bench, deals, args, phase=phase, rate=rate, concurrency=concurrency)
    unfinished = await wait_comments(bench, deals, timeout_s=args.timeout, alive=alive)
    busy1, total1 = machine_cpu()
    rows = await RuleRun.filter(rule_id=bench.rule_id, element_id__in=deals).values("element_id", "finished_at")
    done = {r["element_id"]: r["finished_at"] for r in rows if r["finished_at"] is not None}
    latencies = sorted((done[s.deal_id] - s.t0).total_seconds() * 1000 for s in sent if s.deal_id in done)
    answers = sorted(s.answer_ms for s in sent)
    first = min(s.t0 for s in sent)
    wall_s = (max(done.values()) - first).total_seconds() if done else float("nan")
    checks, statuses = await check(bench, sent)
    return {
        "phase": phase, "events": count, "posts": sum(len(s.answers) for s in sent),
        "retried": sum(1 for s in sent if s.retried), "rate": rate, "concurrency": concurrency,
        "send_s": send_s, "events_per_s": count / send_s, "wall_s": wall_s, "moves_per_s": len(done) / wall_s,
        "latency_ms": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
                       "max": latencies[-1] if latencies else float("nan")},
        "answer_ms": {"p50": percentile(answers, 50), "p99": percentile(answers, 99)},
        "machine_busy_pct": 100 * (busy1 - cpu0[0]) / (total1 - cpu0[1]) if total1 > cpu0[1] else 0.0,
        "load_before": load0, "load_after": os.getloadavg(),
        "unfinished": unfinished, "statuses": statuses, "checks": checks,
    }


async def measure(base: str, args: argparse.Namespace, *, alive: Any = None) -> list[dict[str, Any]]:
    """Warm up with one event (left out), then the paced and the flat-out phase on fresh deals."""
    bench = await setup()
    warm = await new_deals(bench, 1, "warm-up")
    sent, _ = await phase_events(base, bench, warm, args, phase="warm")
    if sent[0].answers[0][0] != 200:
        raise RuntimeError(f"the warm-up event was answered {sent[0].answers[0]}")
    if await wait_comments(bench, warm, timeout_s=60, alive=alive):
        raise RuntimeError("the warm-up event's comment did not run within 60 s")
    return [
        await measure_phase(base, bench, args, phase="paced", count=args.paced, rate=args.rate, alive=alive),
        await measure_phase(base, bench, args, phase="flat", count=args.flat, concurrency=args.concurrency,
                            alive=alive),
    ]


def report(result: dict[str, Any]) -> str:
    lines = [f"mode {result['mode']}: {result['setup']}"]
    for p in result["phases"]:
        how = f"at most {p['rate']:g}/s" if p["rate"] else f"flat out, {p['concurrency']} clients"
        lat, ans = p["latency_ms"], p["answer_ms"]
        lines += [
            f"  phase {p['phase']} ({how}): {p['events']} events, {p['posts']} POSTs ({p['retried']} retried)",
            f"    events accepted      {p['events_per_s']:.1f}/s ({p['send_s']:.2f} s to send)",
            f"    moves done           {p['moves_per_s']:.1f}/s (first POST -> last comment, {p['wall_s']:.2f} s)",
            f"    event -> comment     p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms, max {lat['max']:.0f} ms",
            f"    answer (first POST)  p50 {ans['p50']:.0f} ms, p99 {ans['p99']:.0f} ms",
            f"    machine              {p['machine_busy_pct']:.0f}% busy; load average "
            f"{' '.join(f'{v:.2f}' for v in p['load_after'])} "
            f"(before {' '.join(f'{v:.2f}' for v in p['load_before'])})",
            f"    checks               {p['checks']}",
        ]
        if p["unfinished"]:
            lines.append(f"    UNFINISHED           {p['unfinished']} comments did not run (timed out)")
    return "\n".join(lines)


def failed(result: dict[str, Any]) -> bool:
    return any(p["checks"] != "ok" or p["unfinished"] for p in result["phases"])


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
        await database.migrate(url)
        await database.connect(url)
        from server.workers.embedded import EmbeddedWorker
        from tests.support.live_server import running_app

        worker = EmbeddedWorker(threads=args.threads)
        await worker.start()
        try:
            async with running_app() as base:
                phases = await measure(base, args)
        finally:
            await worker.stop()
            await database.disconnect()
        return {"mode": "embedded", "phases": phases,
                "setup": f"SQLite file, the app under uvicorn and the EmbeddedWorker ({args.threads} threads, "
                         f"poll {args.poll_ms} ms) on one loop with the client"}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- production mode


class WebProcess:
    """`python -m server.cli serve --no-demo` with the broker: the web process, serving the webhook."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        from tests.support.servers import free_port

        self.port = free_port()
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--no-demo", "--port", str(self.port),
             "--log-level", "warning"],
            env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def base(self) -> str:
        return f"127.0.0.1:{self.port}"

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"the web process exited with {self.process.returncode}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def wait_ready(self, timeout_s: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                self.check_alive()
                try:
                    if (await client.get(f"http://{self.base}/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the web process did not answer /health within {timeout_s} s:\n{self.tail()}")

    def stop(self) -> None:
        stop_group(self.process)
        self.log.close()


async def run_production(args: argparse.Namespace) -> dict[str, Any]:
    from tests.support.servers import start_postgres, start_redis

    cancel_on_sigterm()
    workdir = tempfile.mkdtemp(prefix="pw-bench-")
    postgres = redis = worker = web = None
    connected = False
    try:
        postgres, redis = start_postgres(), start_redis()
        os.environ.update({"PIPEWRIGHT_DATABASE_URL": postgres.url, "PIPEWRIGHT_BROKER_URL": redis.url,
                           "PIPEWRIGHT_POLL_MS": str(args.poll_ms)})
        assert "server.workers.broker" not in sys.modules, "the broker was imported before its URL was set"
        from server import config, database

        config.reload()
        await database.migrate(postgres.url)
        await database.connect(postgres.url)
        connected = True
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        worker = WorkerProcess(args, env, Path(workdir) / "worker.log")
        web = WebProcess(env, Path(workdir) / "web.log")
        await web.wait_ready()

        def alive() -> None:
            assert worker is not None and web is not None
            worker.check_alive()
            web.check_alive()

        try:
            phases = await measure(web.base, args, alive=alive)
        except Exception:
            print(f"worker log:\n{worker.tail()}\nweb log:\n{web.tail()}", file=sys.stderr)
            raise
        return {"mode": "production", "phases": phases,
                "setup": f"PostgreSQL + Redis, `server.cli serve --no-demo` (the webhook's face, dispatcher) and "
                         f"`server.cli worker --processes {args.processes} --threads {args.threads}`, "
                         f"poll {args.poll_ms} ms"}
    finally:
        for child in (web, worker):
            if child is not None:
                child.stop()
        if connected:
            from server import database

            await database.disconnect()
        for server in (redis, postgres):
            if server is not None:
                server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- both modes, each in a child process


def run_both(args: argparse.Namespace, argv: list[str]) -> int:
    results = []
    passed = [a for a in argv if not a.startswith("--mode") and a not in ("embedded", "production", "both")]
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as tmp:
        for mode in ("embedded", "production"):
            out = Path(tmp) / f"{mode}.json"
            code = subprocess.call([sys.executable, "-m", "bench.triggers", *passed, "--mode", mode,
                                    "--json-out", str(out)], cwd=ROOT)
            if not out.exists():
                print(f"{mode} mode failed with exit code {code}", file=sys.stderr)
                return code or 1
            results.append(json.loads(out.read_text()))
            print(flush=True)
    print("summary (events per second accepted / moves done per second, event -> comment p50/p99 ms)")
    for r in results:
        for p in r["phases"]:
            lat = p["latency_ms"]
            print(f"  {r['mode']:<11} {p['phase']:<6} {p['events_per_s']:>7.1f} {p['moves_per_s']:>7.1f} "
                  f"{lat['p50']:>7.0f} {lat['p99']:>7.0f}  {p['checks']}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return 1 if any(failed(r) for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.mode == "both":
        return run_both(args, [a for a in argv if a != "--json-out" and a != args.json_out])
    runner = run_embedded if args.mode == "embedded" else run_production
    try:
        result = asyncio.run(runner(args))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("interrupted; servers, worker and temp dirs stopped and removed", file=sys.stderr)
        return 130
    print(report(result), flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    return 1 if failed(result) else 0


if __name__ == "__main__":
    sys.exit(main())
