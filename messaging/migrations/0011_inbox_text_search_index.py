"""A trigram index for the inbox's text search (PostgreSQL only), as 0008 made for the outbox:
the search matches anywhere inside a message's text, which no b-tree index can serve. Where
pg_trgm cannot be created, search stays correct, only slower."""

from django.db import migrations, transaction

INDEX = "inbox_text_trgm"


def create(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {INDEX} ON messaging_conversationmessage "
                "USING gin (UPPER(text) gin_trgm_ops)"
            )
    except Exception as error:  # noqa: BLE001 - an optional speed-up must never block a deploy
        print(f"\n  Inbox text search index not created ({error}); search works, but slower.")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("messaging", "0010_inbox")]

    operations = [migrations.RunPython(create, drop)]
