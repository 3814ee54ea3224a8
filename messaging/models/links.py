"""RingCentral links: a linked RingCentral user (extension) and its phone numbers."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from messaging.core.crypto import encrypted_property

from .teams import Team


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
    numbers. Tokens are stored encrypted (messaging/core/crypto.py) and only read through the
    `access_token` / `refresh_token` attributes. Token refresh happens in
    `messaging.links.tokens.fresh_access_token`, under a lock on this row. Linking the same
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
    # The address the portal was reached at when the link was made (scheme and host), for links
    # in emails about it when PUBLIC_BASE_URL is not set.
    origin = models.CharField(max_length=200, blank=True)

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
        verbose_name = "RingCentral connection"
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


class ConnectionShare(models.Model):
    """A RingCentral link used in another team of its linking user, without linking again.

    RingCentral gives one pair of tokens per sign-in and rotates it on every refresh, so two
    rows holding the same pair would break each other; the link stays one row (in the team it
    was made in) and this row lets `team` use it: its senders may send from the link's numbers,
    and the messages are `team`'s. Disconnecting the link ends it everywhere.
    """

    connection = models.ForeignKey(
        RingCentralConnection, on_delete=models.CASCADE, related_name="shares"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="connection_shares")
    shared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "team"], name="one_share_per_connection_and_team"
            )
        ]

    def __str__(self):
        return f"{self.connection} used in {self.team}"


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
