"""Data model of mmsportal.

Teams own everything a user sees: RingCentral connections, sender numbers and the outbox. A user
reaches a team's objects only through a Membership, whose role decides what they may do (see
messaging/permissions.py, the one place that decides).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .crypto import encrypted_property


class Role(models.TextChoices):
    """Roles, from most to least powerful. Each role can do everything the ones below it can."""

    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    SENDER = "sender", "Sender"
    VIEWER = "viewer", "Viewer"

    @classmethod
    def rank(cls, role: str) -> int:
        return {cls.VIEWER: 0, cls.SENDER: 1, cls.ADMIN: 2, cls.OWNER: 3}[role]

    @classmethod
    def at_least(cls, role: str, minimum: str) -> bool:
        return cls.rank(role) >= cls.rank(minimum)


class Team(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    # Every user gets one personal team at sign-up; it cannot be left or handed over empty.
    is_personal = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def owner_membership(self):
        return self.memberships.filter(role=Role.OWNER).select_related("user").first()


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.SENDER)
    joined_at = models.DateTimeField(default=timezone.now)
    # Remembers the team a user last switched to, so the choice survives a new login.
    last_selected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_user"),
            models.UniqueConstraint(
                fields=["team"], condition=Q(role="owner"), name="one_owner_per_team"
            ),
        ]
        ordering = ["team__name"]

    def __str__(self):
        return f"{self.user} in {self.team} ({self.role})"

    def can(self, minimum_role: str) -> bool:
        return Role.at_least(self.role, minimum_role)


class Invitation(models.Model):
    """An emailed, signed, expiring, single-use invitation to join a team with a role.

    The link carries a signed token of `key`; it is valid while `accepted_at` and `revoked_at`
    are empty and `expires_at` is in the future. Accepting stamps `accepted_at` in the same
    transaction that creates the membership, so a link can never be used twice.
    """

    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.SENDER)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(role="owner"), name="invitation_never_grants_ownership"
            ),
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(accepted_by__isnull=False),
                name="accepted_invitation_has_user",
            ),
        ]

    def __str__(self):
        return f"Invitation of {self.email} to {self.team}"

    @property
    def is_pending(self) -> bool:
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and self.expires_at > timezone.now()
        )


class ConnectionStatus(models.TextChoices):
    """Health of a RingCentral link.

    linked ──refresh fails (network, 5xx, 429)──> refresh_failing ──next success──> linked
      │                                               │
      └──── invalid_grant on refresh ─────────────────┴──> broken ──link again──> linked
    any ──disconnect──> disconnected (tokens deleted, row kept for history) ──link again──> linked
    """

    LINKED = "linked", "Linked"
    REFRESH_FAILING = "refresh_failing", "Refreshing fails"
    BROKEN = "broken", "Broken"
    DISCONNECTED = "disconnected", "Disconnected"


class RingCentralConnection(models.Model):
    """One RingCentral user (extension) linked to a team by one of its members.

    The linking user owns it; with `shared_with_team` every sender of the team may send from its
    numbers. Tokens are stored encrypted (messaging/crypto.py) and only read through the
    `access_token` / `refresh_token` attributes. Token refresh happens in
    `messaging.ringcentral.oauth.fresh_access_token`, under a lock on this row. Linking the same
    extension again in the same team updates this row instead of adding one.
    """

    USABLE_STATUSES = (ConnectionStatus.LINKED, ConnectionStatus.REFRESH_FAILING)

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="rc_connections")
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="rc_connections",
    )
    shared_with_team = models.BooleanField(default=False)

    account_id = models.CharField(max_length=32)
    extension_id = models.CharField(max_length=32)
    extension_name = models.CharField(max_length=200, blank=True)
    extension_number = models.CharField(max_length=32, blank=True)
    company_name = models.CharField(max_length=200, blank=True)
    scopes = models.CharField(max_length=500, blank=True, help_text="Space-separated.")

    access_token_ciphertext = models.TextField(blank=True, editable=False)
    refresh_token_ciphertext = models.TextField(blank=True, editable=False)
    access_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_expires_at = models.DateTimeField(null=True, blank=True)

    status = models.CharField(
        max_length=20, choices=ConnectionStatus.choices, default=ConnectionStatus.LINKED
    )
    last_error = models.TextField(blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    numbers_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["team__name", "extension_name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "account_id", "extension_id"],
                name="one_connection_per_extension_per_team",
            ),
            # A usable link always has a refresh token; a disconnected one never keeps tokens.
            models.CheckConstraint(
                condition=~Q(status__in=["linked", "refresh_failing"])
                | ~Q(refresh_token_ciphertext=""),
                name="usable_connection_has_refresh_token",
            ),
            models.CheckConstraint(
                condition=~Q(status="disconnected")
                | (Q(access_token_ciphertext="") & Q(refresh_token_ciphertext="")),
                name="disconnected_connection_keeps_no_tokens",
            ),
        ]
        indexes = [models.Index(fields=["status", "refresh_expires_at"])]

    access_token = encrypted_property("access_token_ciphertext")
    refresh_token = encrypted_property("refresh_token_ciphertext")

    def __str__(self):
        name = self.extension_name or f"extension {self.extension_id}"
        number = f" (ext. {self.extension_number})" if self.extension_number else ""
        return f"{name}{number} in {self.team}"

    @property
    def is_usable(self) -> bool:
        return self.status in self.USABLE_STATUSES

    def usable_by(self, user) -> bool:
        """May `user` send from this connection (a further role check is the caller's job)?"""
        return self.is_usable and (self.shared_with_team or self.linked_by_id == user.pk)


class SenderNumber(models.Model):
    """A phone number of a linked RingCentral user, as last synced.

    `features` is RingCentral's list as received; the flags are derived from it once, at sync.
    A number that disappears or loses its SMS/MMS features is kept with `active=False`, so the
    history of messages sent from it stays intact.
    """

    connection = models.ForeignKey(
        RingCentralConnection, on_delete=models.CASCADE, related_name="numbers"
    )
    rc_id = models.CharField("RingCentral id", max_length=32, blank=True)
    phone_number = models.CharField(max_length=16, help_text="E.164, e.g. +16505550100.")
    label = models.CharField(max_length=200, blank=True)
    usage_type = models.CharField(max_length=40, blank=True)
    payment_type = models.CharField(max_length=40, blank=True)
    number_type = models.CharField(max_length=20, blank=True)
    features = models.JSONField(default=list, blank=True)
    can_sms = models.BooleanField(default=False)
    can_mms = models.BooleanField(default=False)
    is_toll_free = models.BooleanField(default=False)
    is_fax = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-active", "phone_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "phone_number"], name="one_sender_number_per_connection"
            ),
            models.CheckConstraint(
                condition=Q(phone_number__regex=r"^\+[1-9][0-9]{1,14}$"),
                name="sender_number_is_e164",
            ),
            # RingCentral sends no MMS from toll-free numbers, and nothing from fax-only ones.
            models.CheckConstraint(
                condition=Q(is_toll_free=False) | Q(can_mms=False),
                name="toll_free_number_cannot_send_mms",
            ),
            models.CheckConstraint(
                condition=Q(is_fax=False) | (Q(can_sms=False) & Q(can_mms=False)),
                name="fax_number_cannot_send",
            ),
            models.CheckConstraint(
                condition=Q(active=False) | Q(can_sms=True) | Q(can_mms=True),
                name="active_sender_number_can_send",
            ),
        ]

    def __str__(self):
        return f"{self.phone_number} ({self.label})" if self.label else self.phone_number


