"""The configuration marker: one row whose token changes in the same transaction as every write to a table the
stage-metadata cache holds (server/rules/metadata.py), whoever writes it (a service, the admin, demo seeding, a
migration, plain SQL), so a process sees another's edit by reading one short row.

The token is random, not a counter: a counter bumped in a transaction that rolls back would come back with the
next edit, and a cache filled inside the rolled-back transaction could pass for current. Database triggers write
it (per row on SQLite, per statement on PostgreSQL, TRUNCATE included), as an upsert, so an emptied marker table
comes back with the next edit.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

# The tables the cache reads: stages and their pipelines, revisions' rules, paused rules, custom fields, triggers,
# the work calendar.
WATCHED = ("pipeline", "stage", "stage_revision", "rule", "custom_field", "trigger", "work_calendar")

_SQLITE_BUMP = "INSERT OR REPLACE INTO config_marker (id, token) VALUES (1, lower(hex(randomblob(16))))"
_POSTGRES_BUMP = """
CREATE OR REPLACE FUNCTION config_marker_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO config_marker (id, token) VALUES (1, md5(random()::text || clock_timestamp()::text))
    ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token;
    RETURN NULL;
END $$
"""


async def create_marker(apps: object, schema_editor: Any) -> None:
    client = schema_editor.client
    await client.execute_script(
        "CREATE TABLE IF NOT EXISTS config_marker (id INTEGER PRIMARY KEY, token VARCHAR(32) NOT NULL)")
    if client.capabilities.dialect == "postgres":
        await client.execute_script(_POSTGRES_BUMP)
        await client.execute_script(
            "INSERT INTO config_marker (id, token) VALUES (1, md5(random()::text)) ON CONFLICT (id) DO NOTHING")
        for table in WATCHED:
            await client.execute_script(
                f'CREATE TRIGGER config_marker_{table} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "{table}" '
                "FOR EACH STATEMENT EXECUTE FUNCTION config_marker_bump()")
        return
    await client.execute_script(_SQLITE_BUMP)
    for table in WATCHED:
        for operation in ("insert", "update", "delete"):
            await client.execute_script(
                f'CREATE TRIGGER IF NOT EXISTS config_marker_{table}_{operation} AFTER {operation.upper()} ON "{table}" '
                f"BEGIN {_SQLITE_BUMP}; END")


async def drop_marker(apps: object, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        for table in WATCHED:
            await client.execute_script(f'DROP TRIGGER IF EXISTS config_marker_{table} ON "{table}"')
        await client.execute_script("DROP FUNCTION IF EXISTS config_marker_bump()")
    else:
        for table in WATCHED:
            for operation in ("insert", "update", "delete"):
                await client.execute_script(f"DROP TRIGGER IF EXISTS config_marker_{table}_{operation}")
    await client.execute_script("DROP TABLE IF EXISTS config_marker")


class Migration(migrations.Migration):
    dependencies = [("models", "0015_user_locale")]

    initial = False

    operations = [ops.RunPython(create_marker, drop_marker)]
