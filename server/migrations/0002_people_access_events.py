from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Activity',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=20)),
                ('subject', fields.CharField(max_length=255)),
                ('description', fields.TextField(default='', unique=False)),
                ('start_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('end_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('important', fields.BooleanField(default=False)),
                ('reminder_minutes', fields.IntField(null=True)),
                ('responsible', fields.ForeignKeyField('models.User', source_field='responsible_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('element_type', fields.CharField(null=True, max_length=10)),
                ('element_id', fields.IntField(null=True)),
                ('auto_complete', fields.BooleanField(default=False)),
                ('completed', fields.BooleanField(default=False)),
                ('completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('rule_run_id', fields.IntField(null=True)),
                ('sequence', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'activity', 'app': 'models', 'unique_together': (('rule_run_id', 'responsible'),), 'indexes': [Index(fields=['element_type', 'element_id']), Index(fields=['responsible_id', 'start_at'])], 'pk_attr': 'id', 'table_description': 'A call, meeting, generic activity or to-do of one responsible user, on an element.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AdminSession',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('session_hash', fields.CharField(unique=True, max_length=64)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('stage', fields.CharField(default='password', max_length=20)),
                ('csrf_token', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('ip', fields.CharField(default='', max_length=64)),
            ],
            options={'table': 'admin_session', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A browser session of the admin. The cookie holds a random id, the table its SHA-256.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ApiToken',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=200)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='api_tokens', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('prefix', fields.CharField(max_length=16)),
                ('created_by_id', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'api_token', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A bearer token for the GraphQL API. Only its SHA-256 is stored: the token is shown once.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Event',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=30)),
                ('element_type', fields.CharField(null=True, max_length=10)),
                ('element_id', fields.IntField(null=True)),
                ('responsible_id', fields.IntField(null=True)),
                ('audience', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('payload', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'event', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One live event. `audience` lists the user ids who may see it, or is null when the'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FeedPost',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('author', fields.ForeignKeyField('models.User', source_field='author_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('title', fields.CharField(default='', max_length=255)),
                ('body', fields.TextField(unique=False)),
                ('to_everyone', fields.BooleanField(default=False)),
                ('element_type', fields.CharField(null=True, max_length=10)),
                ('element_id', fields.IntField(null=True)),
                ('rule_run_id', fields.IntField(null=True, unique=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'feed_post', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An activity stream post. Who sees it is materialised in FeedRecipient at posting time.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FeedRecipient',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('post', fields.ForeignKeyField('models.FeedPost', source_field='post_id', db_constraint=True, to_field='id', related_name='recipients', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'feed_recipient', 'app': 'models', 'unique_together': (('post', 'user'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LoginAttempt',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(max_length=300)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'login_attempt', 'app': 'models', 'indexes': [Index(fields=['key', 'created_at'])], 'pk_attr': 'id', 'table_description': 'A failed login step, counted per account and per IP for the lockout.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Notification',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('recipient', fields.ForeignKeyField('models.User', source_field='recipient_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('sender', fields.ForeignKeyField('models.User', source_field='sender_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('kind', fields.CharField(default='notification', max_length=20)),
                ('text', fields.TextField(unique=False)),
                ('read', fields.BooleanField(default=False)),
                ('read_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('element_type', fields.CharField(null=True, max_length=10)),
                ('element_id', fields.IntField(null=True)),
                ('rule_run_id', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'notification', 'app': 'models', 'indexes': [Index(fields=['recipient_id', 'read'])], 'pk_attr': 'id', 'table_description': 'An in-app notification to one user, optionally about an element.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RecoveryCode',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('code_hash', fields.CharField(max_length=255)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'recovery_code', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RoundRobinCursor',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('rule_id', fields.IntField(unique=True)),
                ('position', fields.IntField(default=0)),
            ],
            options={'table': 'round_robin_cursor', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The next position of a Change responsible rule in round robin mode, kept per rule.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Lead',
            name='converted_deal_id',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='User',
            name='active',
            field=fields.BooleanField(default=True, db_default=True),
        ),
        ops.AddField(
            model_name='User',
            name='calendar_token',
            field=fields.CharField(null=True, unique=True, max_length=64),
        ),
        ops.AddField(
            model_name='User',
            name='totp_confirmed',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='User',
            name='totp_last_step',
            field=fields.BigIntField(null=True),
        ),
    ]