# Outbox ---------------------------------------------------------------------------------------


class MessageStatus(models.TextChoices):
    """The outbox state machine (messaging/outbox.py is the only code that moves a message):

    queued ──claim──> sending ──accepted──> sent ──(poll/webhook)──> delivered
      │  ^               │                         ├──> delivery_failed / sending_failed
      │  └─ retry_wait <─┤ retryable error          └──> no_receipt (no final report in time)
      │                  ├─ permanent error ──> failed (reason + fix shown)
      │                  └─ outcome unknown ──> unknown ──reconcile──> sent | queued
      └──user──> canceled (only before a worker claims it)
    """

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


class OutboundMessage(models.Model):
    """One message to RingCentral: one POST to /sms, to one recipient or a group of up to 10.

    Invariants held by the database: an accepted message has a RingCentral id and a sent time; a
    message being sent has the time its lease started; a message waiting to retry has the time of
    its next attempt; RingCentral ids are unique per connection.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="messages")
    connection = models.ForeignKey(
        "RingCentralConnection", on_delete=models.PROTECT, related_name="messages"
    )
    sender_number = models.ForeignKey(
        "SenderNumber", on_delete=models.PROTECT, related_name="messages"
    )
    # The number as sent, kept even if the sender number row changes later.
    from_number = models.CharField(max_length=20)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
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
    # Delivery tracking (messaging/tracking.py): when the message store is read next for a sent
    # message (null: at once), how often it was read, and when last.
    next_check_at = models.DateTimeField(null=True, blank=True)
    checks = models.PositiveIntegerField(default=0)
    last_checked_at = models.DateTimeField(null=True, blank=True)
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
        ]
        indexes = [
            # "Due to send": the dispatcher's query.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=CLAIMABLE_STATUSES),
                name="msg_due_to_send",
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


class Attachment(models.Model):
    """One file of a message, kept in the private default storage and served only through
    messaging/views/attachments.py.

    `file` names the stored bytes exactly as they are sent (`size`, `sha256`, `content_type`).
    One stored file may back several rows: a message sent separately to each recipient shares
    its files (messaging/compose.py), so a stored file may be deleted only when no Attachment or
    DraftAttachment names it any more. `original_name` is the sanitised name shown to people and
    used as the multipart filename; `original_size` and `original_content_type` describe the
    file as the user attached it, before conversion or fitting (null for older rows).
    """

    message = models.ForeignKey(
        OutboundMessage, on_delete=models.CASCADE, related_name="attachments"
    )
    file = models.FileField(upload_to=attachment_key, max_length=200)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    position = models.PositiveSmallIntegerField(default=0)
    original_size = models.PositiveIntegerField(null=True, blank=True)
    original_content_type = models.CharField(max_length=100, blank=True)
    # HEIC/AVIF/BMP/TIFF turned into JPEG or PNG, or a photo re-encoded as JPEG to fit.
    was_converted = models.BooleanField(default=False)
    # Scaled down and/or re-encoded so that all files fit RingCentral's size budget.
    was_resized = models.BooleanField(default=False)
    # Location, camera and other metadata removed from an image.
    metadata_removed = models.BooleanField(default=False)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    thumbnail = models.FileField(max_length=200, blank=True)

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


# Rate limiting


class RateLimitBucket(models.Model):
    """Shared state of one rate-limit key (``messaging.ratelimit.LimitKey.name``).

    Workers lock this row to check and grant atomically (see ``DatabaseRateLimiter``). Times are
    Unix seconds on the limiter's clock.
    """

    key = models.CharField(max_length=255, unique=True)
    paused_until = models.FloatField(default=0.0)
    # What RingCentral last reported in X-Rate-Limit-* headers for this key.
    observed_limit = models.PositiveIntegerField(null=True, blank=True)
    observed_window = models.FloatField(null=True, blank=True)
    observed_at = models.FloatField(null=True, blank=True)

    def __str__(self):
        return self.key


class RateLimitGrant(models.Model):
    """One request granted on a key; rows older than the key's window are pruned."""

    bucket = models.ForeignKey(RateLimitBucket, on_delete=models.CASCADE, related_name="grants")
    granted_at = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["bucket", "granted_at"], name="ratelimit_grant_window")]

    def __str__(self):
        return f"{self.bucket.key} at {self.granted_at}"


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


