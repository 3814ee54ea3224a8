"""The SQL of the send path (claim, the reads a send needs, the answer recorded), written once
per process from the models' own table and column names (messaging/outbox/rows.py says why).

Only identifiers from the models' metadata, quoted by the backend, are put into these strings;
every value is a query parameter.
"""

# ruff: noqa: S608

from __future__ import annotations

from functools import cache

from django.db import connection

from messaging.models import (
    CLAIMABLE_STATUSES,
    Attachment,
    ConsentRecord,
    ConsentState,
    OutboundMessage,
    Recipient,
    RingCentralConnection,
    SendAttempt,
)
from messaging.outbox import rows

# What closing an attempt writes.
ATTEMPT_RESULT = ["finished_at", "outcome", "http_status", "rc_error_code", "rate_limit", "detail"]


@cache
def statements() -> SendPathSql:
    """The send path's statements, written once per process (messaging/outbox/rows.py)."""
    return SendPathSql()


class SendPathSql:
    def __init__(self):
        concrete = lambda model: [f.attname for f in model._meta.concrete_fields]  # noqa: E731
        self.message = rows.Columns(OutboundMessage, concrete(OutboundMessage))
        self.connection = rows.Columns(RingCentralConnection, concrete(RingCentralConnection))
        self.recipient = rows.Columns(Recipient, concrete(Recipient))
        self.attachment = rows.Columns(Attachment, concrete(Attachment))
        attempt = rows.Columns(
            SendAttempt, ["id", "message_id", "number", "started_at", *ATTEMPT_RESULT]
        )
        m, r, a = self.message, self.recipient, self.attachment
        claimable = ", ".join(["%s"] * len(CLAIMABLE_STATUSES))
        self.claim = (
            f"UPDATE {m.table} SET {m.column('status')} = %s, {m.column('sending_since')} = %s, "
            f"{m.column('attempts')} = {m.column('attempts')} + 1, {m.column('updated_at')} = %s "
            f"WHERE {m.column('id')} = %s AND {m.column('status')} IN ({claimable}) AND "
            f"({m.column('next_attempt_at')} IS NULL OR {m.column('next_attempt_at')} <= %s) "
            f"RETURNING {m.select_list()}"
        )
        self.open_attempt = (
            f"INSERT INTO {attempt.table} ({attempt.column('message_id')}, "
            f"{attempt.column('number')}, {attempt.column('started_at')}, "
            f"{attempt.column('rc_error_code')}, {attempt.column('rate_limit')}, "
            f"{attempt.column('outcome')}, {attempt.column('detail')}) "
            f"SELECT %s, COALESCE(MAX({attempt.column('number')}), 0) + 1, %s, '', %s, %s, '' "
            f"FROM {attempt.table} WHERE {attempt.column('message_id')} = %s "
            f"RETURNING {attempt.column('id')}, {attempt.column('number')}"
        )
        self.finish_attempt = (
            f"UPDATE {attempt.table} SET "
            + ", ".join(f"{attempt.column(f)} = %s" for f in ATTEMPT_RESULT)
            + f" WHERE {attempt.column('id')} = %s"
        )
        c = self.connection
        consent = rows.Columns(ConsentRecord, ["team_id", "state", "contact_number"])
        # PostgreSQL runs a claim, or the record of an answer, as one statement (data-modifying
        # CTEs): atomic by itself, one round trip instead of a transaction of several. The claim
        # also says, per recipient, whether the team holds an opt-out for the number in any
        # scope (consent.checks.any_opted_out's probe): nearly always no, and then the send asks
        # nothing more before it posts. The state is a constant of the code, not a value.
        self.single_statement = connection.vendor == "postgresql"
        self.claim_whole = (
            f"WITH claimed AS ({self.claim}), opened AS ("
            f"INSERT INTO {attempt.table} ({attempt.column('message_id')}, "
            f"{attempt.column('number')}, {attempt.column('started_at')}, "
            f"{attempt.column('rc_error_code')}, {attempt.column('rate_limit')}, "
            f"{attempt.column('outcome')}, {attempt.column('detail')}) "
            f"SELECT claimed.{m.column('id')}, COALESCE((SELECT MAX(p.{attempt.column('number')}) "
            f"FROM {attempt.table} p WHERE p.{attempt.column('message_id')} = "
            f"claimed.{m.column('id')}), 0) + 1, %s, '', %s, %s, '' FROM claimed "
            f"RETURNING {attempt.column('id')}, {attempt.column('number')}) "
            f"SELECT {m.select_list('claimed')}, opened.{attempt.column('id')}, "
            f"opened.{attempt.column('number')}, (SELECT COUNT(*) FROM {a.table} f WHERE "
            f"f.{a.column('message_id')} = claimed.{m.column('id')}), {c.select_list('c')}, "
            f"{r.select_list('r')}, EXISTS (SELECT 1 FROM {consent.table} k WHERE "
            f"k.{consent.column('team_id')} = claimed.{m.column('team_id')} AND "
            f"k.{consent.column('state')} = '{ConsentState.OPTED_OUT.value}' AND "
            f"k.{consent.column('contact_number')} = r.{r.column('phone_number')}) "
            f"FROM claimed CROSS JOIN opened "
            f"JOIN {c.table} c ON c.{c.column('id')} = claimed.{m.column('connection_id')} "
            f"LEFT JOIN {r.table} r ON r.{r.column('message_id')} = claimed.{m.column('id')} "
            f"ORDER BY r.{r.column('id')}"
        )
        self.due_columns = rows.Columns(
            OutboundMessage, ["status", "next_attempt_at", "from_number"]
        )
        self.due = (
            f"SELECT m.{m.column('status')}, m.{m.column('next_attempt_at')}, "
            f"m.{m.column('from_number')}, c.{c.column('account_id')}, "
            f"c.{c.column('extension_id')} FROM {m.table} m "
            f"JOIN {c.table} c ON c.{c.column('id')} = m.{m.column('connection_id')} "
            f"WHERE m.{m.column('id')} = %s"
        )
        # The connection rides along with each recipient: one read for both.
        self.connection_and_recipients = (
            f"SELECT {c.select_list('c')}, {r.select_list('r')} FROM {r.table} r "
            f"JOIN {c.table} c ON c.{c.column('id')} = %s "
            f"WHERE r.{r.column('message_id')} = %s ORDER BY r.{r.column('id')}"
        )
        self.message_row = f"SELECT {m.select_list()} FROM {m.table} WHERE {m.column('id')} = %s"
        self.attachments = (
            f"SELECT {a.select_list()} FROM {a.table} WHERE {a.column('message_id')} = %s "
            f"ORDER BY {a.column('position')}, {a.column('id')}"
        )
        done = ", ".join(
            f"{m.column(f)} = %s"
            for f in (
                "status",
                "sent_at",
                "rc_message_id",
                "rc_conversation_id",
                "next_attempt_at",
                "error_code",
                "error_reason",
                "error_fix",
                "updated_at",
            )
        )
        self.accepted = f"UPDATE {m.table} SET {done} WHERE {m.column('id')} = %s AND " + (
            f"{m.column('status')} IN "
        )
        # The answer recorded when every recipient takes one status (the usual case); the
        # statuses the message may leave are filled in by `accepted_whole_for`.
        self._accepted_whole = (
            "WITH done AS ({accepted} RETURNING " + m.column("id") + "), "
            f"recipients AS (UPDATE {r.table} SET {r.column('status')} = %s WHERE "
            f"{r.column('message_id')} IN (SELECT {m.column('id')} FROM done) RETURNING 1), "
            f"closed AS ({self.finish_attempt} AND EXISTS (SELECT 1 FROM done) RETURNING 1) "
            "SELECT COUNT(*) FROM done"
        )
        self._accepted_whole_by_count: dict[int, str] = {}
        self.recipients_status = (
            f"UPDATE {r.table} SET {r.column('status')} = %s WHERE {r.column('message_id')} = %s"
        )

    def accepted_for(self, statuses: int) -> str:
        """The compare-and-set of an accepted message leaving one of `statuses` statuses."""
        return self.accepted + "(" + ", ".join(["%s"] * statuses) + ")"

    def accepted_whole_for(self, statuses: int) -> str:
        written = self._accepted_whole_by_count.get(statuses)
        if written is None:
            written = self._accepted_whole.replace("{accepted}", self.accepted_for(statuses))
            self._accepted_whole_by_count[statuses] = written
        return written
