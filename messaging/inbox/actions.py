"""What members do with a conversation, and who may.

    viewer   reads (and has their own read state)
    sender   also replies, assigns (to anyone in the team, themselves included), closes and
             reopens, writes notes
    admin    also deletes any note (a sender deletes only their own)

Every function takes the actor's Membership of the conversation's team (the views make sure of
it) and raises PermissionDenied with a sentence when the role is too low.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models.functions import Greatest
from django.utils import timezone

from messaging.inbox import signals, threads
from messaging.models import (
    Conversation,
    ConversationNote,
    ConversationRead,
    ConversationState,
    Membership,
    Notification,
    Role,
)

MAX_NOTE_CHARS = 4000


def _require(membership: Membership, role: str, what: str) -> None:
    if not membership.can(role):
        raise PermissionDenied(
            f"{what} needs the {Role(role).label.lower()} role in {membership.team}."
        )


def mark_read(membership: Membership, conversation: Conversation) -> None:
    """The person has seen every message received so far (and their notices of it)."""
    now = timezone.now()
    count = (
        Conversation.objects.filter(pk=conversation.pk)
        .values_list("inbound_count", flat=True)
        .first()
        or 0
    )
    read, made = ConversationRead.objects.get_or_create(
        conversation=conversation,
        user=membership.user,
        defaults={"seen_count": count, "seen_at": now},
    )
    if not made and read.seen_count < count:
        # Greatest: a slower request that read an older count never moves it back.
        ConversationRead.objects.filter(pk=read.pk).update(
            seen_count=Greatest("seen_count", count), seen_at=now
        )
    Notification.objects.filter(
        user=membership.user, conversation=conversation, read_at__isnull=True
    ).update(read_at=now)


def mark_unread(membership: Membership, conversation: Conversation) -> None:
    """Back to unread for this person: the last received message counts as new again."""
    ConversationRead.objects.filter(conversation=conversation, user=membership.user).update(
        seen_count=max(conversation.inbound_count - 1, 0)
    )


def assign(membership: Membership, conversation: Conversation, assignee_id: int | None) -> None:
    """Assign to a member of the team (None: unassign)."""
    _require(membership, Role.SENDER, "Assigning a conversation")
    if (
        assignee_id is not None
        and not Membership.objects.filter(
            team_id=conversation.team_id, user_id=assignee_id
        ).exists()
    ):
        raise ValidationError("Choose a member of this team.")
    Conversation.objects.filter(pk=conversation.pk).update(
        assignee_id=assignee_id, updated_at=timezone.now()
    )
    conversation.assignee_id = assignee_id
    signals.conversation_assigned.send(
        sender=Conversation, conversation=conversation, by=membership.user
    )


def close(membership: Membership, conversation: Conversation) -> None:
    _require(membership, Role.SENDER, "Closing a conversation")
    now = timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(
        state=ConversationState.CLOSED, closed_at=now, updated_at=now
    )
    conversation.state = ConversationState.CLOSED


def reopen(membership: Membership, conversation: Conversation) -> None:
    _require(membership, Role.SENDER, "Reopening a conversation")
    Conversation.objects.filter(pk=conversation.pk).update(
        state=ConversationState.OPEN, closed_at=None, updated_at=timezone.now()
    )
    conversation.state = ConversationState.OPEN


def add_note(membership: Membership, conversation: Conversation, text: str) -> ConversationNote:
    _require(membership, Role.SENDER, "Writing a note")
    text = (text or "").strip()
    if not text:
        raise ValidationError("Write the note first.")
    if "\x00" in text:
        # PostgreSQL text cannot hold NUL; say so instead of failing on save.
        raise ValidationError("The note holds a NUL character; remove it and try again.")
    if len(text) > MAX_NOTE_CHARS:
        raise ValidationError(
            f"A note holds at most {MAX_NOTE_CHARS:,} characters; this one has {len(text):,}."
        )
    with transaction.atomic():
        note = ConversationNote.objects.create(
            conversation=conversation, author=membership.user, text=text
        )
        threads.touched(conversation.pk)
    return note


def delete_note(membership: Membership, note: ConversationNote) -> None:
    if note.author_id != membership.user_id:
        _require(membership, Role.ADMIN, "Deleting someone else's note")
    _require(membership, Role.SENDER, "Deleting a note")
    with transaction.atomic():
        note.delete()
        threads.touched(note.conversation_id)
