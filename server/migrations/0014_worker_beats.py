from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0013_rule_pause')]

    initial = False

    operations = [
        ops.CreateModel(
            name='WorkerBeat',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=200)),
                ('role', fields.CharField(max_length=20)),
                ('host', fields.CharField(max_length=200)),
                ('pid', fields.IntField()),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('beat_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'worker_beat', 'app': 'models', 'indexes': [Index(fields=['role', 'beat_at'])], 'pk_attr': 'id', 'table_description': 'The last sign of life of one process in one role (worker or scheduler). `name` is role, host and'},
            bases=['Model'],
        ),
        ops.AddIndex(
            model_name='RuleRun',
            index=Index(fields=['status', 'finished_at']),
        ),
    ]
