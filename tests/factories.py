"""Plain builders for rows the tests need, written with the models' own API."""

import itertools
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
    fields.update(extra)
    return make_message(number, user, **fields)


def status_of(message):
    return OutboundMessage.objects.values_list("status", flat=True).get(pk=message.pk)
