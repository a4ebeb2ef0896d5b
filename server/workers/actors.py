"""The actor that executes one rule run. Retries are the engine's (durable rows), not dramatiq's."""

import dramatiq

from server.rules import engine
from server.workers.broker import broker  # noqa: F401  (sets the broker before the actor exists)


@dramatiq.actor(queue_name="rule_runs", max_retries=0, time_limit=10 * 60 * 1000)
async def execute_rule_run(run_id: int) -> None:
    await engine.execute(run_id)
