"""Emails through the outbox into a local SMTP peer: emails per second, and move → message at the peer latency.

    .venv/bin/python -m bench.messages --mode both                 # flat out, then at 5 moves/s, each mode
    .venv/bin/python -m bench.messages --mode embedded --emails 300
    .venv/bin/python -m bench.messages --mode production --rate 0   # flat out only

A deal pipeline with a rule-less inbox stage and a "send" stage holding one Send email rule (a subject and an
HTML body, both templates; the text part is made from the HTML). Each measured deal has its own contact with its
own address, so each email is identifiable at the peer. One producer (a coroutine in this process) moves the
deals from the inbox into the send stage with server.services.elements.move_element, flat out and then at
`--rate` moves per second. For each deal:

    latency = time.time() when the peer has the whole email - time.time() just before its move

and emails per second = emails / (last arrival - first move). The peer is aiosmtpd in a child process (not the
measured one): it accepts every message and appends "arrival time, Message-ID, recipient" to a file, which this
process reads. At the end the bench counts per recipient and per Message-ID (each must arrive once) and reads
each message row's status (each must be `sent`).

- embedded: a fresh SQLite file, migrate + connect, and the EmbeddedWorker on this process's loop (as
  `pipewright serve` runs it): producer, rule runs and deliveries share one loop.
- production: PostgreSQL and Redis from tests.support.servers, `python -m server.cli worker --processes P
  --threads T` as a child process (dramatiq + scheduler), and in this process the dispatcher
  (server.workers.scheduler.install_dispatcher, as a web process has it) so due runs go to Redis after commit.

One warm-up deal goes through first in each mode and is left out. `--mode both` runs each mode in its own child
process (the broker is chosen when server.workers is first imported) and prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import WorkerProcess, cancel_on_sigterm, group_cpu_s, machine_cpu, percentile, stop_group

ROOT = Path(__file__).resolve().parent.parent

SUBJECT = "Your offer: {{deal.title}}"
HTML = ("<p>Hello {{deal.contact.name|default('there')}},</p>"
        "<p>here is the offer for <b>{{deal.title}}</b>: {{deal.amount}} {{deal.currency}}.</p>"
        "<p>Kind regards,<br>the sales team</p>")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.messages", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("embedded", "production", "both"), default="both")
    parser.add_argument("--emails", type=int, default=300, help="deals moved (so emails sent) flat out (default 300)")
    parser.add_argument("--rate", type=float, default=5,
                        help="then the same at this many moves per second (default 5; 0: skip)")
    parser.add_argument("--rate-emails", type=int, default=100, help="emails in the paced phase (default 100)")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (embedded worker, and per process)")
    parser.add_argument("--processes", type=int, default=2, help="production: dramatiq worker processes")
    parser.add_argument("--poll-ms", type=int, default=50, help="PIPEWRIGHT_POLL_MS for the scheduler")
    parser.add_argument("--timeout", type=float, default=120, help="give up when no email arrived for this long (s)")
    parser.add_argument("--json-out", default=None, help="also write the figures as JSON to this file")
    # The SMTP peer's child process.
    parser.add_argument("--peer-port", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--peer-log", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.emails < 1 or args.rate_emails < 1:
        parser.error("--emails and --rate-emails must be at least 1")
    return args


# ---------------------------------------------------------------- the SMTP peer (a child process)


_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


class CountingPeer:
    """aiosmtpd handler: accept everything, write one line per message (no parsing past the Message-ID)."""

    def __init__(self, log_path: str) -> None:
        self.log = open(log_path, "a", buffering=1)
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        arrived = time.time()
        content: bytes = envelope.original_content or b""
        head = content.split(b"\r\n\r\n", 1)[0]
        found = _MESSAGE_ID.search(head)
        message_id = found.group(1).decode() if found else "-"
        with self.lock:
            for recipient in envelope.rcpt_tos:
                self.log.write(f"{arrived:.6f} {message_id} {recipient}\n")
        return "250 2.0.0 Ok: queued"


def serve_peer(port: int, log_path: str) -> int:
    from aiosmtpd.controller import Controller

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    controller = Controller(CountingPeer(log_path), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        stop.wait()
    finally:
        controller.stop()
    return 0


@dataclass
class Peer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def arrivals(self) -> list[tuple[float, str, str]]:
        """(time, Message-ID, recipient) of every message the peer accepted so far."""
        rows = []
        try:
            text = self.log_path.read_text()
        except FileNotFoundError:
            return []
        for line in text.splitlines():
            parts = line.split(" ")
            if len(parts) == 3:
                rows.append((float(parts[0]), parts[1], parts[2]))
        return rows

    def stop(self) -> None:
        stop_group(self.process)


def start_peer(workdir: str) -> Peer:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    log_path = Path(workdir) / "peer.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.messages", "--peer-port", str(port), "--peer-log", str(log_path)],
        cwd=ROOT, start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the SMTP peer exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Peer(process, port, log_path)
        except OSError:
            time.sleep(0.05)
    stop_group(process)
    raise RuntimeError("the SMTP peer did not listen within 20 s")


# ---------------------------------------------------------------- CPU accounting (Linux /proc)


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a server and its children: its own, its reaped children's, and its live children's
    (PostgreSQL's backends come and go; the postmaster reaps them)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or (fields := _stat(int(entry))) is None:
            continue
        if int(entry) == pid:
            total += sum(int(v) for v in fields[11:15]) / tick
        elif int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


# ---------------------------------------------------------------- the measurement (either mode)


async def _setup_stage() -> tuple[Any, Any]:
    """A deal pipeline: a rule-less inbox stage and the send stage with one Send email rule."""
    from server.actor import SYSTEM
    from server.models import Pipeline, Stage
    from server.services.rules import RuleInput, create_rule

    pipeline = await Pipeline.create(name="Bench", entity_type="deal", is_default=True)
    inbox = await Stage.create(pipeline=pipeline, code="inbox", name="Inbox", position=0)
    send = await Stage.create(pipeline=pipeline, code="send", name="Send", position=1)
    await create_rule(send.id, RuleInput(action_type="send_email", key="offer",
                                         params={"subject": SUBJECT, "html": HTML}), actor=SYSTEM)
    return inbox, send


async def _deals(label: str, count: int, inbox: Any) -> dict[int, str]:
    """`count` deals in the inbox, each with its own contact and address: {deal id: address}."""
    from server.actor import SYSTEM
    from server.models import Contact, DealContact
    from server.services.elements import create_element

    deals = {}
    for i in range(count):
        address = f"{label}-{i}@bench.example"
        contact = await Contact.create(name=f"Customer {label} {i}", emails=[{"value": address, "type": "work"}])
        deal = await create_element("deal", {"title": f"Deal {label} {i}", "amount": "1200"}, stage_id=inbox.id,
                                    actor=SYSTEM)
        await DealContact.create(deal_id=deal.id, contact_id=contact.id, position=0)
        deals[deal.id] = address
    return deals


@dataclass
class Cpu:
    own: float
    workers: float
    servers: float
    peer: float
    machine: tuple[float, float]

    @classmethod
    def now(cls, peer: Peer, worker_pgid: int | None, server_pids: list[int]) -> Cpu:
        return cls(time.process_time(), group_cpu_s(worker_pgid) if worker_pgid else 0.0,
                   sum(tree_cpu_s(pid) for pid in server_pids), group_cpu_s(peer.process.pid), machine_cpu())


async def _idle_cpu(peer: Peer, worker_pgid: int | None, server_pids: list[int], seconds: float = 3.0) -> float:
    """CPU seconds per second that everything but the peer spends with nothing to do (polling, heartbeats)."""
    before, started = Cpu.now(peer, worker_pgid, server_pids), time.monotonic()
    await asyncio.sleep(seconds)
    after = Cpu.now(peer, worker_pgid, server_pids)
    return ((after.own - before.own) + (after.workers - before.workers) + (after.servers - before.servers)) / (
        time.monotonic() - started)


async def _phase(label: str, count: int, rate: float, inbox: Any, send: Any, peer: Peer, args: argparse.Namespace,
                 *, alive: Any, worker_pgid: int | None, server_pids: list[int], idle: float = 0.0) -> dict[str, Any]:
    """Move `count` deals into the send stage (at `rate` per second, 0: flat out) and wait for their emails."""
    from server.actor import SYSTEM
    from server.models import Message
    from server.services.elements import move_element

    deals = await _deals(label, count, inbox)
    wanted = set(deals.values())
    marks: dict[str, float] = {}
    load_before = os.getloadavg()
    cpu0 = Cpu.now(peer, worker_pgid, server_pids)
    started = window = time.perf_counter()
    for i, (deal_id, address) in enumerate(deals.items()):
        if rate > 0:
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
        marks[address] = time.time()
        await move_element("deal", deal_id, send.id, actor=SYSTEM)
    producer_s = time.perf_counter() - started

    seen, last_progress = -1, time.monotonic()
    while True:
        arrived = {r for _, _, r in peer.arrivals() if r in wanted}
        if len(arrived) == count:
            break
        if len(arrived) != seen:
            seen, last_progress = len(arrived), time.monotonic()
        if alive is not None:
            alive()
        if time.monotonic() - last_progress > args.timeout:
            break
        await asyncio.sleep(0.05)
    cpu1 = Cpu.now(peer, worker_pgid, server_pids)
    window = time.perf_counter() - window
    load_after = os.getloadavg()
    # The `sent` commit follows the peer's reply: give the last ones a moment.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and await Message.filter(
            element_id__in=list(deals), status__in=("queued", "sending")).exists():
        await asyncio.sleep(0.05)

    rows = await Message.filter(element_id__in=list(deals)).values("recipient", "status", "created_at", "attempts")
    statuses = Counter(r["status"] for r in rows)
    created = {r["recipient"]: r["created_at"].timestamp() for r in rows}
    arrivals = [a for a in peer.arrivals() if a[2] in wanted]
    first_at: dict[str, float] = {}
    ids_of: dict[str, set[str]] = defaultdict(set)
    for at, message_id, recipient in arrivals:
        first_at[recipient] = min(first_at.get(recipient, at), at)
        ids_of[recipient].add(message_id)
    per_id = Counter(message_id for _, message_id, _ in arrivals)
    latency = sorted((first_at[a] - t0) * 1000 for a, t0 in marks.items() if a in first_at)
    to_row = sorted((created[a] - t0) * 1000 for a, t0 in marks.items() if a in created)
    row_to_peer = sorted((first_at[a] - created[a]) * 1000 for a in first_at if a in created)
    wall_s = max(first_at.values()) - min(marks.values()) if first_at else math.nan
    busy = cpu1.machine[0] - cpu0.machine[0], cpu1.machine[1] - cpu0.machine[1]
    pipewright_s = (cpu1.own - cpu0.own) + (cpu1.workers - cpu0.workers) + (cpu1.servers - cpu0.servers)

    def summary(values: list[float]) -> dict[str, float]:
        return {"p50": percentile(values, 50), "p99": percentile(values, 99),
                "max": values[-1] if values else math.nan}

    return {
        "label": label, "emails": count, "rate": rate,
        "producer_s": producer_s, "moves_per_s": count / producer_s,
        "wall_s": wall_s, "emails_per_s": len(first_at) / wall_s if first_at else 0.0,
        "arrived": len(first_at), "missing": count - len(first_at),
        "arrivals": len(arrivals),
        "same_message_id_twice": sum(1 for n in per_id.values() if n > 1),
        "recipients_with_two_messages": sum(1 for ids in ids_of.values() if len(ids) > 1),
        "statuses": dict(statuses), "max_attempts": max((r["attempts"] for r in rows), default=0),
        "latency_ms": summary(latency), "move_to_row_ms": summary(to_row), "row_to_peer_ms": summary(row_to_peer),
        "cpu": {
            "machine_busy_pct": 100 * busy[0] / busy[1] if busy[1] else 0.0,
            "bench_process_s": cpu1.own - cpu0.own, "worker_processes_s": cpu1.workers - cpu0.workers,
            "database_broker_s": cpu1.servers - cpu0.servers, "peer_s": cpu1.peer - cpu0.peer,
            "pipewright_ms_per_email": 1000 * pipewright_s / max(len(first_at), 1),
            "idle_cpu_per_s": idle,
            "net_ms_per_email": 1000 * max(pipewright_s - idle * window, 0.0) / max(len(first_at), 1),
        },
        "load_average": {"before": load_before[0], "after": load_after[0]},
    }


async def measure(args: argparse.Namespace, peer: Peer, *, alive: Any = None, worker_pgid: int | None = None,
                  server_pids: list[int] | None = None) -> list[dict[str, Any]]:
    inbox, send = await _setup_stage()
    common: dict[str, Any] = {"alive": alive, "worker_pgid": worker_pgid, "server_pids": server_pids or []}
    warm = await _phase("warm", 1, 0, inbox, send, peer, args, **common)
    if warm["missing"]:
        raise RuntimeError("the warm-up email did not arrive")
    common["idle"] = await _idle_cpu(peer, worker_pgid, server_pids or [])
    phases = [await _phase("flat", args.emails, 0, inbox, send, peer, args, **common)]
    if args.rate > 0:
        phases.append(await _phase("paced", args.rate_emails, args.rate, inbox, send, peer, args, **common))
    return phases


def report(result: dict[str, Any]) -> str:
    lines = [f"mode {result['mode']}: {result['setup']}"]
    for phase in result["phases"]:
        lat, row, peer = phase["latency_ms"], phase["move_to_row_ms"], phase["row_to_peer_ms"]
        pace = f"at most {phase['rate']:g} moves/s" if phase["rate"] else "flat out"
        cpu = phase["cpu"]
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(phase["statuses"].items()))
        lines += [
            f"  {phase['label']}: {phase['emails']} deals moved {pace}",
            f"    producer             {phase['producer_s']:.2f} s ({phase['moves_per_s']:.0f} moves/s)",
            f"    emails at the peer   {phase['arrived']} of {phase['emails']} in {phase['wall_s']:.2f} s "
            f"(first move -> last arrival): {phase['emails_per_s']:.1f} emails/s",
            f"    once each            {phase['arrivals']} arrivals, same Message-ID twice "
            f"{phase['same_message_id_twice']}, two messages to one address {phase['recipients_with_two_messages']}",
            f"    message rows         {statuses}; most attempts {phase['max_attempts']}",
            f"    move -> at the peer  p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms, max {lat['max']:.0f} ms",
            f"      move -> row        p50 {row['p50']:.0f} ms, p99 {row['p99']:.0f} ms (the rule run wrote it)",
            f"      row -> at the peer p50 {peer['p50']:.0f} ms, p99 {peer['p99']:.0f} ms",
            f"    CPU                  machine {cpu['machine_busy_pct']:.0f}% busy; this process "
            f"{cpu['bench_process_s']:.2f} s, workers {cpu['worker_processes_s']:.2f} s, database+broker "
            f"{cpu['database_broker_s']:.2f} s, peer {cpu['peer_s']:.2f} s: "
            f"{cpu['pipewright_ms_per_email']:.1f} ms per email (all but the peer); idle it spends "
            f"{1000 * cpu['idle_cpu_per_s']:.0f} ms/s, so {cpu['net_ms_per_email']:.1f} ms per email net of idle",
            f"    load average (1 min) {phase['load_average']['before']:.2f} before, "
            f"{phase['load_average']['after']:.2f} after",
        ]
    return "\n".join(lines)


# ---------------------------------------------------------------- embedded mode


async def run_embedded(args: argparse.Namespace) -> dict[str, Any]:
    cancel_on_sigterm()
    workdir = tempfile.mkdtemp(prefix="pw-bench-")
    peer = start_peer(workdir)
    try:
        url = f"sqlite://{workdir}/bench.db"
        os.environ.update({"PIPEWRIGHT_DATABASE_URL": url, "PIPEWRIGHT_POLL_MS": str(args.poll_ms),
                           "PIPEWRIGHT_SMTP_URL": peer.url})
        os.environ.pop("PIPEWRIGHT_BROKER_URL", None)
        from server import config, database

        config.reload()
        await database.migrate(url)
        await database.connect(url)
        from server.workers.embedded import EmbeddedWorker

        worker = EmbeddedWorker(threads=args.threads)
        await worker.start()
        try:
            phases = await measure(args, peer)
        finally:
            await worker.stop()
            await database.disconnect()
        return {"mode": "embedded", "phases": phases,
                "setup": f"SQLite file, EmbeddedWorker on the producer's loop, {args.threads} threads, "
                         f"poll {args.poll_ms} ms"}
    finally:
        peer.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- production mode


async def run_production(args: argparse.Namespace) -> dict[str, Any]:
    from tests.support.servers import start_postgres, start_redis

    cancel_on_sigterm()
    workdir = tempfile.mkdtemp(prefix="pw-bench-")
    postgres = redis = worker = peer = None
    connected = False
    try:
        peer = start_peer(workdir)
        postgres = start_postgres()
        redis = start_redis()
        # Before anything imports server.workers: the broker module picks Redis from the environment.
        os.environ.update({
            "PIPEWRIGHT_DATABASE_URL": postgres.url, "PIPEWRIGHT_BROKER_URL": redis.url,
            "PIPEWRIGHT_POLL_MS": str(args.poll_ms), "PIPEWRIGHT_SMTP_URL": peer.url,
        })
        assert "server.workers.broker" not in sys.modules, "the broker was imported before its URL was set"
        from server import config, database

        config.reload()
        await database.migrate(postgres.url)
        await database.connect(postgres.url)
        connected = True
        worker = WorkerProcess(args, {**os.environ, "PYTHONPATH": str(ROOT)}, Path(workdir) / "worker.log")
        from server.workers import scheduler

        scheduler.install_dispatcher()
        try:
            phases = await measure(args, peer, alive=worker.check_alive, worker_pgid=worker.process.pid,
                                   server_pids=[postgres.process.pid, redis.process.pid])
        except Exception:
            print(f"worker log (last lines):\n{worker.tail()}", file=sys.stderr)
            raise
        return {"mode": "production", "phases": phases,
                "setup": f"PostgreSQL + Redis, `server.cli worker --processes {args.processes} --threads "
                         f"{args.threads}`, poll {args.poll_ms} ms, dispatcher in the producer"}
    finally:
        if "server.workers.scheduler" in sys.modules:
            sys.modules["server.workers.scheduler"].uninstall_dispatcher()
        if worker is not None:
            worker.stop()
        if connected:
            from server import database

            await database.disconnect()
        for server in (redis, postgres):
            if server is not None:
                server.stop()
        if peer is not None:
            peer.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- both modes, each in a child process


def run_both(args: argparse.Namespace) -> int:
    results = []
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as tmp:
        for mode in ("embedded", "production"):
            out = Path(tmp) / f"{mode}.json"
            command = [
                sys.executable, "-m", "bench.messages", "--mode", mode, "--emails", str(args.emails),
                "--rate", str(args.rate), "--rate-emails", str(args.rate_emails), "--threads", str(args.threads),
                "--processes", str(args.processes), "--poll-ms", str(args.poll_ms), "--timeout", str(args.timeout),
                "--json-out", str(out),
            ]
            child = subprocess.Popen(command, cwd=ROOT)
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
    print("summary (one Send email rule; latency: move -> whole email at the SMTP peer)")
    print(f"  {'mode':<11} {'phase':<24} {'emails/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'CPU ms/email':>12} {'load':>5}")
    for r in results:
        for p in r["phases"]:
            lat = p["latency_ms"]
            pace = f"{p['emails']} at {p['rate']:g}/s" if p["rate"] else f"{p['emails']} flat out"
            print(f"  {r['mode']:<11} {pace:<24} {p['emails_per_s']:>8.1f} {lat['p50']:>7.0f} {lat['p99']:>7.0f} "
                  f"{lat['max']:>7.0f} {p['cpu']['net_ms_per_email']:>12.1f} "
                  f"{p['load_average']['before']:>5.2f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.peer_port is not None:
        return serve_peer(args.peer_port, args.peer_log)
    if args.mode == "both":
        return run_both(args)
    runner = run_embedded if args.mode == "embedded" else run_production
    try:
        result = asyncio.run(runner(args))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("interrupted; worker, servers, peer and temp dirs stopped and removed", file=sys.stderr)
        return 130
    print(report(result), flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    bad = any(p["missing"] or p["recipients_with_two_messages"] or p["same_message_id_twice"]
              or p["statuses"] != {"sent": p["emails"]} for p in result["phases"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
