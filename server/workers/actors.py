"""The actors: one rule run, one delivery attempt of a message. Retries are ours (durable rows), not dramatiq's."""

import dramatiq

from server.channels import delivery
from server.rules import engine
from server.workers.broker import broker  # noqa: F401  (sets the broker before the actor exists)


@dramatiq.actor(queue_name="rule_runs", max_retries=0, time_limit=10 * 60 * 1000)
async def execute_rule_run(run_id: int) -> None:
    await engine.execute(run_id)


# The time limit is above PIPEWRIGHT_SEND_TIMEOUT_S: the delivery step times its peer out itself.
@dramatiq.actor(queue_name="messages", max_retries=0, time_limit=10 * 60 * 1000)
async def deliver_message(message_id: int) -> None:
    await delivery.deliver(message_id)
