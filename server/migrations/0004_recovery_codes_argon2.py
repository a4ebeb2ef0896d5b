"""Recovery codes were stored as bare SHA-256; now as salted argon2 over that SHA-256 (server/services/auth.py).

The codes themselves are not known here, but their SHA-256 is what the new hash covers: each stored digest
is re-hashed in place, so codes handed out before keep working (once each) and no bare digest is left.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops


async def rehash_recovery_codes(apps: object, schema_editor: object) -> None:
    from server.services import passwords

    client = schema_editor.client  # type: ignore[attr-defined]
    mark = "$1" if client.capabilities.dialect == "postgres" else "?"
    marks = ("$1", "$2") if mark == "$1" else ("?", "?")
    _, rows = await client.execute_query(
        f"SELECT id, code_hash FROM recovery_code WHERE code_hash NOT LIKE {mark}", ["$argon2%"])
    rows = [(row["id"], row["code_hash"]) for row in rows]
    if not rows:
        return
    hashes = await passwords.hash_codes([digest for _, digest in rows])
    for (row_id, _), code_hash in zip(rows, hashes, strict=True):
        await client.execute_query(
            f"UPDATE recovery_code SET code_hash = {marks[0]} WHERE id = {marks[1]}", [code_hash, row_id])


class Migration(migrations.Migration):
    dependencies = [('models', '0003_setup_code')]

    initial = False

    operations = [
        ops.RunPython(rehash_recovery_codes, ops.RunPython.noop),
    ]
