from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0008_bookings')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DocumentTemplate',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=200)),
                ('entity_type', fields.CharField(default='deal', max_length=10)),
                ('body', fields.TextField(unique=False)),
                ('prefix', fields.CharField(default='', max_length=40)),
                ('counter', fields.CharField(default='continuous', max_length=12)),
                ('digits', fields.IntField(default=3)),
                ('stamp_key', fields.CharField(null=True, max_length=200)),
                ('signature_key', fields.CharField(null=True, max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'document_template', 'app': 'models', 'pk_attr': 'id', 'table_description': "HTML with the rules' placeholders, for one entity type, and how its documents are numbered."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Document',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('template', fields.ForeignKeyField('models.DocumentTemplate', source_field='template_id', null=True, db_constraint=True, to_field='id', related_name='documents', on_delete=OnDelete.SET_NULL)),
                ('element_type', fields.CharField(max_length=10)),
                ('element_id', fields.IntField()),
                ('title', fields.CharField(default='', max_length=200)),
                ('number', fields.CharField(max_length=80)),
                ('html', fields.TextField(unique=False)),
                ('pdf_key', fields.CharField(null=True, max_length=200)),
                ('pdf_status', fields.CharField(default='pending', max_length=10)),
                ('pdf_error', fields.TextField(null=True, unique=False)),
                ('pdf_attempts', fields.IntField(default=0)),
                ('pdf_due_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('pdf_lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('pdf_ms', fields.IntField(null=True)),
                ('token', fields.CharField(unique=True, max_length=64)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('rule_run_id', fields.IntField(null=True, unique=True)),
                ('created_by', fields.ForeignKeyField('models.User', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'document', 'app': 'models', 'indexes': [Index(fields=['element_type', 'element_id']), Index(fields=['pdf_status', 'pdf_due_at']), Index(fields=['pdf_status', 'pdf_lease_until'])], 'pk_attr': 'id', 'table_description': 'One numbered document of an element: its HTML at once, its PDF made by a worker (`pdf_status`).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DocumentCounter',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('template', fields.ForeignKeyField('models.DocumentTemplate', source_field='template_id', db_constraint=True, to_field='id', related_name='counters', on_delete=OnDelete.CASCADE)),
                ('period', fields.CharField(default='', max_length=7)),
                ('next_value', fields.IntField(default=1)),
            ],
            options={'table': 'document_counter', 'app': 'models', 'unique_together': (('template_id', 'period'),), 'pk_attr': 'id', 'table_description': 'The next number of a template in one period (the empty key for a continuous counter).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DocumentView',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('document', fields.ForeignKeyField('models.Document', source_field='document_id', db_constraint=True, to_field='id', related_name='views', on_delete=OnDelete.CASCADE)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('ip', fields.CharField(default='', max_length=64)),
                ('agent', fields.CharField(default='', max_length=300)),
            ],
            options={'table': 'document_view', 'app': 'models', 'pk_attr': 'id', 'table_description': "Someone opened a document's public link."},
            bases=['Model'],
        ),
    ]
