"""Which conversation a message belongs to, and what a new message changes in it.

A conversation is one team number with one contact, or with one set of contacts (a group MMS):
`contact_key` is the other participants' numbers, ours left out, sorted and joined by commas.
The same people reached from another of the team's numbers are another conversation, as on a
phone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from messaging.models import (
    Conversation,
    ConversationMessage,
    ConversationState,
    Direction,
)

PREVIEW_CHARS = 140


def contact_key(numbers: Iterable[str], team_number: str) -> str:
    others = sorted({n for n in numbers if n and n != team_number})
    return ",".join(others)


def conversation_for(
    team, connection, team_number: str, participants: Iterable[str], *, rc_conversation_id=""
) -> Conversation:
    """The team's conversation of `team_number` with `participants` (ours may be among them),
    created if it is the first message; safe when two processes create it at once."""
    key = contact_key(participants, team_number)
    found = Conversation.objects.filter(team=team, team_number=team_number, contact_key=key).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return Conversation.objects.create(
                team=team,
                connection=connection,
                team_number=team_number,
                contact_key=key,
                is_group="," in key,
                rc_conversation_id=(rc_conversation_id or "")[:32],
            )
    except IntegrityError:
        return Conversation.objects.get(team=team, team_number=team_number, contact_key=key)


def preview_of(text: str, file_count: int) -> str:
    text = " ".join((text or "").split())
    if not text and file_count:
        return "📎 " + (f"{file_count} files" if file_count > 1 else "1 file")
    return text[:PREVIEW_CHARS]


def message_added(conversation: Conversation, entry: ConversationMessage) -> None:
    """A message was stored in `conversation`: it becomes the latest activity if it is the
    newest (messages may arrive out of order), a received one counts as unread for everybody
    and reopens a closed conversation. One UPDATE."""
    newest = Q(last_message_at__isnull=True) | Q(last_message_at__lte=entry.at)
    fields: dict = {
        "updated_at": timezone.now(),
        "last_message_at": Case(When(newest, then=Value(entry.at)), default=F("last_message_at")),
        "last_preview": Case(
            When(newest, then=Value(preview_of(entry.text, entry.file_count))),
            default=F("last_preview"),
        ),
        "last_direction": Case(
            When(newest, then=Value(entry.direction)), default=F("last_direction")
        ),
    }
    if entry.connection_id:
        fields["connection_id"] = entry.connection_id
    if entry.direction == Direction.INBOUND:
        fields["inbound_count"] = F("inbound_count") + 1
        fields["state"] = ConversationState.OPEN
        fields["closed_at"] = None
    Conversation.objects.filter(pk=conversation.pk).update(**fields)


def sent_from_portal(entries: list[ConversationMessage]) -> None:
    """New messages the portal sent: each becomes its conversation's latest. One submission's
    messages share their text and were written within the same moment, so this is one UPDATE
    for all of them, stamped with the latest of their times (microseconds apart)."""
    groups: dict[tuple, list[int]] = {}
    latest: dict[tuple, datetime] = {}
    for entry in entries:
        shown = (preview_of(entry.text, entry.file_count), entry.connection_id)
        groups.setdefault(shown, []).append(entry.conversation_id)
        latest[shown] = max(latest.get(shown, entry.at), entry.at)
    now = timezone.now()
    for (preview, connection_id), conversation_ids in groups.items():
        at = latest[(preview, connection_id)]
        Conversation.objects.filter(pk__in=conversation_ids).filter(
            Q(last_message_at__isnull=True) | Q(last_message_at__lte=at)
        ).update(
            last_message_at=at,
            last_preview=preview,
            last_direction=Direction.OUTBOUND,
            connection_id=connection_id,
            updated_at=now,
        )


def touched(conversation_id: int, at: datetime | None = None) -> None:
    """Something shown on the list or the thread changed (a status, a note, an assignment)."""
    Conversation.objects.filter(pk=conversation_id).update(updated_at=at or timezone.now())