# Compose drafts ----------------------------------------------------------------------------------


class DraftAttachment(models.Model):
    """A file attached on the compose page before its message exists.

    Created by the upload endpoint (or kept from a compose form that did not validate), already
    checked and normalised by messaging/media.py. It belongs to one user in one team and is
    addressed by its random `key`, never by its id. Creating the message consumes it: the row is
    deleted and its stored file passes to the new Attachment rows. An unused draft expires at
    `expires_at`; messaging/compose.py `purge_expired_drafts` deletes it and its files.
    """

    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="draft_attachments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="draft_attachments"
    )
    file = models.FileField(max_length=200)
    thumbnail = models.FileField(max_length=200, blank=True)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    original_size = models.PositiveIntegerField()
    original_content_type = models.CharField(max_length=100, blank=True)
    was_converted = models.BooleanField(default=False)
    metadata_removed = models.BooleanField(default=False)
    # A still raster image that may be scaled down to fit (not animated, not SVG).
    fittable = models.BooleanField(default=False)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    # What normalising did, in words for the compose page ("converted from HEIC to JPEG", …).
    notes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(size__gt=0), name="draft_attachment_not_empty")
        ]
        indexes = [
            models.Index(fields=["user", "team", "expires_at"], name="draft_owner_live"),
            models.Index(fields=["expires_at"], name="draft_expiry"),
        ]

    def __str__(self):
        return f"Draft {self.original_name} of {self.user} in {self.team}"


