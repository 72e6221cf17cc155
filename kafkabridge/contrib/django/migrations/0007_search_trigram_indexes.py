"""Trigram indexes for the change list's search (PostgreSQL only; nothing elsewhere).

The admin searches with ``UPPER(column::text) LIKE UPPER('%term%')`` across four columns: without
these, every search reads the whole table (about a second with 100,000 failures). pg_trgm is a
trusted extension (PostgreSQL 13+): the database's owner may create it.
"""

from django.db import migrations

SEARCHED = ("key_text", "exception_message", "exception_class", "reason")
TABLE = "kafkabridge_failures_failedmessage"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in SEARCHED:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "kbf_search_{column}" ON "{TABLE}" USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in SEARCHED:
        schema_editor.execute(f'DROP INDEX IF EXISTS "kbf_search_{column}"')


class Migration(migrations.Migration):
    dependencies = [("kafkabridge_failures", "0006_group_and_hour_indexes")]

    operations = [migrations.RunPython(create, drop)]
