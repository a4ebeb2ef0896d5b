"""GraphQL API figures: the 100-deal page query under load, and live fan-out to websocket subscribers.

    .venv/bin/python -m bench.api                                   # both parts, SQLite (about 65 s)
    .venv/bin/python -m bench.api --part page --backend both        # the page query on SQLite and PostgreSQL
    .venv/bin/python -m bench.api --part fanout --subscribers 100,1000

Part `page`: a database seeded from this process (a deal pipeline, one generate_code rule on the first
stage, N deals each with 1-3 contacts, a responsible manager, every other one a company, and every
deal's run finished by an EmbeddedWorker on this loop). The SQL statements of one 100-deal page are
counted in-process (httpx.ASGITransport on create_app(runtime=False), a handler on the
`tortoise.db_client` logger, as tests/schema/test_api_statements.py does). Then `python -m server.cli serve
--no-demo` runs as a child process on that database and C httpx clients post the page query for D
seconds after a warm-up: requests per second, p50/p99 latency, the server's CPU per request.

Part `fanout`: `serve --no-demo` on a fresh SQLite file (embedded worker), one generate_code rule on
the first stage. For each subscriber count, child processes (`--sub-processes`, not the server, not
the driver) open that many graphql-transport-ws websockets, one `ruleRuns(elementType: "deal")`
subscription each. One warm-up deal proves every subscription is registered (each must receive its
`succeeded` event). Then this process creates R deals with the `createDeal` mutation, S seconds apart.
Delay = time.time() when a subscriber receives a run's `succeeded` event minus that run's
`finishedAt` (read back with the `ruleRuns` query), for every (subscriber, run) pair.

When several parts/backends are asked for, each runs in its own child process (`run_children`).
Every server, child process and temp dir is removed at the end, and also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import logging
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import cancel_on_sigterm, machine_cpu, percentile, stop_group

ROOT = Path(__file__).resolve().parent.parent

PAGE = """query($first: Int!) { deals(first: $first) { totalCount edges { cursor node {
  id title amount stage { code name } responsible { name email } company { name }
  contacts { name emails } currentRuns { ruleKey status outputs }
} } pageInfo { hasNextPage endCursor } } }"""

SUBSCRIPTION = 'subscription { ruleRuns(elementType: "deal") { cursor runId status } }'
CREATE_DEAL = """mutation($input: CreateDealInput!) { createDeal(input: $input) {
  __typename ... on Deal { id } } }"""
RUNS_OF = """query($id: ID!) { ruleRuns(elementType: "deal", elementId: $id) {
  nodes { id status createdAt startedAt finishedAt } } }"""


# ---------------------------------------------------------------- arguments and figures


def _counts(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("give at least one count, each at least 1")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("page", "fanout", "all"), default="all")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite",
                        help="database for the page part (default sqlite; postgres starts one from tests.services)")
    parser.add_argument("-c", "--concurrency", type=int, default=8, help="page: concurrent clients (default 8)")
    parser.add_argument("-d", "--duration", type=float, default=10, help="page: measured seconds (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="page: warm-up seconds, not measured (default 2)")
    parser.add_argument("--serial", type=float, default=3,
                        help="page: also this many seconds with one client, for the unloaded latency (default 3; 0: skip)")
    parser.add_argument("--deals", type=int, default=200, help="page: deals in the database (default 200)")
    parser.add_argument("--subscribers", type=_counts, default=[100, 1000],
                        help="fanout: subscriber counts, one round each (default 100,1000)")
    parser.add_argument("--sub-processes", type=int, default=2,
                        help="fanout: child processes holding the websockets (default 2)")
    parser.add_argument("--runs", type=int, default=30, help="fanout: measured deals/runs per round (default 30)")
    parser.add_argument("--spacing", type=float, default=0.5, help="fanout: seconds between deals (default 0.5)")
    parser.add_argument("--compression", choices=("deflate", "none"), default="deflate",
                        help="fanout: permessage-deflate offered by the subscribers (default deflate, "
                             "as browsers and the websockets client do)")
    parser.add_argument("--connect-concurrency", type=int, default=50,
                        help="fanout: websockets each child opens at a time (default 50)")
    parser.add_argument("--log-level", default="info",
                        help="the server's --log-level (default info, as `pipewright serve`: access log on)")
    parser.add_argument("--json-out", default=None, help="also write the figures as JSON to this file")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.duration <= 0 or args.deals < 100:
        parser.error("--concurrency at least 1, --duration above 0, --deals at least 100 (a full page)")
    if args.runs < 1 or args.sub_processes < 1:
        parser.error("--runs and --sub-processes must be at least 1")
    return args




def spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"n": len(ordered), "p50": percentile(ordered, 50), "p99": percentile(ordered, 99),
            "max": ordered[-1] if ordered else math.nan}


# ---------------------------------------------------------------- processes and CPU (Linux /proc)




def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return 0.0
    fields = raw[raw.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_pressure_us() -> float:
    """Microseconds in which some runnable task waited for a CPU, since boot (/proc/pressure/cpu; NaN without PSI)."""
    try:
        with open("/proc/pressure/cpu") as f:
            return float(f.readline().rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return math.nan


class CpuWindow:
    """CPU used between start() and stop(): the whole machine, this process, and some child pids."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def start(self) -> CpuWindow:
        self.machine0, self.own0, self.pressure0 = machine_cpu(), time.process_time(), cpu_pressure_us()
        self.procs0 = {name: process_cpu_s(pid) for name, pid in self.pids.items()}
        self.wall0 = time.perf_counter()
        return self

    def stop(self) -> dict[str, Any]:
        (busy0, total0), (busy1, total1) = self.machine0, machine_cpu()
        wall = time.perf_counter() - self.wall0
        return {
            "wall_s": wall,
            "machine_busy_pct": 100 * (busy1 - busy0) / (total1 - total0) if total1 > total0 else math.nan,
            "bench_s": time.process_time() - self.own0,
            **{f"{name}_s": process_cpu_s(pid) - self.procs0[name] for name, pid in self.pids.items()},
            "load_avg_1m": os.getloadavg()[0],
            # Share of the window in which some runnable task waited for a CPU: other work was competing.
            "cpu_wait_pct": (cpu_pressure_us() - self.pressure0) / 1e4 / wall,
        }


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB (NaN when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def raise_nofile() -> int:
    """Raise the open-files limit to its hard maximum (1,000 websockets need 1,000 descriptors)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """`python -m server.cli serve --no-demo` in its own session (as tests/serve.py starts it)."""

    def __init__(self, database_url: str, log_path: Path, log_level: str) -> None:
        self.port = free_port()
        self.log_path = log_path
        # The fan-out's websockets stand for many clients but share one token: lift the per-user/token limits.
        env = {**os.environ, "PIPEWRIGHT_DATABASE_URL": database_url,
               "PIPEWRIGHT_MAX_SOCKETS_PER_USER": "100000", "PIPEWRIGHT_MAX_SOCKETS_PER_TOKEN": "100000"}
        env.pop("PIPEWRIGHT_BROKER_URL", None)
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve", "--no-demo", "--port", str(self.port),
                 "--log-level", log_level],
                env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    @property
    def base(self) -> str:
        return f"127.0.0.1:{self.port}"

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.tail()}")

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
        raise RuntimeError(f"the server did not answer /health within {timeout_s} s:\n{self.tail()}")

    def stop(self) -> None:
        stop_group(self.process)


async def graphql(client: Any, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    body = response.json()
    if response.status_code != 200 or "errors" in body:
        raise RuntimeError(f"GraphQL answered {response.status_code}: {str(body)[:500]}")
    return body["data"]




async def _use_database(url: str) -> None:
    """Point this process at `url` (embedded broker), migrate and connect."""
    os.environ["PIPEWRIGHT_DATABASE_URL"] = url
    os.environ.pop("PIPEWRIGHT_BROKER_URL", None)
    from server import config, database

    config.reload()
    await database.migrate(url)
    await database.connect(url)


async def _admin_token(name: str = "Bench Admin") -> str:
    from server.actor import SYSTEM
    from server.services.tokens import create_token
    from tests.support import make_user

    admin = await make_user(name.replace(" ", ""), role="admin")
    _, secret = await create_token(SYSTEM, user_id=admin.id, name="bench.api")
    return secret


# ---------------------------------------------------------------- part 1: the 100-deal page


async def seed_deals(count: int) -> dict[str, Any]:
    """The page's data, with every deal's generate_code run finished by an EmbeddedWorker on this loop."""
    from server.models import Company, Contact, DealContact, RuleRun
    from server.actor import SYSTEM
    from server.services.elements import create_element
    from server.workers.embedded import EmbeddedWorker
    from tests.support import add_rule, make_pipeline, make_user

    started = time.perf_counter()
    worker = EmbeddedWorker(threads=4)
    await worker.start()
    try:
        _, stages = await make_pipeline()
        await add_rule(stages["new"], "generate_code", {"length": 8}, key="code")
        owners = [await make_user(f"Owner{n}", role="manager") for n in range(5)]
        companies = [await Company.create(name=f"Company {n}") for n in range(10)]
        contacts = [await Contact.create(name=f"Contact {n}", emails=[{"value": f"contact{n}@example.com", "type": "work"}],
                                         company_id=companies[n % 10].id) for n in range(60)]
        for n in range(count):
            values: dict[str, Any] = {"title": f"Deal {n}", "amount": 1000 + n, "responsible": owners[n % 5].id}
            if n % 2 == 0:
                values["company"] = companies[n % 10].id
            await create_element("deal", values, contact_ids=[contacts[(n + k) % 60].id for k in range(n % 3 + 1)],
                                 actor=SYSTEM)
        deadline = time.monotonic() + 180
        while (done := await RuleRun.filter(status="succeeded").count()) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {count} generate_code runs succeeded within 180 s")
            await asyncio.sleep(0.1)
    finally:
        await worker.stop()
    secret = await _admin_token()
    return {"deals": count, "deal_contacts": await DealContact.all().count(), "runs_succeeded": count,
            "seed_s": time.perf_counter() - started, "secret": secret}


counting: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("counting", default=None)


class StatementCounter(logging.Handler):
    """Tortoise logs every statement on `tortoise.db_client` at DEBUG; count this request's only."""

    def emit(self, record: logging.LogRecord) -> None:
        seen = counting.get()
        if seen is not None:
            seen.append(record.getMessage())


def _statement_label(sql: str) -> str:
    """A short name for a statement: the first table it reads (and COUNT when it counts)."""
    match = re.search(r'\bFROM\s+"?(\w+)"?', sql, re.IGNORECASE) or re.search(r'\b(?:UPDATE|INTO)\s+"?(\w+)"?', sql,
                                                                              re.IGNORECASE)
    table = match.group(1) if match else sql.split()[0]
    joined = re.findall(r'\bJOIN\s+"?(\w+)"?', sql, re.IGNORECASE)
    label = "+".join([table, *joined])
    return f"count({label})" if "COUNT(" in sql.upper() else label


async def page_in_process(secret: str, timed: int = 20) -> dict[str, Any]:
    """SQL statements of one 100-deal page (after a warm-up request), and its in-process time (no HTTP server)."""
    import httpx

    from server.app import create_app

    logger = logging.getLogger("tortoise.db_client")
    handler = StatementCounter()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    body = {"query": PAGE, "variables": {"first": 100}}
    try:
        transport = httpx.ASGITransport(app=create_app(runtime=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                     headers={"Authorization": f"Bearer {secret}"}) as client:
            await graphql(client, PAGE, {"first": 1})  # a token's first use writes last_used_at once
            seen: list[str] = []
            token = counting.set(seen)
            try:
                data = await graphql(client, PAGE, {"first": 100})
            finally:
                counting.reset(token)
            logger.setLevel(old_level)  # the timed requests below run without debug logging
            times = []
            for _ in range(timed):
                t0 = time.perf_counter()
                response = await client.post("/graphql", json=body)
                response.json()
                times.append((time.perf_counter() - t0) * 1000)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    page = data["deals"]
    node = page["edges"][0]["node"]
    if len(page["edges"]) != 100 or not node["contacts"] or not node["currentRuns"] or not node["responsible"]:
        raise RuntimeError(f"the page is not what was seeded: {len(page['edges'])} edges, first node {node}")
    return {"statements": len(seen), "statement_tables": [_statement_label(s) for s in seen],
            "in_process_ms": spread(times), "response_bytes": len(json.dumps({"data": data}))}


def _page_ok(response: Any) -> bool:
    if response.status_code != 200:
        return False
    body = response.json()
    return "errors" not in body and len(body["data"]["deals"]["edges"]) == 100


async def page_load(server: ServeProcess, secret: str, concurrency: int, duration: float,
                    warmup: float) -> dict[str, Any]:
    """`concurrency` clients posting the page query back to back: a warm-up, then `duration` measured seconds."""
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    body = {"query": PAGE, "variables": {"first": 100}}
    async with httpx.AsyncClient(base_url=f"http://{server.base}", limits=limits, timeout=120,
                                 headers={"Authorization": f"Bearer {secret}"}) as client:

        async def client_loop(until: float, latencies: list[float], errors: list[str]) -> None:
            while time.perf_counter() < until:
                t0 = time.perf_counter()
                try:
                    response = await client.post("/graphql", json=body)
                    ok = _page_ok(response)
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                    continue
                latencies.append((time.perf_counter() - t0) * 1000)
                if not ok:
                    errors.append(f"{response.status_code}: {response.text[:200]}")

        warm: list[float] = []
        warm_errors: list[str] = []
        until = time.perf_counter() + warmup
        await asyncio.gather(*(client_loop(until, warm, warm_errors) for _ in range(concurrency)))
        server.check_alive()
        latencies: list[float] = []
        errors: list[str] = []
        cpu = CpuWindow({"server": server.process.pid}).start()
        until = time.perf_counter() + duration
        await asyncio.gather(*(client_loop(until, latencies, errors) for _ in range(concurrency)))
        window = cpu.stop()
    server.check_alive()
    count = len(latencies)
    return {
        "concurrency": concurrency, "duration_s": duration, "warmup_s": warmup,
        "warmup_requests": len(warm) + len(warm_errors), "requests": count, "errors": len(errors),
        "error_sample": errors[:3], "elapsed_s": window["wall_s"], "rps": count / window["wall_s"],
        "latency_ms": spread(latencies),
        "server_cpu_ms_per_request": 1000 * window["server_s"] / max(count, 1),
        "server_cpu_pct_of_one_core": 100 * window["server_s"] / window["wall_s"],
        "bench_cpu_pct_of_one_core": 100 * window["bench_s"] / window["wall_s"],
        "machine_busy_pct": window["machine_busy_pct"], "load_avg_1m": window["load_avg_1m"],
        "cpu_wait_pct": window["cpu_wait_pct"],
    }


async def run_page(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    from server import database

    workdir = Path(tempfile.mkdtemp(prefix="pw-bench-api-"))
    postgres = server = None
    connected = False
    try:
        if backend == "postgres":
            from tests.services import start_postgres

            postgres = start_postgres()
            url = postgres.url
        else:
            url = f"sqlite://{workdir}/bench.db"
        await _use_database(url)
        connected = True
        seeded = await seed_deals(args.deals)
        secret = seeded.pop("secret")
        in_process = await page_in_process(secret)
        await database.disconnect()
        connected = False

        server = ServeProcess(url, workdir / "serve.log", args.log_level)
        await server.wait_ready()
        load = await page_load(server, secret, args.concurrency, args.duration, args.warmup)
        serial = (await page_load(server, secret, 1, args.serial, 1) if args.serial > 0 else None)
        setup = ("SQLite file" if backend == "sqlite" else "PostgreSQL (tests.services: fsync off), pool maxsize 5")
        return {"part": "page", "backend": backend, "setup": f"{setup}; `serve --no-demo --log-level "
                f"{args.log_level}` (uvicorn, 1 process, embedded worker)", **seeded, **in_process, **load,
                "serial": serial}
    finally:
        if server is not None:
            server.stop()
        if connected:
            await database.disconnect()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def report_page(r: dict[str, Any]) -> str:
    lat, inproc = r["latency_ms"], r["in_process_ms"]
    return "\n".join([
        f"page query, {r['backend']}: {r['setup']}",
        f"  data                 {r['deals']} deals, {r['deal_contacts']} deal contacts, "
        f"{r['runs_succeeded']} generate_code runs succeeded (seeded in {r['seed_s']:.1f} s)",
        f"  SQL statements       {r['statements']} per 100-deal page: {', '.join(r['statement_tables'])}",
        f"  response             {r['response_bytes'] / 1024:.0f} KiB; in-process (ASGITransport, no HTTP server, "
        f"one at a time): p50 {inproc['p50']:.1f} ms over {inproc['n']}",
        f"  load                 C={r['concurrency']} clients, D={r['duration_s']:g} s after a {r['warmup_s']:g} s "
        f"warm-up ({r['warmup_requests']} requests)",
        f"  throughput           {r['requests']} requests in {r['elapsed_s']:.2f} s = {r['rps']:.1f} requests/s, "
        f"{r['errors']} errors{' e.g. ' + r['error_sample'][0] if r['error_sample'] else ''}",
        f"  latency              p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms",
        f"  CPU                  server {r['server_cpu_ms_per_request']:.1f} ms per request "
        f"({r['server_cpu_pct_of_one_core']:.0f}% of one core); load generator "
        f"{r['bench_cpu_pct_of_one_core']:.0f}% of one core; machine {r['machine_busy_pct']:.0f}% busy "
        f"(all cores, all processes), load average {r['load_avg_1m']:.1f}, some task waiting for a CPU "
        f"{r['cpu_wait_pct']:.0f}% of the time",
        *([f"  one client (C=1)     {s['requests']} requests in {s['elapsed_s']:.2f} s = {s['rps']:.1f} requests/s, "
           f"p50 {s['latency_ms']['p50']:.1f} ms, p99 {s['latency_ms']['p99']:.1f} ms, {s['errors']} errors "
           f"(the unloaded latency; at C={r['concurrency']} requests mostly wait their turn)"]
          if (s := r["serial"]) else []),
    ])


# ---------------------------------------------------------------- part 2: live fan-out, the subscriber children


class Subscriber:
    """One websocket with one ruleRuns subscription; remembers when each run's `succeeded` arrived."""

    def __init__(self) -> None:
        self.ws: Any = None
        self.connect_ms: float | None = None
        self.error: str | None = None
        self.closed: str | None = None
        self.events = 0
        self.duplicates = 0
        self.receipts: dict[str, float] = {}

    async def open(self, url: str, token: str, compression: str | None) -> None:
        import websockets

        t0 = time.perf_counter()
        try:
            self.ws = await websockets.connect(url, subprotocols=["graphql-transport-ws"], compression=compression,
                                               open_timeout=120, max_queue=None)
            await self.ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
            ack = json.loads(await asyncio.wait_for(self.ws.recv(), 120))
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"expected connection_ack, got {ack}")
            await self.ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": SUBSCRIPTION}}))
            self.connect_ms = (time.perf_counter() - t0) * 1000
        except Exception as exc:  # counted and reported: a failed connect is a result, not a crash
            self.error = repr(exc)[:200]
            if self.ws is not None:
                await self.ws.close()
                self.ws = None

    async def listen(self) -> None:
        import websockets

        try:
            async for raw in self.ws:
                received = time.time()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "next":
                    event = (message["payload"].get("data") or {}).get("ruleRuns")
                    if event is None:
                        self.closed = f"error in next: {str(message)[:200]}"
                        continue
                    self.events += 1
                    if event["status"] == "succeeded":
                        if event["runId"] in self.receipts:
                            self.duplicates += 1
                        else:
                            self.receipts[event["runId"]] = received
                elif kind == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                elif kind in ("error", "complete"):
                    self.closed = f"{kind}: {str(message)[:200]}"
            self.closed = self.closed or f"closed by the server ({self.ws.close_code} {self.ws.close_reason})"
        except websockets.ConnectionClosed as exc:
            self.closed = f"connection lost: {exc!r}"[:200]


async def _wait_all(subscribers: list[Subscriber], wanted: int, timeout_s: float) -> tuple[int, float]:
    """Wait until every open subscriber has `wanted` receipts; (how many have fewer, seconds waited)."""
    started = time.perf_counter()
    while True:
        short = sum(len(s.receipts) < wanted for s in subscribers)
        if not short or time.perf_counter() - started > timeout_s:
            return short, time.perf_counter() - started
        await asyncio.sleep(0.05)


async def subscriber_child(args: argparse.Namespace) -> int:
    """Hold `--count` subscriptions; obey commands on stdin, answer one JSON line per command on stdout.

    ready (sent unasked after connecting) · `wait N T` (every subscriber has N receipts, or T seconds
    passed) · `reset` (forget the receipts so far) · `collect N T FILE` (wait as `wait`, then write the
    receipts to FILE) · `quit`.
    """
    raise_nofile()
    token = os.environ["PW_BENCH_TOKEN"]
    compression = None if args.compression == "none" else "deflate"
    subscribers = [Subscriber() for _ in range(args.count)]
    gate = asyncio.Semaphore(args.connect_concurrency)

    async def open_one(subscriber: Subscriber) -> None:
        async with gate:
            await subscriber.open(args.url, token, compression)

    started = time.perf_counter()
    await asyncio.gather(*(open_one(s) for s in subscribers))
    connect_s = time.perf_counter() - started
    live = [s for s in subscribers if s.ws is not None]
    listeners = [asyncio.create_task(s.listen()) for s in live]

    def answer(**values: Any) -> None:
        sys.stdout.write(json.dumps(values) + "\n")
        sys.stdout.flush()

    errors = sorted({s.error for s in subscribers if s.error})
    answer(event="ready", ok=len(live), failed=len(subscribers) - len(live), connect_s=connect_s,
           connect_ms=[s.connect_ms for s in live], errors=errors[:5])

    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := (await reader.readline()).decode().split():
            command = line[0]
            if command == "wait":
                short, waited = await _wait_all(live, int(line[1]), float(line[2]))
                answer(event="waited", short=short, waited_s=waited)
            elif command == "reset":
                for s in live:
                    s.receipts.clear()
                    s.events = s.duplicates = 0
                answer(event="reset")
            elif command == "collect":
                short, waited = await _wait_all(live, int(line[1]), float(line[2]))
                Path(line[3]).write_text(json.dumps({
                    "receipts": [s.receipts for s in live], "events": [s.events for s in live],
                    "duplicates": sum(s.duplicates for s in live),
                    "closed": sorted({s.closed for s in live if s.closed}),
                    "closed_count": sum(s.closed is not None for s in live),
                }))
                answer(event="collected", short=short, waited_s=waited)
            elif command == "quit":
                break
    finally:
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        await asyncio.wait_for(asyncio.gather(*(s.ws.close() for s in live), return_exceptions=True), 30)
    return 0


class SubscriberProcess:
    """`python -m bench.api --subscriber-child` as a child process in its own session."""

    def __init__(self, process: asyncio.subprocess.Process, count: int, log_path: Path) -> None:
        self.process, self.count, self.log_path = process, count, log_path

    @classmethod
    async def start(cls, url: str, token: str, count: int, args: argparse.Namespace, log_path: Path) -> SubscriberProcess:
        with open(log_path, "ab") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.api", "--subscriber-child", "--url", url, "--count", str(count),
                "--compression", args.compression, "--connect-concurrency", str(args.connect_concurrency),
                cwd=ROOT, env={**os.environ, "PW_BENCH_TOKEN": token}, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, start_new_session=True, limit=2**24,
            )
        return cls(process, count, log_path)

    async def ask(self, command: str | None, timeout_s: float) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        if command is not None:
            self.process.stdin.write(command.encode() + b"\n")
            await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout_s)
        if not line:
            try:
                tail = self.log_path.read_text(errors="replace")[-2000:]
            except OSError:
                tail = ""
            raise RuntimeError(f"a subscriber process exited ({self.process.returncode}):\n{tail}")
        return json.loads(line)

    async def stop(self) -> None:
        if self.process.returncode is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write(b"quit\n")
                await self.process.stdin.drain()
                await asyncio.wait_for(self.process.wait(), 40)
            except (TimeoutError, OSError):
                pass
        if self.process.returncode is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await self.process.wait()


