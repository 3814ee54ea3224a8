"""The per-recipient report of a campaign: what became of each row of the list, and why.

Streamed as CSV a few thousand rows at a time, with formula-safe cells
(messaging/contacts/exporting.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from messaging.models import (
    Campaign,
    CampaignRecipient,
    MessageStatus,
    Recipient,
    RecipientState,
)

HEADER = ["Row", "Number", "Name", "Text", "Result", "Reason", "What to do", "Sent at", "Final at"]


def rows_of(campaign: Campaign):
    """The recipients with their message's outcome, in list order (one query, streamed)."""
    recipient = Recipient.objects.filter(message=OuterRef("message")).order_by("pk")
    return (
        CampaignRecipient.objects.filter(campaign=campaign)
        .select_related("message")
        .annotate(
            recipient_status=Subquery(recipient.values("status")[:1]),
            recipient_reason=Subquery(recipient.values("error_reason")[:1]),
            recipient_fix=Subquery(recipient.values("error_fix")[:1]),
            recipient_code=Subquery(recipient.values("error_code")[:1]),
        )
        .order_by("position", "pk")
    )


def result_of(row: CampaignRecipient) -> tuple[str, str, str]:
    """(result, reason, what to do) of one recipient as people read them."""
    if row.state == RecipientState.SKIPPED:
        return f"Skipped: {row.get_skip_kind_display().lower()}", row.skip_reason, ""
    if row.batch_status:
        return _batch_result(row)
    if row.state == RecipientState.CANCELED or row.message is None:
        label = "Canceled" if row.state == RecipientState.CANCELED else "Not sent yet"
        return label, "", ""
    message = row.message
    reason = row.recipient_reason or message.error_reason
    fix = row.recipient_fix or message.error_fix
    code = row.recipient_code or message.error_code
    if code and reason and code not in reason:
        reason = f"{reason} ({code})"
    return message.get_status_display(), reason, fix


def _batch_result(row: CampaignRecipient) -> tuple[str, str, str]:
    """A High Volume recipient's outcome, as its batch's results said (no outbox message)."""
    special = {"sending": "Being sent", MessageStatus.UNKNOWN: "Outcome unknown"}
    label = special.get(row.batch_status) or MessageStatus(row.batch_status).label
    reason = row.error_reason
    if row.error_code and reason and row.error_code not in reason:
        reason = f"{reason} ({row.error_code})"
    return label, reason, row.error_fix


def _when(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def report_rows(campaign: Campaign) -> Iterator[list]:
    for row in rows_of(campaign).iterator(chunk_size=2000):
        result, reason, fix = result_of(row)
        message = row.message
        yield [
            row.position,
            row.phone_number,
            row.name,
            row.text,
            result,
            reason,
            fix,
            _when(message.sent_at) if message else _when(row.released_at),
            _when(message.final_at) if message else _when(row.final_at),
        ]
