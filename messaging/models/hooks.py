"""Outgoing webhooks: a team's endpoints, each event delivered to them, and every attempt.

An endpoint's signing secret is stored encrypted (messaging/core/crypto.py) and shown once.
A `WebhookDelivery` is one event for one endpoint (its `event_id` is the `webhook-id` header,
the same on every retry and redelivery so receivers can drop duplicates); each try of it is a
`WebhookAttempt`. messaging/hooks/ writes them; nothing else does.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from messaging.core.crypto import encrypted_property

from .teams import Team


class HookEvent(models.TextChoices):
    """The events an endpoint may pick (payloads in the README, "Outgoing webhooks")."""

    MESSAGE_SENT = "message.sent", "Message sent"
    MESSAGE_DELIVERED = "message.delivered", "Message delivered"
    MESSAGE_FAILED = "message.failed", "Message failed"
    MESSAGE_RECEIVED = "message.received", "Message received"
    CONVERSATION_ASSIGNED = "conversation.assigned", "Conversation assigned"
    CONTACT_OPTED_OUT = "contact.opted_out", "Contact opted out"
    CAMPAIGN_FINISHED = "campaign.finished", "Campaign finished"


# Sent by the "Send test event" button only; no endpoint subscribes to it.
TEST_EVENT = "webhook.test"


class WebhookEndpoint(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField("URL", max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="Event types, from HookEvent.")
    secret_ciphertext = models.TextField(editable=False)
    secret = encrypted_property("secret_ciphertext", "The whsec_… signing secret.")
    is_active = models.BooleanField("enabled", default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="First failed attempt since the last success."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self):
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.CharField(max_length=40, unique=True)
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts in the current round.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_response_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="hook_delivery_recent"),
            models.Index(fields=["status", "next_attempt_at"], name="hook_delivery_due"),
        ]

    def __str__(self):
        return f"{self.event_type} {self.event_id}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    at = models.DateTimeField(default=timezone.now)
    succeeded = models.BooleanField(default=False)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self):
        return f"{self.delivery} at {self.at:%Y-%m-%d %H:%M:%S}"