# ---------------------------------------------------------------- part 2: live fan-out, the driver


async def _create_deal(client: Any, title: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    data = await graphql(client, CREATE_DEAL, {"input": {"title": title, "fields": {"amount": 100}}})
    result = data["createDeal"]
    if result["__typename"] != "Deal":
        raise RuntimeError(f"createDeal answered {result}")
    return int(result["id"]), (time.perf_counter() - t0) * 1000


async def _finished_runs(client: Any, deal_ids: list[int], timeout_s: float = 60) -> dict[str, dict[str, datetime]]:
    """run id -> createdAt/startedAt/finishedAt of each deal's (one) generate_code run, once all have succeeded."""
    deadline = time.monotonic() + timeout_s
    finished: dict[str, dict[str, datetime]] = {}
    pending = list(deal_ids)
    while pending:
        still = []
        for deal_id in pending:
            nodes = (await graphql(client, RUNS_OF, {"id": str(deal_id)}))["ruleRuns"]["nodes"]
            if len(nodes) == 1 and nodes[0]["status"] == "succeeded":
                finished[nodes[0]["id"]] = {k: datetime.fromisoformat(nodes[0][k])
                                            for k in ("createdAt", "startedAt", "finishedAt")}
            elif any(n["status"] in ("failed", "cancelled", "skipped") for n in nodes) or len(nodes) > 1:
                raise RuntimeError(f"deal {deal_id}: unexpected runs {nodes}")
            else:
                still.append(deal_id)
        pending = still
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} runs did not succeed within {timeout_s} s")
        if pending:
            await asyncio.sleep(0.2)
    return finished


