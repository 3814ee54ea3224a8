"""Plain builders for rows the tests need, written with the models' own API."""

import itertools
import random
from datetime import timedelta

from django.utils import timezone

from messaging.models import (
    ACCEPTED_STATUSES,
    FINAL_STATUSES,
    MessageStatus,
    OutboundMessage,
    Recipient,
    RingCentralConnection,
    SenderNumber,
)


def make_connection(team, user, *, shared=False, extension_id="101", account_id="9001", **extra):
    connection = RingCentralConnection(
        team=team,
        linked_by=user,
        shared_with_team=shared,
        account_id=account_id,
        extension_id=extension_id,
        extension_name=extra.pop("extension_name", f"{user.email} line"),
        access_expires_at=timezone.now() + timedelta(hours=1),
        refresh_expires_at=timezone.now() + timedelta(days=7),
        **extra,
    )
    connection.access_token = "access-token-for-tests"
    connection.refresh_token = "refresh-token-for-tests"
    connection.save()
    return connection


def make_number(connection, phone_number="+16505550100", *, mms=True, **extra):
    return SenderNumber.objects.create(
        connection=connection,
        phone_number=phone_number,
        features=["SmsSender", "MmsSender"] if mms else ["SmsSender"],
        can_sms=True,
        can_mms=mms,
        **extra,
    )


def make_message(number, user, *, to=("+16505550111",), text="Hello", **extra):
    message = OutboundMessage.objects.create(
        team=number.connection.team,
        connection=number.connection,
        sender_number=number,
        from_number=number.phone_number,
        created_by=user,
        text=text,
        is_group=len(to) > 1,
        **extra,
    )
    Recipient.objects.bulk_create(Recipient(message=message, phone_number=n) for n in to)
    return message


_rc_ids = itertools.count(10_000_000)


def message_in(number, user, status, **extra):
    """A message already in `status`, with the fields the schema requires of that status."""
    now = timezone.now()
    fields = {"status": status}
    if status in ACCEPTED_STATUSES:
        fields.update(sent_at=now, rc_message_id=str(next(_rc_ids)))
    if status == MessageStatus.SENDING:
        fields["sending_since"] = now
    if status == MessageStatus.RETRY_WAIT:
        fields["next_attempt_at"] = now + timedelta(minutes=5)
    if status in FINAL_STATUSES:
        fields["final_at"] = now
    if status == MessageStatus.SCHEDULED:
        fields.update(
            scheduled_for=now + timedelta(hours=1), next_attempt_at=now + timedelta(hours=1)
        )
    fields.update(extra)
    return make_message(number, user, **fields)


# A plausible mix for a busy office: most messages delivered, a few failing or stuck.
HISTORY_MIX = [
    (MessageStatus.DELIVERED, 78),
    (MessageStatus.SENT, 8),
    (MessageStatus.DELIVERY_FAILED, 3),
    (MessageStatus.FAILED, 3),
    (MessageStatus.NO_RECEIPT, 2),
    (MessageStatus.CANCELED, 2),
    (MessageStatus.QUEUED, 2),
    (MessageStatus.RETRY_WAIT, 1),
    (MessageStatus.UNKNOWN, 1),
]


def team_history(team, authors, count: int, *, batch: int = 5_000) -> None:
    """`count` messages with one recipient each in `team`, in HISTORY_MIX, 150 s apart.

    The same rows on every run. Tables are not analysed here: the caller does it where the
    planner's view matters.
    """
    number = make_number(make_connection(team, authors[0], shared=True))
    rng = random.Random(20240501)
    statuses = [s for s, weight in HISTORY_MIX for _ in range(weight)]
    now = timezone.now()
    authors = [user.pk for user in authors]
    for start in range(0, count, batch):
        rows = []
        for i in range(start, min(start + batch, count)):
            status = rng.choice(statuses)
            created = now - timedelta(seconds=(count - i) * 150 + rng.randint(0, 60))
            sent = created + timedelta(seconds=2)
            rows.append(
                OutboundMessage(
                    team=team,
                    connection=number.connection,
                    sender_number=number,
                    from_number=number.phone_number,
                    created_by_id=authors[i % len(authors)],
                    text=f"Reminder {i}: your appointment is confirmed.",
                    status=status,
                    created_at=created,
                    sent_at=sent if status in ACCEPTED_STATUSES else None,
                    rc_message_id=str(10**11 + i) if status in ACCEPTED_STATUSES else None,
                    final_at=sent + timedelta(seconds=30) if status in FINAL_STATUSES else None,
                    sending_since=created if status == MessageStatus.UNKNOWN else None,
                    next_attempt_at=now + timedelta(minutes=5)
                    if status == MessageStatus.RETRY_WAIT
                    else None,
                )
            )
        created_messages = OutboundMessage.objects.bulk_create(rows)
        Recipient.objects.bulk_create(
            Recipient(message_id=m.pk, phone_number=f"+1415{rng.randint(2000000, 9999999)}")
            for m in created_messages
        )


def status_of(message):
    return OutboundMessage.objects.values_list("status", flat=True).get(pk=message.pk)
