"""A trigram index for the outbox's text search (PostgreSQL only).

The search matches anywhere inside the text, case-insensitively (`text__icontains`, which
PostgreSQL runs as `UPPER(text) LIKE UPPER('%term%')`); no b-tree index can serve that, so without
this index every search reads all of a team's messages. A GIN index of trigrams over `UPPER(text)`
serves such patterns of three characters or more, and the statistics PostgreSQL keeps for the
indexed expression let it estimate how many messages a word matches, so a common word is read in
date order and stops after one page instead.

pg_trgm ships with PostgreSQL and is a trusted extension (13+), so the database owner may create
it. Where it cannot be created, the migration says so and carries on: search stays correct, only
slower.
"""

from django.db import migrations, transaction

INDEX = "outbox_text_trgm"


def create(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {INDEX} ON messaging_outboundmessage "
                "USING gin (UPPER(text) gin_trgm_ops)"
            )
    except Exception as error:  # noqa: BLE001 - an optional speed-up must never block a deploy
        print(
            f"\n  Outbox text search index not created ({error}); search works, but reads every "
            "message. A superuser can run: CREATE EXTENSION pg_trgm; then migrate again after "
            "`migrate messaging 0007`."
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("messaging", "0007_delivery_tracking")]

    operations = [migrations.RunPython(create, drop)]
