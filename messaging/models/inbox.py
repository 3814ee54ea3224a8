"""The team inbox: conversations, the messages in them (both directions), received files,
notes, read state, message sync and in-app notifications.

A conversation is one team number talking with one contact, or with the same group of
contacts (a group MMS). Every message of it has one `ConversationMessage` row, whichever way it
went and however it arrived (instant webhook, message sync, history import, or sent from the
portal, when the row points to its `OutboundMessage`). RingCentral's message id is unique per
connection, so a message brought by the webhook and again by sync is stored once.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .files import StoredFile
from .links import RingCentralConnection
from .outbox import OutboundMessage
from .teams import Team


class ConversationState(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class Conversation(models.Model):
    """One team number and its contact(s).

    `contact_key` names the other side: the contact's E.164 number, or for a group the
    participants' numbers (ours left out), sorted and joined by commas. `inbound_count` counts
    the messages received, so that a person's unread count is `inbound_count` minus what their
    `ConversationRead` has seen, with no count over the messages.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="conversations")
    connection = models.ForeignKey(
        RingCentralConnection,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        help_text="The link the latest message came through; replies go out through it.",
    )
    team_number = models.CharField(max_length=20, help_text="Our number, E.164.")
    contact_key = models.CharField(max_length=250)
    is_group = models.BooleanField(default=False)
    rc_conversation_id = models.CharField("RingCentral conversation id", max_length=32, blank=True)
    state = models.CharField(
        max_length=10, choices=ConversationState.choices, default=ConversationState.OPEN
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_conversations",
    )
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_preview = models.CharField(max_length=200, blank=True)
    last_direction = models.CharField(max_length=10, blank=True)
    inbound_count = models.PositiveIntegerField(default=0)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Moves on every change a list or thread page shows, so live pages ask "what changed since".
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_message_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "team_number", "contact_key"], name="one_conversation_per_contact"
            ),
            models.CheckConstraint(
                condition=Q(state__in=ConversationState.values), name="conversation_state_is_known"
            ),
        ]
        indexes = [
            models.Index(fields=["team", "-last_message_at", "-id"], name="conv_team_recent"),
            models.Index(
                fields=["team", "state", "-last_message_at", "-id"], name="conv_team_state"
            ),
            models.Index(fields=["team", "assignee"], name="conv_team_assignee"),
            models.Index(fields=["team", "-updated_at"], name="conv_team_changed"),
        ]

    def __str__(self):
        return f"Conversation {self.pk}: {self.team_number} with {self.contact_key}"

    @property
    def contact_numbers(self) -> list[str]:
        return self.contact_key.split(",") if self.contact_key else []


class Direction(models.TextChoices):
    INBOUND = "inbound", "Received"
    OUTBOUND = "outbound", "Sent"


class MessageSource(models.TextChoices):
    """How a message reached the inbox (for the admin console and for debugging)."""

    WEBHOOK = "webhook", "Instant webhook"
    SYNC = "sync", "Message sync"
    HISTORY = "history", "History import"
    PORTAL = "portal", "Sent from the portal"


class ConversationMessage(models.Model):
    """One message of a conversation.

    A message the portal sent points to its `outbound` row, whose status, reason and files
    the thread shows; its `rc_message_id` is filled in when sync meets it. Any other message
    (received, or sent from the RingCentral app or a desk phone) holds what RingCentral
    recorded: `rc_status` is its `messageStatus`, `at` its `creationTime`.
    """

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    connection = models.ForeignKey(
        RingCentralConnection, on_delete=models.PROTECT, related_name="inbox_messages"
    )
    rc_message_id = models.CharField("RingCentral id", max_length=32, null=True, blank=True)
    outbound = models.OneToOneField(
        OutboundMessage,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="conversation_message",
    )
    direction = models.CharField(max_length=10, choices=Direction.choices)
    source = models.CharField(max_length=10, choices=MessageSource.choices)
    from_number = models.CharField(max_length=20)
    to_numbers = models.JSONField(default=list)
    text = models.TextField(blank=True)
    rc_status = models.CharField(max_length=20, blank=True)
    rc_error_code = models.CharField(max_length=40, blank=True)
    file_count = models.PositiveSmallIntegerField(default=0)
    at = models.DateTimeField(help_text="When RingCentral created the message.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "rc_message_id"],
                condition=Q(rc_message_id__isnull=False),
                name="inbox_message_unique_per_connection",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "at", "id"], name="inbox_msg_thread"),
            models.Index(fields=["direction", "-at"], name="inbox_msg_direction"),
        ]

    def __str__(self):
        return f"{self.get_direction_display()} message {self.pk}"