async def fanout_round(server: ServeProcess, secret: str, subscribers: int, args: argparse.Namespace,
                       workdir: Path, round_no: int) -> dict[str, Any]:
    import httpx

    processes = min(args.sub_processes, subscribers)
    sizes = [subscribers // processes + (1 if i < subscribers % processes else 0) for i in range(processes)]
    children: list[SubscriberProcess] = []
    try:
        for i, size in enumerate(sizes):
            children.append(await SubscriberProcess.start(f"ws://{server.base}/graphql", secret, size, args,
                                                          workdir / f"subscribers-{round_no}-{i}.log"))
        readies = await asyncio.gather(*(child.ask(None, 600) for child in children))
        server.check_alive()
        connected = sum(r["ok"] for r in readies)
        connect_ms = [ms for r in readies for ms in r["connect_ms"]]
        errors = sorted({e for r in readies for e in r["errors"]})

        async with httpx.AsyncClient(base_url=f"http://{server.base}", timeout=120,
                                     headers={"Authorization": f"Bearer {secret}"}) as client:
            # Warm-up: every subscription must be registered before the measured runs.
            await _create_deal(client, f"warm-up {round_no}")
            warm = await asyncio.gather(*(child.ask("wait 1 120", 180) for child in children))
            await asyncio.gather(*(child.ask("reset", 60) for child in children))

            pids = {"server": server.process.pid, **{f"sub{i}": c.process.pid for i, c in enumerate(children)}}
            rss_before = rss_mib(server.process.pid)
            cpu = CpuWindow(pids).start()
            deal_ids, mutation_ms = [], []
            started = time.perf_counter()
            for n in range(args.runs):
                await asyncio.sleep(max(0.0, started + n * args.spacing - time.perf_counter()))
                deal_id, ms = await _create_deal(client, f"fan-out {round_no}.{n}")
                deal_ids.append(deal_id)
                mutation_ms.append(ms)
            drive_s = time.perf_counter() - started
            files = [workdir / f"receipts-{round_no}-{i}.json" for i in range(len(children))]
            collected = await asyncio.gather(*(child.ask(f"collect {args.runs} 60 {f}", 120)
                                               for child, f in zip(children, files, strict=True)))
            window = cpu.stop()
            rss_after = rss_mib(server.process.pid)
            finished = await _finished_runs(client, deal_ids)
    finally:
        await asyncio.gather(*(child.stop() for child in children), return_exceptions=True)
    server.check_alive()

    delays: list[float] = []
    per_run: dict[str, list[float]] = {run: [] for run in finished}
    events: list[int] = []
    got: list[int] = []
    lost = unexpected = duplicates = closed_count = 0
    closed: set[str] = set()
    per_process = []
    for path in files:
        data = json.loads(path.read_text())
        mine = len(delays)
        events += data["events"]
        duplicates += data["duplicates"]
        closed_count += data["closed_count"]
        closed.update(data["closed"])
        for receipts in data["receipts"]:
            got.append(len(receipts))
            unexpected += sum(run not in finished for run in receipts)
            for run, times in finished.items():
                if run in receipts:
                    delay = (receipts[run] - times["finishedAt"].timestamp()) * 1000
                    delays.append(delay)
                    per_run[run].append(delay)
                else:
                    lost += 1
        per_process.append(spread(delays[mine:]))
    last = [max(v) for v in per_run.values() if v]
    first = [min(v) for v in per_run.values() if v]
    own = window["bench_s"]
    run_ms = [(t["finishedAt"] - t["createdAt"]).total_seconds() * 1000 for t in finished.values()]
    return {
        "subscribers": subscribers, "processes": processes, "connected": connected,
        "connect_failed": subscribers - connected, "connect_errors": errors,
        "connect_s": max(r["connect_s"] for r in readies), "connect_ms": spread(connect_ms),
        "warmup_short": sum(w["short"] for w in warm), "runs": len(finished), "spacing_s": args.spacing,
        "pairs_expected": connected * len(finished), "pairs_received": len(delays), "lost": lost,
        "unexpected": unexpected, "duplicates": duplicates, "closed_count": closed_count,
        "closed": sorted(closed)[:5], "collect_short": sum(c["short"] for c in collected),
        "delay_ms": spread(delays), "last_subscriber_ms": spread(last), "first_subscriber_ms": spread(first),
        "per_run_ms": [{"run": run, "finished_at": t["finishedAt"].timestamp(), "created_to_finished": (t["finishedAt"] - t["createdAt"]).total_seconds() * 1000,
                        "first": min(per_run[run], default=None), "p50": percentile(sorted(per_run[run]), 50),
                        "last": max(per_run[run], default=None)} for run, t in finished.items()],
        "succeeded_per_subscriber": [min(got, default=0), max(got, default=0)],
        "events_per_subscriber": [min(events, default=0), max(events, default=0)],
        "create_deal_ms": spread(mutation_ms), "drive_s": drive_s, "run_created_to_finished_ms": spread(run_ms),
        "server_cpu_us_per_message": 1e6 * window["server_s"] / max(sum(events), 1),
        "server_cpu_pct_of_one_core": 100 * window["server_s"] / window["wall_s"],
        "subscriber_cpu_pct_of_one_core": [100 * window[f"sub{i}_s"] / window["wall_s"] for i in range(processes)],
        "bench_cpu_pct_of_one_core": 100 * own / window["wall_s"], "window_s": window["wall_s"],
        "machine_busy_pct": window["machine_busy_pct"], "load_avg_1m": window["load_avg_1m"],
        "cpu_wait_pct": window["cpu_wait_pct"], "per_process_delay_ms": per_process,
        "server_rss_mib": [rss_before, rss_after], "messages": sum(events),
    }


async def run_fanout(args: argparse.Namespace) -> list[dict[str, Any]]:
    from server import database

    raise_nofile()  # the server inherits it
    workdir = Path(tempfile.mkdtemp(prefix="pw-bench-api-"))
    server = None
    connected = False
    try:
        url = f"sqlite://{workdir}/fanout.db"
        await _use_database(url)
        connected = True
        from tests.support import add_rule, make_pipeline

        _, stages = await make_pipeline()
        await add_rule(stages["new"], "generate_code", {"length": 8}, key="code")
        secret = await _admin_token()
        await database.disconnect()
        connected = False

        server = ServeProcess(url, workdir / "serve.log", args.log_level)
        await server.wait_ready()
        results = []
        for round_no, count in enumerate(args.subscribers):
            result = await fanout_round(server, secret, count, args, workdir, round_no)
            result.update(part="fanout", compression=args.compression,
                          setup=f"SQLite file, `serve --no-demo --log-level {args.log_level}` (uvicorn, 1 process, "
                                f"embedded worker), same server for every round")
            print(report_fanout(result), flush=True)
            results.append(result)
        return results
    finally:
        if server is not None:
            server.stop()
        if connected:
            await database.disconnect()
        shutil.rmtree(workdir, ignore_errors=True)


def report_fanout(r: dict[str, Any]) -> str:
    d, last, first, conn = r["delay_ms"], r["last_subscriber_ms"], r["first_subscriber_ms"], r["connect_ms"]
    subs_cpu = " + ".join(f"{v:.0f}%" for v in r["subscriber_cpu_pct_of_one_core"])
    lines = [
        f"live fan-out, {r['subscribers']} subscribers: {r['setup']}",
        f"  subscribers          {r['connected']} of {r['subscribers']} connected and subscribed in {r['processes']} "
        f"child processes ({r['connect_s']:.1f} s; per connection p50 {conn['p50']:.0f} ms, p99 {conn['p99']:.0f} ms), "
        f"compression {r['compression']}",
        f"  runs                 {r['runs']} deals created {r['spacing_s']:g} s apart with createDeal "
        f"(took {r['drive_s']:.1f} s; createDeal p50 {r['create_deal_ms']['p50']:.0f} ms, "
        f"p99 {r['create_deal_ms']['p99']:.0f} ms; run created -> finished p50 "
        f"{r['run_created_to_finished_ms']['p50']:.0f} ms, p99 {r['run_created_to_finished_ms']['p99']:.0f} ms)",
        f"  delivered            {r['pairs_received']} of {r['pairs_expected']} (subscriber, run) pairs; LOST {r['lost']}, "
        f"duplicates {r['duplicates']}, connections closed {r['closed_count']}",
        f"  per subscriber       {r['succeeded_per_subscriber'][0]}-{r['succeeded_per_subscriber'][1]} succeeded events, "
        f"{r['events_per_subscriber'][0]}-{r['events_per_subscriber'][1]} events in all (scheduled, running, succeeded)",
        f"  delay finished -> received   p50 {d['p50']:.0f} ms, p99 {d['p99']:.0f} ms, max {d['max']:.0f} ms "
        f"(all pairs)",
        f"  per run: first subscriber p50 {first['p50']:.0f} ms; last subscriber p50 {last['p50']:.0f} ms, "
        f"max {last['max']:.0f} ms",
        f"  CPU                  server {r['server_cpu_pct_of_one_core']:.0f}% of one core "
        f"({r['server_cpu_us_per_message']:.0f} us per message delivered), subscriber processes "
        f"{subs_cpu}, driver {r['bench_cpu_pct_of_one_core']:.0f}%; machine {r['machine_busy_pct']:.0f}% busy, "
        f"load average {r['load_avg_1m']:.1f}, some task waiting for a CPU {r['cpu_wait_pct']:.0f}% of the time",
    ]
    before, after = r["server_rss_mib"]
    lines.append(f"  server memory        RSS {before:.0f} MiB -> {after:.0f} MiB over the measured runs "
                 f"({1024 * 1024 * (after - before) / max(r['messages'], 1):.0f} bytes per message delivered; "
                 f"the subscriptions stay open)")
    if r["connect_failed"] or r["connect_errors"]:
        lines.append(f"  CONNECT FAILURES     {r['connect_failed']}: {'; '.join(r['connect_errors'])}")
    if r["warmup_short"] or r["collect_short"] or r["closed"] or r["unexpected"]:
        lines.append(f"  NOTE                 warm-up short {r['warmup_short']}, collect short {r['collect_short']}, "
                     f"unexpected runs {r['unexpected']}, closes: {'; '.join(r['closed'])}")
    return "\n".join(lines)


# ---------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cancel_on_sigterm()
    results: dict[str, Any] = {"cores": os.cpu_count(), "python": sys.version.split()[0], "page": [], "fanout": []}
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
          f"Python {results['python']}", flush=True)
    if args.part in ("page", "all"):
        for backend in (("sqlite", "postgres") if args.backend == "both" else (args.backend,)):
            result = await run_page(args, backend)
            print(report_page(result), flush=True)
            results["page"].append(result)
    if args.part in ("fanout", "all"):
        results["fanout"] = await run_fanout(args)
    return results


