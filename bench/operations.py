"""What the operations figures cost on a big rule_run table (SQLite): /metrics' computation, the admin page's
stuck runs and /health, over `--runs` rows.

The rows are written straight into a migrated SQLite file (one real deal and stage run, then the rule runs in
bulk with sqlite3): mostly succeeded runs spread over 30 days, delayed runs not yet due, and a share of due,
overdue, failed and leased ones. Each query set runs `--repeat` times after one warm-up; the median and the
worst are printed.

    .venv/bin/python -m bench.operations --runs 1000000
"""

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def fill(path: Path, runs: int, stage_run_id: int) -> dict[str, int]:
    now = datetime.now(UTC)
    rng = random.Random(16)
    shares = (("succeeded", 0.90), ("scheduled_later", 0.06), ("failed", 0.02), ("scheduled_due", 0.01),
              ("queued", 0.005), ("waiting", 0.005))
    counts: dict[str, int] = {}
    rows = []
    for kind, share in shares:
        n = int(runs * share)
        counts[kind] = n
        for _ in range(n):
            status, due, finished, lease = kind, now - timedelta(seconds=rng.uniform(0, 30 * 86400)), None, None
            if kind in ("succeeded", "failed"):
                finished = due + timedelta(seconds=1)
            elif kind == "scheduled_later":
                status, due = "scheduled", now + timedelta(seconds=rng.uniform(60, 90 * 86400))
            elif kind == "scheduled_due":
                status, due = "scheduled", now - timedelta(seconds=rng.uniform(0, 600))
            elif kind == "queued":
                due, lease = now - timedelta(seconds=rng.uniform(0, 600)), now + timedelta(seconds=rng.uniform(-60, 60))
            rows.append((stage_run_id, "deal", 1, rng.randint(1, 200), f"r{rng.randint(1, 200)}", "add_comment",
                         "Rule", "{}", status, _iso(due), _iso(lease), "{}", _iso(now), _iso(finished),
                         "boom" if kind == "failed" else None))
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO rule_run (stage_run_id, element_type, element_id, rule_id, rule_key, action_type, title, spec,"
            " status, due_at, lease_until, outputs, created_at, finished_at, error, position, lane, attempts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0)", rows)
        connection.execute("ANALYZE")
    return counts


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(sep=" ") if value is not None else None


async def main(args: argparse.Namespace) -> int:
    import os

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "operations.db"
        os.environ["PIPEWRIGHT_DATABASE_URL"] = f"sqlite://{path}"
        from server import config, database

        config.reload()
        await database.migrate()
        await database.connect()
        try:
            from server.actor import SYSTEM
            from server.models import StageRun
            from server.services import elements, operations
            from tests.support import make_pipeline

            _, stages = await make_pipeline()
            await elements.create_element("deal", {"title": "ACME"}, stage_id=stages["offer"].id, actor=SYSTEM)
            stage_run = await StageRun.first()
            assert stage_run is not None
            started = time.monotonic()
            counts = fill(path, args.runs, stage_run.id)
            print(f"rule_run rows: {sum(counts.values()):,} ({', '.join(f'{k} {v:,}' for k, v in counts.items())}), "
                  f"written in {time.monotonic() - started:.1f} s")
            checks = {
                "figures (/metrics)": lambda: operations.figures(actor=SYSTEM),
                "stuck runs (admin page)": lambda: operations.stuck_runs(actor=SYSTEM),
                "failures by rule, last day": lambda: operations.failures_by_rule(within=timedelta(days=1), actor=SYSTEM),
                "health verdict (/health)": lambda: operations.health(actor=SYSTEM),
            }
            print("| what | median ms | worst ms |\n|---|---|---|")
            for name, call in checks.items():
                await call()  # warm-up
                times = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    await call()
                    times.append((time.perf_counter() - t0) * 1000)
                print(f"| {name} | {statistics.median(times):.1f} | {max(times):.1f} |")
            f = await operations.figures(actor=SYSTEM)
            print(f"figures: due {f.due:,}, overdue {f.overdue:,}, active {f.active}, "
                  f"failures in the last hour: {sum(r.failures for r in f.failures_last_hour)}")
        finally:
            await database.disconnect()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.operations", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
