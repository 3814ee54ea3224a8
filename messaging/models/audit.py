"""The audit log: who did what in a team, when and from where, one row per action.

Entries are appended by `messaging.audit.record` in the transaction of the change they record
and are never changed afterwards: `save` refuses an existing row and `delete` refuses always.
The actor is kept twice: a link to the user (gone if the user is deleted) and the text of who
it was (their email, "system", or an API key's prefix and name), so the log still reads after
people and keys are gone.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from .teams import Team

SYSTEM = "system"


class AuditAction(models.TextChoices):
    """The catalogue of recorded actions (also in the README, "Audit log")."""

    MESSAGE_QUEUED = "message.queued", "Message queued"
    MESSAGE_CANCELED = "message.canceled", "Message canceled"
    MESSAGE_RETRIED = "message.retried", "Message sent again"
    RINGCENTRAL_LINKED = "ringcentral.linked", "RingCentral linked"
    RINGCENTRAL_SHARED = "ringcentral.shared", "RingCentral link shared"
    RINGCENTRAL_UNSHARED = "ringcentral.unshared", "RingCentral link no longer shared"
    RINGCENTRAL_BROUGHT = "ringcentral.brought", "Shared RingCentral link brought in"
    RINGCENTRAL_UNLINKED = "ringcentral.unlinked", "RingCentral unlinked"
    MEMBER_INVITED = "member.invited", "Member invited"
    MEMBER_ROLE_CHANGED = "member.role_changed", "Member's role changed"
    MEMBER_REMOVED = "member.removed", "Member removed"
    API_KEY_CREATED = "api_key.created", "API key created"
    API_KEY_REVOKED = "api_key.revoked", "API key revoked"
    WEBHOOK_CREATED = "webhook.created", "Webhook endpoint created"
    WEBHOOK_CHANGED = "webhook.changed", "Webhook endpoint changed"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated", "Webhook secret rotated"
    WEBHOOK_REVOKED = "webhook.revoked", "Webhook endpoint deleted"
    CONTACTS_EXPORTED = "export.contacts", "Contacts exported"
    AUDIT_EXPORTED = "export.audit", "Audit log exported"
    CONSENT_OPTED_OUT = "consent.opted_out", "Number opted out"
    CONSENT_OPTED_IN = "consent.opted_in", "Number opted in"


class AuditEntryError(Exception):
    """An audit entry was about to be changed or deleted."""


class AuditEntry(models.Model):
    at = models.DateTimeField(default=timezone.now)
    # SET_NULL, not CASCADE: deleting a team or a user from the console leaves the log whole
    # (the snapshots below still say who and which team).
    team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_entries"
    )
    team_name = models.CharField(max_length=100, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(
        "who", max_length=254, help_text='The user\'s email, or "system".'
    )
    api_key_prefix = models.CharField("API key prefix", max_length=32, blank=True)
    api_key_name = models.CharField("API key name", max_length=100, blank=True)
    ip = models.GenericIPAddressField("client address", null=True, blank=True)
    action = models.CharField(max_length=40, choices=AuditAction.choices)
    target_type = models.CharField(max_length=40, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "audit entries"
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["team", "-at"], name="audit_team_recent"),
            models.Index(fields=["team", "action", "-at"], name="audit_team_action"),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditEntryError("Audit entries are append-only: an entry cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditEntryError("Audit entries are append-only: an entry cannot be deleted.")

    @property
    def who(self) -> str:
        if self.api_key_prefix:
            return f"{self.actor_label} (API key {self.api_key_prefix} {self.api_key_name})".strip()
        return self.actor_label