# Delivery tracking -----------------------------------------------------------------------------


class TrackingPace(models.Model):
    """When delivery tracking last read a connection's message store.

    messaging/tracking.py paces reads that carry fewer than a full batch of messages by it
    (compare-and-set on `last_read_at`), so a busy connection's reports are gathered into few
    requests.
    """

    connection = models.OneToOneField(
        RingCentralConnection, on_delete=models.CASCADE, related_name="tracking_pace"
    )
    last_read_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"Tracking pace of connection {self.connection_id}"


# Delivery reports by webhook -------------------------------------------------------------------


class WebhookStatus(models.TextChoices):
    """Our view of a connection's RingCentral subscription (messaging/tracking.py moves it).

    pending ──created (handshake answered)──> active ──renewed──> active
       │                                        │ RingCentral says Blacklisted, or it is gone
       └──creation refused──> failed            └──> blacklisted / gone ──re-created──> active
    failed, blacklisted and gone are re-created by the renewal task (failed after a backoff).
    """

    PENDING = "pending", "Being created"
    ACTIVE = "active", "Active"
    FAILED = "failed", "Creation failed"
    BLACKLISTED = "blacklisted", "Blacklisted by RingCentral"
    GONE = "gone", "Expired or deleted"


class WebhookSubscription(models.Model):
    """The RingCentral subscription that pushes a connection's outbound message changes to
    `/ringcentral/webhook/`. At most one per connection.

    `verification_token` is random per subscription (re-created subscriptions get a new one) and
    stored encrypted like the OAuth tokens; RingCentral sends it back on every delivery and the
    endpoint compares it in constant time. Its prefix `<row id>.` names the row, so a delivery
    finds its subscription without trusting the body. `expires_at` is on our clock (creation time
    plus RingCentral's `expiresIn`).
    """

    connection = models.OneToOneField(
        RingCentralConnection, on_delete=models.CASCADE, related_name="webhook"
    )
    rc_subscription_id = models.CharField("RingCentral id", max_length=64, blank=True)
    address = models.CharField(max_length=500, blank=True)
    status = models.CharField(
        max_length=20, choices=WebhookStatus.choices, default=WebhookStatus.PENDING
    )
    verification_token_ciphertext = models.TextField(blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    renewed_at = models.DateTimeField(null=True, blank=True)
    # Last time RingCentral's own view of the subscription was read (renew or GET).
    checked_at = models.DateTimeField(null=True, blank=True)
    # Last verified delivery; a recent one proves the subscription works without asking.
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    # Set by the endpoint when it asks for a read of the connection's messages; cleared by the
    # task that reads. Deliveries arriving meanwhile enqueue nothing more.
    refresh_requested_at = models.DateTimeField(null=True, blank=True)
    # After a failed creation: do not try again before this.
    retry_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="active")
                | (~Q(rc_subscription_id="") & Q(expires_at__isnull=False)),
                name="active_webhook_has_id_and_expiry",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="webhook_renewal")]

    verification_token = encrypted_property("verification_token_ciphertext")

    def __str__(self):
        return f"Webhook of connection {self.connection_id} ({self.status})"

    def is_healthy(self, now=None) -> bool:
        """Active and not about to lapse: polling may slow down for its connection."""
        now = now or timezone.now()
        return self.status == WebhookStatus.ACTIVE and (
            self.expires_at is not None and self.expires_at > now
        )
