"""Events get a delivery position (the subscriber's cursor) instead of ids in commit order under a global lock.

Existing events keep their id as their position, so cursors given out before stay valid. On PostgreSQL
positions come from `pipewright_sequence_events` (see server/live.py): a partial index finds the
events not yet positioned, a sequence numbers them.
"""

from typing import Any

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

SEQUENCER_LOCK = 0x70697066  # held by whoever is numbering events, for one statement

SEQUENCE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION pipewright_sequence_events(batch integer) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    base bigint;
    done bigint;
BEGIN
    -- One numbering at a time (another is running: -1, the caller tries again). It runs as one
    -- statement, so the server finishes and commits it even if the calling process freezes.
    IF NOT pg_try_advisory_xact_lock({SEQUENCER_LOCK}) THEN
        RETURN -1;
    END IF;
    -- Each statement below sees everything committed before the lock was taken.
    IF NOT EXISTS (SELECT 1 FROM event WHERE position IS NULL) THEN
        RETURN 0;
    END IF;
    base := nextval('event_position');
    WITH todo AS (
        SELECT id, row_number() OVER (ORDER BY id) AS n FROM event WHERE position IS NULL ORDER BY id LIMIT batch
    )
    UPDATE event SET position = base + todo.n - 1 FROM todo WHERE event.id = todo.id;
    GET DIAGNOSTICS done = ROW_COUNT;
    IF done > 1 THEN
        PERFORM setval('event_position', base + done - 1);
    END IF;
    RETURN done;
END
$fn$
"""


async def give_positions(apps: object, schema_editor: Any) -> None:
    client = schema_editor.client
    await client.execute_script("UPDATE event SET position = id")
    if client.capabilities.dialect != "postgres":
        return
    await client.execute_script("CREATE SEQUENCE IF NOT EXISTS event_position")
    await client.execute_script("SELECT setval('event_position', GREATEST((SELECT MAX(id) FROM event), 1))")
    await client.execute_script("CREATE INDEX IF NOT EXISTS event_unpositioned ON event (id) WHERE position IS NULL")
    await client.execute_script(SEQUENCE_FUNCTION)


async def take_positions(apps: object, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    await client.execute_script("DROP FUNCTION IF EXISTS pipewright_sequence_events(integer)")
    await client.execute_script("DROP INDEX IF EXISTS event_unpositioned")
    await client.execute_script("DROP SEQUENCE IF EXISTS event_position")


class Migration(migrations.Migration):
    dependencies = [("models", "0009_documents")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Event",
            name="position",
            field=fields.BigIntField(null=True, unique=True),
        ),
        ops.RunPython(give_positions, take_positions),
    ]
