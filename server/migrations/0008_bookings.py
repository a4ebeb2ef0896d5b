"""Resources, services and bookings. On PostgreSQL the database itself keeps two active bookings of one
resource apart (an exclusion constraint over the half-open range [start_at, end_at), which needs btree_gist for
the `=` on resource_id); on SQLite the booking code checks inside the serialised write transaction."""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

NO_OVERLAP = "booking_no_overlap"


async def exclude_overlaps(apps: object, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    await client.execute_script("CREATE EXTENSION IF NOT EXISTS btree_gist")
    await client.execute_script(
        f"ALTER TABLE booking ADD CONSTRAINT {NO_OVERLAP} EXCLUDE USING gist "
        "(resource_id WITH =, tstzrange(start_at, end_at, '[)') WITH &&) WHERE (status = 'active')")
    await client.execute_script("ALTER TABLE booking ADD CONSTRAINT booking_end_after_start CHECK (end_at > start_at)")


async def allow_overlaps(apps: object, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        await client.execute_script(f"ALTER TABLE booking DROP CONSTRAINT IF EXISTS {NO_OVERLAP}")
        await client.execute_script("ALTER TABLE booking DROP CONSTRAINT IF EXISTS booking_end_after_start")


class Migration(migrations.Migration):
    dependencies = [('models', '0007_triggers')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Resource',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=200)),
                ('kind', fields.CharField(max_length=10)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'resource', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Something booked by the hour: an employee (then `user` is set) or a thing such as a room or a car.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Service',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=200)),
                ('duration_minutes', fields.IntField(default=60)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'service', 'app': 'models', 'pk_attr': 'id', 'table_description': 'What a resource is booked for (a consultation, a test drive), with its usual length.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Booking',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('resource', fields.ForeignKeyField('models.Resource', source_field='resource_id', db_constraint=True, to_field='id', related_name='bookings', on_delete=OnDelete.CASCADE)),
                ('service', fields.ForeignKeyField('models.Service', source_field='service_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('element_type', fields.CharField(max_length=10)),
                ('element_id', fields.IntField()),
                ('field', fields.CharField(max_length=64)),
                ('start_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('end_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.CharField(default='active', max_length=10)),
                ('rule_run_id', fields.IntField(null=True)),
                ('created_by_id', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('cancelled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'booking', 'app': 'models', 'unique_together': (('rule_run_id', 'resource_id'),), 'indexes': [Index(fields=['element_type', 'element_id', 'field']), Index(fields=['resource_id', 'start_at'])], 'pk_attr': 'id', 'table_description': 'A resource booked for an element over [start_at, end_at) under the booking field `field` of the element.'},
            bases=['Model'],
        ),
        ops.RunPython(exclude_overlaps, allow_overlaps),
    ]
