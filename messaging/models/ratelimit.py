"""Shared state of the database rate limiter (messaging/sending/ratelimit.py)."""

from django.db import models


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
