"""Team API keys and the Idempotency-Keys the API remembers.

An ApiKey acts in its team with its role (never above its maker's), sending as its maker. Only a
SHA-256 digest of the key is stored (see messaging/api/keys.py for why that is enough), with the
first characters shown to people (`prefix`) so a key can be recognised on the keys page.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .teams import Role, Team


class ApiKey(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_keys")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    # What people see of the key ("mp_live_ab12cd34"): enough to recognise it, useless alone.
    prefix = models.CharField(max_length=20)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.SENDER)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=~Q(role="owner"), name="api_key_never_owner"),
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix}…) in {self.team}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotencyState(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"


class IdempotencyRecord(models.Model):
    """One Idempotency-Key of a team: inserted before the request's work starts (the unique
    constraint lets one request of several concurrent ones through), then the answer to replay."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # SHA-256 of the request (method, path, fields and files' digests): the same key with
    # another body is refused.
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(
        max_length=12, choices=IdempotencyState.choices, default=IdempotencyState.IN_PROGRESS
    )
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "key"], name="one_idempotency_key_per_team"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self):
        return f"{self.key} ({self.state})"
