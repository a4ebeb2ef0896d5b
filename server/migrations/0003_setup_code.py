from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_people_access_events')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SetupCode',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code_hash', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'setup_code', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The setup code of the first-admin page, printed on the console at start. Only its SHA-256 is kept.'},
            bases=['Model'],
        ),
    ]
