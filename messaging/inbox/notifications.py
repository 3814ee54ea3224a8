"""Telling people about new messages.

A received message notifies whoever looks after its conversation: the assignee, or, while
nobody is assigned, every member who may reply (senders, admins, the owner). In the app, each
of them gets one unread notice per conversation (a second message updates it rather than
adding another). By email, per the member's setting (`Membership.inbox_emails`), at most one
email per conversation per `EMAIL_GAP`, so a lively exchange is not a flood of mail.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from messaging.core.addresses import absolute_url
from messaging.core.phones import format_number
from messaging.inbox import schedule
from messaging.models import (
    Conversation,
    ConversationMessage,
    InboxEmails,
    Membership,
    Notification,
    Role,
)

log = logging.getLogger(__name__)

EMAIL_GAP = timedelta(minutes=15)
_REPLIERS = [Role.SENDER, Role.ADMIN, Role.OWNER]


def audience(conversation: Conversation) -> list[Membership]:
    """Who is told about a new message in `conversation`."""
    members = Membership.objects.filter(team_id=conversation.team_id).select_related("user")
    if conversation.assignee_id is not None:
        assigned = list(members.filter(user_id=conversation.assignee_id))
        if assigned:
            return assigned
    return list(members.filter(role__in=_REPLIERS, user__is_active=True))


def message_received(conversation: Conversation, entry: ConversationMessage) -> None:
    """In the transaction that stored `entry`: the in-app notices, then email after commit.
    `conversation` was read in that transaction, its assignee with it."""
    people = audience(conversation)
    if not people:
        return
    text = f"New message from {format_number(entry.from_number)}: {entry.text[:120]}".strip()
    if not entry.text and entry.file_count:
        text = f"New message with files from {format_number(entry.from_number)}"
    now = timezone.now()
    unread = Notification.objects.filter(conversation=conversation, read_at__isnull=True)
    already = set(
        unread.filter(user__in=[m.user_id for m in people]).values_list("user_id", flat=True)
    )
    unread.filter(user__in=already).update(text=text[:300], created_at=now)
    Notification.objects.bulk_create(
        Notification(
            user_id=m.user_id,
            team_id=conversation.team_id,
            conversation=conversation,
            text=text[:300],
            created_at=now,
        )
        for m in people
        if m.user_id not in already
    )
    schedule.after_commit(schedule.EMAIL, conversation.pk, entry.pk)


def email_people(conversation_id: int, entry_id: int) -> int:
    """Email the members who asked for it about message `entry_id`; returns how many."""
    conversation = (
        Conversation.objects.select_related("team", "connection").filter(pk=conversation_id).first()
    )
    entry = ConversationMessage.objects.filter(pk=entry_id).first()
    if conversation is None or entry is None:
        return 0
    sent = 0
    now = timezone.now()
    for membership in audience(conversation):
        if not _wants_email(membership, conversation) or not membership.user.email:
            continue
        # Claimed before sending, so two workers never both email the same person.
        claimed = (
            Notification.objects.filter(
                user_id=membership.user_id, conversation=conversation, read_at__isnull=True
            )
            .filter(Q(emailed_at__isnull=True) | Q(emailed_at__lt=now - EMAIL_GAP))
            .update(emailed_at=now)
        )
        if not claimed:
            continue
        if _send(membership, conversation, entry):
            sent += 1
    return sent


def _wants_email(membership: Membership, conversation: Conversation) -> bool:
    choice = membership.inbox_emails
    if choice == InboxEmails.NONE:
        return False
    if conversation.assignee_id == membership.user_id:
        return True
    return choice == InboxEmails.ALL and conversation.assignee_id is None


def _send(membership: Membership, conversation: Conversation, entry: ConversationMessage) -> bool:
    origin = conversation.connection.origin if conversation.connection else ""
    context = {
        "conversation": conversation,
        "entry": entry,
        "contact": ", ".join(format_number(n) for n in conversation.contact_numbers),
        "team_number": format_number(conversation.team_number),
        "url": absolute_url(reverse("inbox_thread", args=[conversation.pk]), origin),
        "settings_url": absolute_url(reverse("inbox_settings"), origin),
    }
    try:
        send_mail(
            f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}New message from {context['contact']}",
            render_to_string("email/inbox_new_message.txt", context),
            None,
            [membership.user.email],
        )
    except Exception:
        log.exception("Could not email %s about conversation %s", membership.pk, conversation.pk)
        return False
    return True