def jobs_of(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(part, backend) pairs to run. Each runs in its own child process when there are several: Tortoise keeps
    per-dialect query state on the model classes, so one process cannot use SQLite and then PostgreSQL."""
    jobs = []
    if args.part in ("page", "all"):
        jobs += [("page", b) for b in (("sqlite", "postgres") if args.backend == "both" else (args.backend,))]
    if args.part in ("fanout", "all"):
        jobs.append(("fanout", "sqlite"))
    return jobs


def run_children(args: argparse.Namespace, jobs: list[tuple[str, str]]) -> dict[str, Any] | None:
    """Each job as `python -m bench.api --part P --backend B ...`; their figures merged. None when interrupted."""
    common = [
        "-c", str(args.concurrency), "-d", str(args.duration), "--warmup", str(args.warmup), "--serial",
        str(args.serial), "--deals", str(args.deals), "--subscribers", ",".join(map(str, args.subscribers)),
        "--sub-processes", str(args.sub_processes), "--runs", str(args.runs), "--spacing", str(args.spacing),
        "--compression", args.compression, "--connect-concurrency", str(args.connect_concurrency),
        "--log-level", args.log_level,
    ]
    results: dict[str, Any] = {"cores": os.cpu_count(), "python": sys.version.split()[0], "page": [], "fanout": []}
    with tempfile.TemporaryDirectory(prefix="pw-bench-api-") as tmp:
        for n, (part, backend) in enumerate(jobs):
            out = Path(tmp) / f"{n}.json"
            child = subprocess.Popen([sys.executable, "-m", "bench.api", "--part", part, "--backend", backend,
                                      *common, "--json-out", str(out)], cwd=ROOT,
                                     env={**os.environ, "PW_BENCH_PART_CHILD": "1"})
            # SIGTERM goes on to the child, which cleans up after itself; then this loop stops.
            signal.signal(signal.SIGTERM, lambda signum, frame, child=child: child.send_signal(signum))
            try:
                code = child.wait()
            except KeyboardInterrupt:  # the child got SIGINT too (same process group): let it clean up
                code = child.wait(timeout=90)
            if code == 130 or not out.exists():
                print(f"{part} ({backend}) stopped with exit code {code}", file=sys.stderr)
                return None
            data = json.loads(out.read_text())
            results["page"] += data["page"]
            results["fanout"] += data["fanout"]
            print(flush=True)
    return results


def summary(results: dict[str, Any]) -> str:
    lines = [f"summary ({results['cores']} cores, shared with whatever else runs on the machine)"]
    for r in results["page"]:
        lat = r["latency_ms"]
        lines.append(f"  page {r['backend']:<8} C={r['concurrency']} D={r['duration_s']:g}s: {r['rps']:.1f} req/s, "
                     f"p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms, {r['statements']} SQL statements/request, "
                     f"{r['errors']} errors")
    for r in results["fanout"]:
        d = r["delay_ms"]
        lines.append(f"  fan-out {r['connected']:>5}/{r['subscribers']} subscribers x {r['runs']} runs: "
                     f"p50 {d['p50']:.0f} ms, p99 {d['p99']:.0f} ms, lost {r['lost']}, "
                     f"connect {r['connect_s']:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--subscriber-child" in argv:
        child = argparse.ArgumentParser(prog="python -m bench.api --subscriber-child")
        child.add_argument("--subscriber-child", action="store_true")
        child.add_argument("--url", required=True)
        child.add_argument("--count", type=int, required=True)
        child.add_argument("--compression", default="deflate")
        child.add_argument("--connect-concurrency", type=int, default=50)
        try:
            return asyncio.run(subscriber_child(child.parse_args(argv)))
        except KeyboardInterrupt:
            return 130
    args = parse_args(argv)
    jobs = jobs_of(args)
    try:
        results = asyncio.run(run(args)) if len(jobs) == 1 else run_children(args, jobs)
    except (asyncio.CancelledError, KeyboardInterrupt):
        results = None
    if results is None:
        print("interrupted; servers, child processes and temp dirs stopped and removed", file=sys.stderr)
        return 130
    if not os.environ.get("PW_BENCH_PART_CHILD"):  # a part run by run_children: the parent sums up
        print(flush=True)
        print(summary(results), flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2, default=str))
    lost = sum(r["lost"] + r["connect_failed"] for r in results["fanout"])
    errors = sum(r["errors"] for r in results["page"])
    return 1 if lost or errors else 0


if __name__ == "__main__":
    sys.exit(main())
