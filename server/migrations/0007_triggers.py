from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0006_typed_addresses')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Payment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('element_type', fields.CharField(max_length=10)),
                ('element_id', fields.IntField()),
                ('amount', fields.DecimalField(max_digits=18, decimal_places=2)),
                ('currency', fields.CharField(max_length=3)),
                ('reference', fields.CharField(default='', max_length=200)),
                ('idempotency_key', fields.CharField(null=True, unique=True, max_length=200)),
                ('recorded_by_id', fields.IntField(null=True)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'payment', 'app': 'models', 'indexes': [Index(fields=['element_type', 'element_id'])], 'pk_attr': 'id', 'table_description': 'A payment received for an element. `idempotency_key` makes a retried report the same payment.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Trigger',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('stage', fields.ForeignKeyField('models.Stage', source_field='stage_id', db_constraint=True, to_field='id', related_name='triggers', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=200)),
                ('trigger_type', fields.CharField(max_length=64)),
                ('settings', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('condition', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('allow_back', fields.BooleanField(default=False)),
                ('run_as', fields.ForeignKeyField('models.User', source_field='run_as_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('position', fields.IntField(default=0)),
                ('enabled', fields.BooleanField(default=True)),
                ('token', fields.CharField(null=True, unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'trigger', 'app': 'models', 'pk_attr': 'id', 'table_description': 'When its event happens to an element of the pipeline, the element moves into `stage` (whose rules start).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TriggerActivation',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('element_type', fields.CharField(max_length=10)),
                ('element_id', fields.IntField()),
                ('event', fields.CharField(max_length=40)),
                ('data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('trigger_id', fields.IntField(null=True)),
                ('from_stage_id', fields.IntField(null=True)),
                ('to_stage_id', fields.IntField(null=True)),
                ('outcome', fields.CharField(max_length=20)),
                ('reason', fields.TextField(default='', unique=False)),
                ('evaluations', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('idempotency_key', fields.CharField(null=True, unique=True, max_length=220)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'trigger_activation', 'app': 'models', 'indexes': [Index(fields=['element_type', 'element_id'])], 'pk_attr': 'id', 'table_description': "One event matched against the triggers of one element's pipeline: which fired (if any), and for each"},
            bases=['Model'],
        ),
    ]
