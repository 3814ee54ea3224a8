"""The outbox: messages, their recipients, files, send attempts and timeline."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .files import StoredFile
from .links import RingCentralConnection, SenderNumber
from .teams import Team


class MessageStatus(models.TextChoices):
    """The outbox state machine (messaging/outbox/states.py is the only code that moves):

    queued ──claim──> sending ──accepted──> sent ──(poll/webhook)──> delivered
      │  ^               │                         ├──> delivery_failed / sending_failed
      │  └─ retry_wait <─┤ retryable error          └──> no_receipt (no final report in time)
      │                  ├─ permanent error ──> failed (reason + fix shown)
      │                  └─ outcome unknown ──> unknown ──reconcile──> sent | queued
      └──user──> canceled (only before a worker claims it)

    scheduled ──its time (release_scheduled)──> queued      (quiet hours: its release moves on)
      │    └──time passed > SCHEDULE_MAX_LATENESS ago──> held ──"Send now"──> queued
      └──user (edit: stays scheduled; cancel)──> canceled <──user── held
    """

    SCHEDULED = "scheduled", "Scheduled"
    HELD = "held", "Held (too late)"

    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    RETRY_WAIT = "retry_wait", "Waiting to retry"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    DELIVERY_FAILED = "delivery_failed", "Not delivered"
    SENDING_FAILED = "sending_failed", "Sending failed"
    NO_RECEIPT = "no_receipt", "No receipt"
    FAILED = "failed", "Failed"
    UNKNOWN = "unknown", "Checking"
    CANCELED = "canceled", "Canceled"


# Statuses in which RingCentral has accepted the message (so it has an id and a sent time).
ACCEPTED_STATUSES = [
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.DELIVERY_FAILED,
    MessageStatus.SENDING_FAILED,
    MessageStatus.NO_RECEIPT,
]
# Statuses a worker may claim.
CLAIMABLE_STATUSES = [MessageStatus.QUEUED, MessageStatus.RETRY_WAIT]
FINAL_STATUSES = [
    MessageStatus.DELIVERED,
    MessageStatus.DELIVERY_FAILED,
    MessageStatus.SENDING_FAILED,
    MessageStatus.NO_RECEIPT,
    MessageStatus.FAILED,
    MessageStatus.CANCELED,
]


class RecipientStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued at RingCentral"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    DELIVERY_FAILED = "delivery_failed", "Not delivered"
    SENDING_FAILED = "sending_failed", "Sending failed"
    NO_RECEIPT = "no_receipt", "No receipt"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    # Never posted: the recipient opted out of texts from the message's number after it was
    # queued (messaging/outbox/states.py, `refuse_opted_out`).
    OPTED_OUT = "opted_out", "Not sent: opted out"


class OutboundMessage(models.Model):
    """One message to RingCentral: one POST to /sms, to one recipient or a group of up to 10.

    Invariants held by the database: an accepted message has a RingCentral id and a sent time; a
    message being sent has the time its lease started; a message waiting to retry has the time of
    its next attempt; RingCentral ids are unique per connection.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="messages")
    connection = models.ForeignKey(
        RingCentralConnection, on_delete=models.PROTECT, related_name="messages"
    )
    sender_number = models.ForeignKey(
        SenderNumber, on_delete=models.PROTECT, related_name="messages"
    )
    # The number as sent, kept even if the sender number row changes later.
    from_number = models.CharField(max_length=20)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # The address the portal was reached at by the request that wrote the message (scheme and
    # host), for links in emails sent later by a worker when PUBLIC_BASE_URL is not set.
    origin = models.CharField(max_length=200, blank=True)
    text = models.TextField(blank=True)
    is_group = models.BooleanField(default=False)
    status = models.CharField(
        max_length=20, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sending_since = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    final_at = models.DateTimeField(null=True, blank=True)
    rc_message_id = models.CharField(max_length=32, null=True, blank=True)
    rc_conversation_id = models.CharField(max_length=32, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_reason = models.TextField(blank=True)
    error_fix = models.TextField(blank=True)
    # Delivery tracking (messaging/tracking/polling.py): when the message store is read next for
    # a sent message (null: at once), how often it was read, and when last.
    next_check_at = models.DateTimeField(null=True, blank=True)
    checks = models.PositiveIntegerField(default=0)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    # A scheduled send: the moment the person chose (UTC) and the time zone they chose it in,
    # for showing it back. While scheduled, `next_attempt_at` is when it is released (later
    # than `scheduled_for` when quiet hours make it wait).
    scheduled_for = models.DateTimeField(null=True, blank=True)
    scheduled_zone = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "rc_message_id"],
                condition=Q(rc_message_id__isnull=False),
                name="rc_message_id_unique_per_connection",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=ACCEPTED_STATUSES)
                | (Q(sent_at__isnull=False) & Q(rc_message_id__isnull=False)),
                name="accepted_message_has_id_and_sent_time",
            ),
            models.CheckConstraint(
                condition=~Q(status=MessageStatus.SENDING) | Q(sending_since__isnull=False),
                name="sending_message_has_lease",
            ),
            models.CheckConstraint(
                condition=~Q(status=MessageStatus.RETRY_WAIT) | Q(next_attempt_at__isnull=False),
                name="retry_wait_has_next_attempt",
            ),
            models.CheckConstraint(
                condition=Q(status__in=MessageStatus.values), name="message_status_is_known"
            ),
            models.CheckConstraint(
                condition=~Q(status=MessageStatus.SCHEDULED)
                | (Q(scheduled_for__isnull=False) & Q(next_attempt_at__isnull=False)),
                name="scheduled_message_has_times",
            ),
        ]
        indexes = [
            # "Due to send": the dispatcher's query.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=CLAIMABLE_STATUSES),
                name="msg_due_to_send",
            ),
            # "Due to release": scheduled messages whose time has come.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status=MessageStatus.SCHEDULED),
                name="msg_due_to_release",
            ),
            # Leases to sweep and unknown outcomes to reconcile.
            models.Index(
                fields=["sending_since"],
                condition=Q(status__in=[MessageStatus.SENDING, MessageStatus.UNKNOWN]),
                name="msg_in_flight",
            ),
            # Each outbox folder, newest first.
            models.Index(fields=["team", "status", "-created_at"], name="msg_team_folder"),
            models.Index(fields=["team", "-created_at"], name="msg_team_recent"),
            # "Due to check": sent messages whose delivery report the poller reads next.
            models.Index(
                fields=["next_check_at"],
                condition=Q(status=MessageStatus.SENT),
                name="msg_due_to_check",
            ),
            # A connection's messages still waiting for a report (webhook-triggered reads).
            models.Index(
                fields=["connection", "-sent_at"],
                condition=Q(status=MessageStatus.SENT),
                name="msg_tracked_per_connection",
            ),
        ]

    def __str__(self):
        return f"Message {self.pk} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class Recipient(models.Model):
    message = models.ForeignKey(
        OutboundMessage, on_delete=models.CASCADE, related_name="recipients"
    )
    phone_number = models.CharField(max_length=20)
    status = models.CharField(
        max_length=20, choices=RecipientStatus.choices, default=RecipientStatus.PENDING
    )
    error_code = models.CharField(max_length=40, blank=True)
    error_reason = models.TextField(blank=True)
    error_fix = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "phone_number"], name="one_row_per_recipient_number"
            )
        ]
        indexes = [models.Index(fields=["phone_number"], name="recipient_number")]

    def __str__(self):
        return f"{self.phone_number} ({self.status})"


