"""Pausing a rule (who, when, why; failures in a row counted from its last resume), triggers in a stage's
revisions with a note of what changed, and re-runs: a run's own revision and the run a failed one was re-run as.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0012_claim_indexes')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Rule',
            name='pause_reason',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='Rule',
            name='paused_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Rule',
            name='paused_by_id',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Rule',
            name='resumed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='RuleRun',
            name='rerun_as_id',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='RuleRun',
            name='revision',
            field=fields.IntField(null=True),
        ),
        ops.AlterModelOptions(
            name='StageRevision',
            options={'table': 'stage_revision', 'app': 'models', 'unique_together': (('stage', 'number'),), 'pk_attr': 'id', 'table_description': 'A snapshot of the rules and triggers of a stage after each change, pinned by stage runs.'},
        ),
        ops.AddField(
            model_name='StageRevision',
            name='note',
            field=fields.CharField(default='', db_default='', max_length=255),
        ),
        ops.AddField(
            model_name='StageRevision',
            name='triggers',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
