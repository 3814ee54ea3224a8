"""Delivery tracking: the polling pace per connection and webhook subscriptions."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from messaging.core.crypto import encrypted_property

from .links import RingCentralConnection


class TrackingPace(models.Model):
    """When delivery tracking last read a connection's message store.

    messaging/tracking/polling.py paces reads that carry fewer than a full batch of messages by it
    (compare-and-set on `last_read_at`), so a busy connection's reports are gathered into few
    requests.
    """

    connection = models.OneToOneField(
        RingCentralConnection, on_delete=models.CASCADE, related_name="tracking_pace"
    )
    last_read_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"Tracking pace of connection {self.connection_id}"


class WebhookStatus(models.TextChoices):
    """Our view of a connection's RingCentral subscription (messaging/tracking/subscriptions.py
    moves it).

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
    # The event filters it was created with; a subscription without the ones the portal asks
    # for now (an older one) is re-created.
    event_filters = models.JSONField(default=list, blank=True)
    # When RingCentral refused the consent list's events for this subscription (it was made for
    # messages only); they are asked for again a day later.
    consents_refused_at = models.DateTimeField(null=True, blank=True)
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
