"""The admin's language per user: en or de, none for the instance default (PIPEWRIGHT_DEFAULT_LOCALE)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0014_worker_beats')]

    initial = False

    operations = [
        ops.AddField(
            model_name='User',
            name='locale',
            field=fields.CharField(null=True, max_length=8),
        ),
    ]
