from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0010_event_order')]

    initial = False

    operations = [
        ops.CreateModel(
            name='IdempotencyKey',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('scope', fields.CharField(max_length=100)),
                ('key', fields.CharField(max_length=200)),
                ('fingerprint', fields.CharField(max_length=64)),
                ('result_type', fields.CharField(default='', max_length=20)),
                ('result_id', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'idempotency_key', 'app': 'models', 'unique_together': (('scope', 'key'),), 'indexes': [Index(fields=['created_at'])], 'pk_attr': 'id', 'table_description': 'One key a client sent with a create. `scope` is the user and the operation (user 7 createDeal), so two'},
            bases=['Model'],
        ),
    ]
