"""PostgreSQL query plans for tests that check a query can use an index."""

from django.db import connection


def plan_without_seqscan(sql: str, params=()) -> str:
    """EXPLAIN of `sql` with sequential scans priced out.

    An index the query cannot use (its expression or partial condition does not match) still
    does not appear, so the plan shows whether the query and the index fit together.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())
