# The custom-field values live in Ticket.data (JSON). Reports filter on them with containment
# (`data__contains={"complaint_type": "quality"}`), which a GIN index with jsonb_path_ops answers
# on PostgreSQL; SQLite has no such index and scans, which the embedded default's sizes allow.

from django.db import migrations

INDEX = "ticket_data_gin"


def data_gin_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON tickets_ticket USING gin (data jsonb_path_ops)")


def data_gin_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):

    dependencies = [("tickets", "0002_list_indexes")]

    operations = [migrations.RunPython(data_gin_create, data_gin_drop, elidable=False)]