class FileState(models.TextChoices):
    PENDING = "pending", "Downloading"
    STORED = "stored", "Stored"
    REFUSED = "refused", "Not kept"
    FAILED = "failed", "Download failed"


def inbox_file_key(instance, filename):
    return f"inbox/{instance.message.conversation.team_id}/{uuid.uuid4().hex}"


class InboxFile(StoredFile):
    """A file of a message RingCentral stored (an MMS received, or sent from elsewhere).

    Created `pending` with what the record says; messaging/inbox/downloads.py fetches the bytes
    into the private storage (`stored`), or gives up with a reason (`refused`: a type the
    portal does not keep; `failed`: after its tries). The message's text never waits for it.
    """

    message = models.ForeignKey(ConversationMessage, on_delete=models.CASCADE, related_name="files")
    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    rc_attachment_id = models.CharField(max_length=32)
    # Where RingCentral serves the bytes (its media host), from the message record.
    rc_uri = models.CharField(max_length=500, blank=True)
    file = models.FileField(upload_to=inbox_file_key, max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(max_length=10, choices=FileState.choices, default=FileState.PENDING)
    tries = models.PositiveSmallIntegerField(default=0)
    next_try_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "rc_attachment_id"], name="one_row_per_received_file"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_try_at"],
                condition=Q(state="pending"),
                name="inbox_file_due",
            )
        ]

    def __str__(self):
        return self.original_name or f"file {self.rc_attachment_id}"


class ConversationNote(models.Model):
    """An internal note: seen by the team in the thread, never sent."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["conversation", "created_at"], name="inbox_note_thread")]

    def __str__(self):
        return f"Note {self.pk}"


class ConversationRead(models.Model):
    """How many of a conversation's received messages one person has seen."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    seen_count = models.PositiveIntegerField(default=0)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="one_read_per_person")
        ]
        indexes = [models.Index(fields=["user", "-seen_at"], name="inbox_read_latest")]

    def __str__(self):
        return f"{self.user} read {self.seen_count} of conversation {self.conversation_id}"


class InboxSync(models.Model):
    """Message sync of one connection (messaging/inbox/sync.py).

    `sync_token` is RingCentral's cursor for the next incremental sync (not a credential: it
    reads nothing without the access token). `leased_until` keeps two syncs of one connection
    from running at once; `next_sync_at` is when the scheduled sync is due.
    """

    connection = models.OneToOneField(
        RingCentralConnection, on_delete=models.CASCADE, related_name="inbox_sync"
    )
    sync_token = models.TextField(blank=True)
    history_imported_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    next_sync_at = models.DateTimeField(default=timezone.now)
    leased_until = models.DateTimeField(null=True, blank=True)
    # Set when a webhook asks for a sync; cleared when one starts.
    requested_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["next_sync_at"], name="inbox_sync_due")]

    def __str__(self):
        return f"Inbox sync of connection {self.connection_id}"


class Notification(models.Model):
    """An in-app notice for one person (a new message in a conversation they look after)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="inbox_notifications"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="notifications"
    )
    text = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["user", "team", "-created_at"],
                condition=Q(read_at__isnull=True),
                name="notification_unread",
            )
        ]

    def __str__(self):
        return f"Notification {self.pk} for {self.user}"
