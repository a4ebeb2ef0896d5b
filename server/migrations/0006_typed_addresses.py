"""Clients' email addresses and phone numbers become typed entries `{"value": ..., "type": ...}`.

Before, `contact.emails` / `phones` and `company.emails` / `phones` were lists of plain strings. Each string
becomes a `work` entry, in the same order. Emails are stripped. Phone numbers are normalised to E.164 with
`phonenumbers` (a number without a country code is read in PIPEWRIGHT_DEFAULT_REGION) where it reads them as
valid, and kept as they were written where it does not: the API refuses such a number from now on, but a number
someone typed is not thrown away by a migration; it stays visible and can be corrected. Empty strings go.
Going back turns each entry into its value (the types are lost).

The conversion is written out here rather than imported from the running code, so that this migration keeps
doing what it did when the rules for new addresses change.
"""

import json
from typing import Any

import phonenumbers
from tortoise import migrations
from tortoise.migrations import operations as ops

TABLES = ("contact", "company")


def typed_entries(entries: Any, kind: str, region: str) -> list[dict[str, str]]:
    """One stored list (`kind`: email, phone) in the typed shape; entries already typed are kept as they are."""
    typed: list[dict[str, str]] = []
    for entry in entries or []:
        if isinstance(entry, dict):
            typed.append(entry)
            continue
        value = str(entry).strip()
        if not value:
            continue
        if kind == "phone":
            value = e164_or_as_written(value, region)
        typed.append({"value": value, "type": "work"})
    return typed


def e164_or_as_written(number: str, region: str) -> str:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return number
    if not phonenumbers.is_valid_number(parsed):
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def plain_entries(entries: Any) -> list[str]:
    return [entry["value"] if isinstance(entry, dict) else entry for entry in entries or []]


def _decoded(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, (str, bytes)) else raw  # JSON text (SQLite, jsonb without a codec)


async def _rewrite(schema_editor: Any, convert: Any) -> None:
    client = schema_editor.client
    postgres = client.capabilities.dialect == "postgres"
    assignment = "emails = $1::jsonb, phones = $2::jsonb WHERE id = $3" if postgres else \
        "emails = ?, phones = ? WHERE id = ?"
    for table in TABLES:
        _, rows = await client.execute_query(f"SELECT id, emails, phones FROM {table}")
        for row in rows:
            emails, phones = _decoded(row["emails"]), _decoded(row["phones"])
            new_emails, new_phones = convert(emails, "email"), convert(phones, "phone")
            if (new_emails, new_phones) != (emails, phones):
                await client.execute_query(f"UPDATE {table} SET {assignment}", [
                    json.dumps(new_emails, separators=(",", ":")), json.dumps(new_phones, separators=(",", ":")),
                    row["id"]])


async def type_addresses(apps: object, schema_editor: object) -> None:
    from server.config import settings

    region = settings().default_region
    await _rewrite(schema_editor, lambda entries, kind: typed_entries(entries, kind, region))


async def untype_addresses(apps: object, schema_editor: object) -> None:
    await _rewrite(schema_editor, lambda entries, kind: plain_entries(entries))


class Migration(migrations.Migration):
    dependencies = [('models', '0005_channels')]

    initial = False

    operations = [
        ops.RunPython(type_addresses, untype_addresses),
    ]
