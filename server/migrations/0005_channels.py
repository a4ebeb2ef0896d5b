from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_recovery_codes_argon2')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ChannelHook',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('channel', fields.CharField(unique=True, max_length=20)),
                ('token', fields.CharField(unique=True, max_length=64)),
                ('signing_secret', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'channel_hook', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The secrets of one inbound webhook channel (calls, sms, chat, forms, sms_status): `token` is the'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ExceptionEntry',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=10)),
                ('value', fields.CharField(unique=True, max_length=320)),
                ('note', fields.CharField(default='', max_length=255)),
                ('created_by_id', fields.IntField(null=True)),
                ('rule_run_id', fields.IntField(null=True)),
                ('blocked_count', fields.IntField(default=0)),
                ('last_blocked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'exception_entry', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An email address or phone number whose mail and calls the CRM does not store (only counts).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MailSender',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=200)),
                ('address', fields.CharField(unique=True, max_length=320)),
                ('reply_to', fields.CharField(default='', max_length=320)),
                ('is_default', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'mail_sender', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An address Send email rules may send from (the default one when a rule names none).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Message',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('uid', fields.CharField(unique=True, max_length=32)),
                ('direction', fields.CharField(max_length=10)),
                ('channel', fields.CharField(max_length=10)),
                ('status', fields.CharField(default='queued', max_length=12)),
                ('element_type', fields.CharField(null=True, max_length=10)),
                ('element_id', fields.IntField(null=True)),
                ('rule_run_id', fields.IntField(null=True, unique=True)),
                ('sender', fields.CharField(default='', max_length=320)),
                ('sender_name', fields.CharField(default='', max_length=200)),
                ('recipient', fields.CharField(default='', max_length=320)),
                ('subject', fields.CharField(default='', max_length=998)),
                ('text', fields.TextField(default='', unique=False)),
                ('html', fields.TextField(default='', unique=False)),
                ('transport', fields.CharField(default='', max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('due_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('answer', fields.TextField(null=True, unique=False)),
                ('provider_id', fields.CharField(null=True, max_length=255)),
                ('reason', fields.TextField(null=True, unique=False)),
                ('in_reply_to_id', fields.IntField(null=True)),
                ('header_message_id', fields.CharField(default='', max_length=998)),
                ('idempotency_key', fields.CharField(null=True, max_length=200)),
                ('meta', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('author_id', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('opened_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('clicked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'message', 'app': 'models', 'unique_together': (('channel', 'idempotency_key'),), 'indexes': [Index(fields=['status', 'due_at']), Index(fields=['status', 'lease_until']), Index(fields=['element_type', 'element_id']), Index(fields=['provider_id'])], 'pk_attr': 'id', 'table_description': 'One email, SMS, call, chat message or form submission, outbound or inbound.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DeliveryAttempt',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('message', fields.ForeignKeyField('models.Message', source_field='message_id', db_constraint=True, to_field='id', related_name='delivery_attempts', on_delete=OnDelete.CASCADE)),
                ('number', fields.IntField()),
                ('transport', fields.CharField(max_length=16)),
                ('outcome', fields.CharField(default='', max_length=12)),
                ('answer', fields.TextField(default='', unique=False)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'delivery_attempt', 'app': 'models', 'unique_together': (('message', 'number'),), 'pk_attr': 'id', 'table_description': "One try at handing an outbound message to its peer, with the peer's answer."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Suppression',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('address', fields.CharField(unique=True, max_length=320)),
                ('reason', fields.CharField(max_length=20)),
                ('detail', fields.TextField(default='', unique=False)),
                ('message_id', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'suppression', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An address later sends skip: it hard-bounced, complained, or an admin put it here.'},
            bases=['Model'],
        ),
    ]
