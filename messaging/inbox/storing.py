"""Storing messages in their conversations, each exactly once.

Three kinds of message reach a thread:

- received ones, and ones the user sent from the RingCentral app or a desk phone: RingCentral's
  record, brought by the instant webhook, by message sync or by the history import, is stored
  by `store_record`. The unique (connection, RingCentral id) constraint decides between a
  webhook and a sync that bring the same message at the same moment: one insert wins, the other
  finds the row.
- ones sent from the portal: `record_portal_messages` adds them in the transaction that created
  them (the outbox announces it, messaging/outbox/signals.py), pointing to their outbox row.
  When sync later meets RingCentral's record of such a message it recognises it by the
  RingCentral id the outbox stored, and never stores it a second time. A record that sync sees
  before the outbox has recorded RingCentral's answer (the two race by milliseconds) is left
  for a later sync rather than guessed at.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from messaging.consent import keywords
from messaging.core.phones import as_e164
from messaging.inbox import downloads, notifications, signals, threads
from messaging.models import (
    CLAIMABLE_STATUSES,
    Conversation,
    ConversationMessage,
    Direction,
    InboxFile,
    MessageSource,
    MessageStatus,
    OutboundMessage,
    Recipient,
    SenderNumber,
)
from messaging.ringcentral.records import MessageRecord

log = logging.getLogger(__name__)

# Outbox messages still on their way to RingCentral, for which a record without a matching id
# may be theirs (the answer not yet recorded).
_NOT_YET_ANSWERED = [*CLAIMABLE_STATUSES, MessageStatus.SENDING, MessageStatus.UNKNOWN]
# How far back such an unanswered outbox message may have been created.
_ANSWER_RACE_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Stored:
    entry: ConversationMessage | None
    created: bool
    # Why nothing was stored: "not a text message", "sent by the portal, answer not recorded
    # yet", "no numbers".
    skipped: str = ""


def store_record(connection, record: MessageRecord, *, source: str) -> Stored:
    """Store one RingCentral message record of `connection` (any direction) unless it is
    stored already; a known external message gets its newer status."""
    if record.type and record.type != "SMS":
        return Stored(None, False, "not a text message")
    existing = ConversationMessage.objects.filter(
        connection=connection, rc_message_id=record.id
    ).first()
    if existing is not None:
        _refresh_status(existing, record)
        return Stored(existing, False)
    inbound = record.direction == "Inbound"
    if not inbound:
        portal = OutboundMessage.objects.filter(
            connection=connection, rc_message_id=record.id
        ).first()
        if portal is not None:
            return _link_portal_message(connection, portal, record)
        if _answer_pending(connection, record):
            return Stored(None, False, "sent by the portal, answer not recorded yet")
    sender = as_e164(record.from_number)
    to_numbers = [n for n in (as_e164(r.phone_number) for r in record.recipients) if n]
    if not sender or not to_numbers:
        return Stored(None, False, "no numbers")
    team_number = _our_number(connection, to_numbers) if inbound else sender
    with transaction.atomic():
        conversation = threads.conversation_for(
            connection.team,
            connection,
            team_number,
            [sender, *to_numbers],
            rc_conversation_id=record.conversation_id,
        )
        try:
            with transaction.atomic():
                entry = ConversationMessage.objects.create(
                    conversation=conversation,
                    connection=connection,
                    rc_message_id=record.id,
                    direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
                    source=source,
                    from_number=sender,
                    to_numbers=to_numbers,
                    text=record.text,
                    rc_status=record.status[:20],
                    rc_error_code=record.error_code[:40],
                    file_count=len(record.files),
                    at=record.created_at or timezone.now(),
                )
        except IntegrityError:
            # The webhook and a sync stored it at the same moment; the other one won.
            entry = ConversationMessage.objects.get(connection=connection, rc_message_id=record.id)
            return Stored(entry, False)
        InboxFile.objects.bulk_create(
            InboxFile(
                message=entry,
                rc_attachment_id=file.id[:32],
                rc_uri=(file.uri or "")[:500],
                original_name=(file.filename or "")[:255],
                content_type=(file.content_type or "")[:100],
                size=file.size or 0,
                sha256="",
                position=position,
                next_try_at=timezone.now(),
            )
            for position, file in enumerate(record.files)
            if file.id
        )
        threads.message_added(conversation, entry)
        if inbound:
            keywords.message_received(
                connection.team,
                account_id=connection.account_id,
                team_number=team_number,
                contact_number=sender,
                text=record.text,
                at=entry.at,
            )
            notifications.message_received(conversation, entry)
            signals.message_received.send(
                sender=ConversationMessage, message=entry, conversation=conversation
            )
        if entry.file_count:
            downloads.download_soon(entry.pk)
    return Stored(entry, True)


def _our_number(connection, to_numbers: list[str]) -> str:
    """Which of a received message's recipients is the team's number."""
    ours = set(
        SenderNumber.objects.filter(connection=connection, phone_number__in=to_numbers).values_list(
            "phone_number", flat=True
        )
    )
    return next((n for n in to_numbers if n in ours), to_numbers[0])


def _refresh_status(entry: ConversationMessage, record: MessageRecord) -> None:
    """A message sent from elsewhere moves on (Queued, Sent, Delivered…) like ours do."""
    if entry.outbound_id is not None or entry.direction == Direction.INBOUND:
        return
    status, code = record.status[:20], record.error_code[:40]
    if (status, code) == (entry.rc_status, entry.rc_error_code) or not status:
        return
    ConversationMessage.objects.filter(pk=entry.pk).update(rc_status=status, rc_error_code=code)
    threads.touched(entry.conversation_id)


def _link_portal_message(connection, portal: OutboundMessage, record: MessageRecord) -> Stored:
    """RingCentral's record of a message the portal sent: its thread entry gets the id (and is
    made now for a message older than the inbox)."""
    entry = ConversationMessage.objects.filter(outbound=portal).first()
    if entry is None:
        try:
            with transaction.atomic():
                record_portal_messages([portal])
        except IntegrityError:
            pass  # another sync threaded it at the same moment
        entry = ConversationMessage.objects.filter(outbound=portal).first()
        if entry is None:
            return Stored(None, False, "no numbers")
    if entry.rc_message_id != record.id:
        try:
            with transaction.atomic():
                ConversationMessage.objects.filter(pk=entry.pk).update(rc_message_id=record.id)
        except IntegrityError:
            log.warning("Message %s of connection %s is stored twice", record.id, connection.pk)
    return Stored(entry, False)


def _answer_pending(connection, record: MessageRecord) -> bool:
    """Is there an outbox message of this connection, not yet answered by RingCentral, that
    this record may be (same sender, recipients and text)?"""
    since = timezone.now() - _ANSWER_RACE_WINDOW
    candidates = OutboundMessage.objects.filter(
        connection=connection,
        status__in=_NOT_YET_ANSWERED,
        from_number=as_e164(record.from_number),
        text=record.text,
        created_at__gte=since,
    ).values_list("pk", flat=True)[:20]
    numbers = sorted(as_e164(r.phone_number) for r in record.recipients)
    for message_id in candidates:
        mine = sorted(
            Recipient.objects.filter(message_id=message_id).values_list("phone_number", flat=True)
        )
        if mine == numbers:
            return True
    return False


# --- Messages sent from the portal -----------------------------------------------------------


def record_portal_messages(messages) -> None:
    """Thread entries for new outbox messages, in few queries whatever their number (a
    separate send to hundreds of recipients is hundreds of conversations)."""
    messages = [m for m in messages if m.pk]
    if not messages:
        return
    numbers = defaultdict(list)
    for message_id, number in Recipient.objects.filter(
        message_id__in=[m.pk for m in messages]
    ).values_list("message_id", "phone_number"):
        numbers[message_id].append(number)
    file_counts = _file_counts(messages)
    with transaction.atomic():
        keys = {
            m.pk: (m.team_id, m.from_number, threads.contact_key(numbers[m.pk], m.from_number))
            for m in messages
            if numbers[m.pk]
        }
        conversations = _conversations_for(messages, keys)
        entries = [
            ConversationMessage(
                conversation=conversations[keys[m.pk]],
                connection_id=m.connection_id,
                rc_message_id=m.rc_message_id,
                outbound=m,
                direction=Direction.OUTBOUND,
                source=MessageSource.PORTAL,
                from_number=m.from_number,
                to_numbers=numbers[m.pk],
                text=m.text,
                file_count=file_counts.get(m.pk, 0),
                at=m.created_at,
            )
            for m in messages
            if m.pk in keys
        ]
        ConversationMessage.objects.bulk_create(entries)
        threads.sent_from_portal(entries)


def _file_counts(messages) -> dict[int, int]:
    return dict(
        OutboundMessage.objects.filter(pk__in=[m.pk for m in messages])
        .annotate(files=Count("attachments"))
        .values_list("pk", "files")
    )


def _conversations_for(messages, keys) -> dict[tuple, Conversation]:
    """The conversations for every (team, team number, contact key), created where missing."""
    wanted = set(keys.values())
    by_message = {m.pk: m for m in messages}
    found = _existing(wanted)
    missing = wanted - set(found)
    if missing:
        connection_of = {keys[pk]: by_message[pk].connection_id for pk in keys}
        Conversation.objects.bulk_create(
            [
                Conversation(
                    team_id=team_id,
                    connection_id=connection_of[(team_id, number, key)],
                    team_number=number,
                    contact_key=key,
                    is_group="," in key,
                )
                for team_id, number, key in missing
            ],
            ignore_conflicts=True,
        )
        found.update(_existing(missing))
    return found


def _existing(wanted) -> dict[tuple, Conversation]:
    found = {}
    by_team = defaultdict(set)
    for team_id, number, key in wanted:
        by_team[(team_id, number)].add(key)
    query = Q()
    for (team_id, number), keys in by_team.items():
        query |= Q(team_id=team_id, team_number=number, contact_key__in=keys)
    for conversation in Conversation.objects.filter(query):
        found[(conversation.team_id, conversation.team_number, conversation.contact_key)] = (
            conversation
        )
    return found
