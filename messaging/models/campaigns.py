"""Campaigns: one text sent to many people, each getting their own outbox message.

A campaign keeps its own copy of everything it sends (text, missing-field policy, files), so
later edits of a template or a contact never change what a started campaign says. Its
recipients are rows of their own, written in chunks when the campaign is created, each with
its merged text and the reason when it will not be sent; a recipient is linked to its
OutboundMessage once the feeder has released it (messaging/campaigns/running.py).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .files import StoredFile
from .links import SenderNumber
from .outbox import OutboundMessage
from .teams import Team


class CampaignStatus(models.TextChoices):
    """draft ──start──> running ⇄ paused; running ──> done | stopped (resumable) | canceled.

    A campaign started with a start time in the future is ``running`` and releases nothing
    before that time (the page says "Starts at …").
    """

    DRAFT = "draft", "Not started"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    STOPPED = "stopped", "Stopped"
    CANCELED = "canceled", "Canceled"
    DONE = "done", "Done"


# A campaign in these states may still send (the feeder looks at them).
ACTIVE_CAMPAIGN_STATUSES = [CampaignStatus.RUNNING]
ENDED_CAMPAIGN_STATUSES = [CampaignStatus.CANCELED, CampaignStatus.DONE]


class MissingFieldPolicy(models.TextChoices):
    FALLBACK = "fallback", "Use the fallback text"
    SKIP = "skip", "Skip that recipient"


class RecipientSource(models.TextChoices):
    TAG = "tag", "Contacts with a tag"
    SELECTION = "selection", "Chosen contacts"
    FILE = "file", "An uploaded list (CSV or Excel)"


class Campaign(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="campaigns")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    name = models.CharField(max_length=120)
    text = models.TextField(blank=True)
    missing_policy = models.CharField(
        max_length=10, choices=MissingFieldPolicy.choices, default=MissingFieldPolicy.SKIP
    )
    fallback_text = models.CharField(max_length=100, blank=True)
    senders = models.ManyToManyField(SenderNumber, related_name="campaigns")
    source = models.CharField(max_length=10, choices=RecipientSource.choices)
    # The tag's name or the uploaded file's name, as the pages show where the list came from.
    source_label = models.CharField(max_length=200, blank=True)
    # Merge fields the list offers (a file's columns as field names), in column order.
    fields = models.JSONField(default=list, blank=True)
    # Through High Volume SMS: one text-only batch request per 10,000 recipients from its one
    # sender (messaging/campaigns/batches.py), instead of one outbox message each.
    uses_high_volume = models.BooleanField(default=False)
    start_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    # Why the campaign stopped itself and what to do about it (status "stopped").
    stop_reason = models.TextField(blank=True)
    stop_fix = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    # When it was last started or resumed: what stops it again is looked for after this.
    resumed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["team", "-created_at"], name="campaign_team_recent"),
            models.Index(fields=["status"], condition=Q(status="running"), name="campaign_running"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=CampaignStatus.values), name="campaign_status_is_known"
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def is_editable(self) -> bool:
        return self.status == CampaignStatus.DRAFT


def campaign_file_key(instance, filename):
    return f"campaigns/{instance.campaign.team_id}/{filename}"


class CampaignFile(StoredFile):
    """One file every recipient gets, fitted once when the campaign was created; its stored
    bytes are shared with the attachments of the campaign's messages."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="files")
    file = models.FileField(upload_to=campaign_file_key, max_length=200)
    position = models.PositiveSmallIntegerField(default=0)
    original_size = models.PositiveIntegerField(null=True, blank=True)
    was_resized = models.BooleanField(default=False)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.original_name


class RecipientState(models.TextChoices):
    PENDING = "pending", "Waiting"
    RELEASED = "released", "Handed to the outbox"
    SKIPPED = "skipped", "Skipped"
    CANCELED = "canceled", "Canceled"


class SkipKind(models.TextChoices):
    INVALID = "invalid", "Invalid number"
    DUPLICATE = "duplicate", "Duplicate number"
    OPTED_OUT = "opted_out", "Opted out"
    LANDLINE = "landline", "Known landline"
    MISSING_FIELD = "missing_field", "Missing field"


class CampaignRecipient(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    # Order in the list (the file's row number, or the contact's place by name).
    position = models.PositiveIntegerField()
    # E.164 when valid; else what the list said, for the report.
    phone_number = models.CharField(max_length=40)
    name = models.CharField(max_length=200, blank=True)
    # The merge values of this recipient (a file's row, or the contact's fields).
    values = models.JSONField(default=dict, blank=True)
    text = models.TextField(blank=True)
    segments = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(
        max_length=10, choices=RecipientState.choices, default=RecipientState.PENDING
    )
    skip_kind = models.CharField(max_length=20, choices=SkipKind.choices, blank=True)
    skip_reason = models.TextField(blank=True)
    message = models.OneToOneField(
        OutboundMessage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="campaign_recipient",
    )
    released_at = models.DateTimeField(null=True, blank=True)
    # High Volume SMS only (no outbox message): the batch that carried this recipient, once a
    # request was made for it (a retried send skips it), and its outcome in the outbox's words
    # (an OutboundMessage status: queued in the batch, sent, delivered, failed, ...).
    batch_id = models.CharField(max_length=64, blank=True)
    batch_status = models.CharField(max_length=20, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_reason = models.TextField(blank=True)
    error_fix = models.TextField(blank=True)
    final_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [
            # The feeder's next recipients, and the counts of the progress page.
            models.Index(fields=["campaign", "state", "position"], name="camp_recipient_next"),
            models.Index(fields=["campaign", "phone_number"], name="camp_recipient_number"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(state="released") | Q(released_at__isnull=False),
                name="released_recipient_has_time",
            ),
        ]

    def __str__(self):
        return f"{self.phone_number} ({self.state})"
