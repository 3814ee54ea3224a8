"""A message's timeline: what happened to it, in words a team member understands.

`record_event` appends one line. Call it from inside the transaction that made the fact true
(the state machine's transitions do), so that a rolled-back change leaves no line behind. It is
an append-only log: nothing edits or deletes events except the message's own deletion.
"""

from __future__ import annotations

from datetime import datetime

from messaging.models import MessageEvent


class EventKind:
    """The kinds the state machine records. `kind` is free text, so a new kind needs no
    migration; these names keep the callers consistent."""

    CREATED = "created"
    QUEUED = "queued"
    CLAIMED = "claimed"
    ACCEPTED = "accepted"
    RETRY_SCHEDULED = "retry_scheduled"
    FAILED = "failed"
    UNKNOWN = "unknown"
    RECONCILED = "reconciled"
    CANCELED = "canceled"
    REQUEUED = "requeued"
    SCHEDULED = "scheduled"
    RELEASED = "released"
    HELD = "held"
    RECIPIENT_STATUS = "recipient_status"
    NOTE = "note"


def record_event(
    message_id: int,
    kind: str,
    text: str,
    recipient_id: int | None = None,
    *,
    at: datetime | None = None,
) -> MessageEvent:
    """Append one event to message `message_id`'s timeline and return it.

    `text` is shown to every member of the team as written: plain words, no secrets. `at`
    defaults to now; pass the moment something happened when it is recorded later (a delivery
    report that arrives with its own time).
    """
    fields = {"message_id": message_id, "kind": kind, "text": text, "recipient_id": recipient_id}
    if at is not None:
        fields["at"] = at
    return MessageEvent.objects.create(**fields)
