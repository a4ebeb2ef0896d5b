"""Partial indexes for the claims: each holds only the rows a claim or a sweep can take, in the order it takes
them, so a claim reads the first due rows instead of sorting every due row, and stays as cheap with a million
pending delayed runs. The composite (status, ...) indexes of 0001 and 0005 stay for the other queries.

PostgreSQL and SQLite both have partial indexes (`CREATE INDEX ... WHERE`), with the same text.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

# name, table, columns, predicate: the predicates are the claims' own (server/rules/queue.py,
# server/channels/delivery.py, server/rules/pdf.py), so the planner can prove the index covers them.
CLAIM_INDEXES = (
    ("rule_run_due", "rule_run", "due_at, id", "status IN ('scheduled', 'waiting')"),
    ("rule_run_leased", "rule_run", "lease_until", "status IN ('queued', 'running')"),
    ("message_due", "message", "due_at, id", "status = 'queued'"),
    ("message_leased", "message", "lease_until", "status = 'sending'"),
    ("document_pdf_due", "document", "pdf_due_at, id", "pdf_status = 'pending'"),
    ("document_pdf_leased", "document", "pdf_lease_until", "pdf_status = 'rendering'"),
)


async def create_claim_indexes(apps: object, schema_editor: Any) -> None:
    for name, table, columns, predicate in CLAIM_INDEXES:
        await schema_editor.client.execute_script(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns}) WHERE {predicate}")
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script("ANALYZE rule_run; ANALYZE message; ANALYZE document")


async def drop_claim_indexes(apps: object, schema_editor: Any) -> None:
    for name, *_ in CLAIM_INDEXES:
        await schema_editor.client.execute_script(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("models", "0011_idempotency")]

    initial = False

    operations = [ops.RunPython(create_claim_indexes, drop_claim_indexes)]
