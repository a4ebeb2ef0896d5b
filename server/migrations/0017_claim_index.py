"""The claim reads due runs one status at a time from (status, due_at, id): in order, so neither planner sorts
every due run to hand over the first 200 (the index replaces (status, due_at), which it extends)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0016_config_marker')]

    initial = False

    operations = [
        ops.RemoveIndex(
            model_name='RuleRun',
            name=None,
            fields=['status', 'due_at'],
        ),
        ops.AddIndex(
            model_name='RuleRun',
            index=Index(fields=['status', 'due_at', 'id']),
        ),
    ]