def attachment_key(instance, filename):
    # Stored under a random key: the user's file name never becomes a path.
    return f"attachments/{instance.message.team_id}/{uuid.uuid4().hex}"


class Attachment(StoredFile):
    """One file of a message, kept in the private default storage and served only through
    messaging/outbox/views/attachments.py.

    `file` names the stored bytes exactly as they are sent (`size`, `sha256`, `content_type`).
    One stored file may back several rows: a message sent separately to each recipient shares
    its files (messaging/compose/submission.py), so a stored file may be deleted only when no
    Attachment or DraftAttachment names it any more. `original_size` and
    `original_content_type` describe the file as the user attached it, before conversion or
    fitting (`original_size` is null for older rows).
    """

    message = models.ForeignKey(
        OutboundMessage, on_delete=models.CASCADE, related_name="attachments"
    )
    file = models.FileField(upload_to=attachment_key, max_length=200)
    position = models.PositiveSmallIntegerField(default=0)
    original_size = models.PositiveIntegerField(null=True, blank=True)
    # Scaled down and/or re-encoded so that all files fit RingCentral's size budget.
    was_resized = models.BooleanField(default=False)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.CheckConstraint(condition=Q(size__gt=0), name="attachment_not_empty")]

    def __str__(self):
        return self.original_name


class AttemptOutcome(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    ACCEPTED = "accepted", "Accepted by RingCentral"
    RETRYABLE = "retryable", "Failed, will retry"
    RATE_LIMITED = "rate_limited", "Rate limited, will retry"
    PERMANENT = "permanent", "Failed permanently"
    UNKNOWN = "unknown", "Outcome unknown"


class SendAttempt(models.Model):
    """One try at POSTing a message. Holds no secrets: status, codes and rate-limit headers."""

    message = models.ForeignKey(
        OutboundMessage, on_delete=models.CASCADE, related_name="send_attempts"
    )
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    rc_error_code = models.CharField(max_length=40, blank=True)
    rate_limit = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(
        max_length=20, choices=AttemptOutcome.choices, default=AttemptOutcome.IN_PROGRESS
    )
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["message", "number"]
        constraints = [
            models.UniqueConstraint(fields=["message", "number"], name="one_row_per_attempt")
        ]

    def __str__(self):
        return f"Attempt {self.number} of message {self.message_id}: {self.outcome}"


# Message timeline


class MessageEvent(models.Model):
    """One line of a message's timeline, as shown on its page and in the admin.

    Written by `messaging.events.record_event`, usually inside the transaction that made it true,
    so the timeline never claims something that was rolled back. Attempts (SendAttempt) are not
    duplicated here: the message page merges both by time.
    """

    # The composite index below leads with `message`, so the foreign key needs no index of its own.
    message = models.ForeignKey(
        OutboundMessage, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    recipient = models.ForeignKey(
        Recipient, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=40)
    text = models.TextField()

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["message", "at"], name="msg_event_timeline")]

    def __str__(self):
        return f"{self.kind} of message {self.message_id} at {self.at:%Y-%m-%d %H:%M:%S}"
