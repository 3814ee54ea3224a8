"""Teams, their members and invitations.

Teams own everything a user sees: RingCentral connections, sender numbers and the outbox. A user
reaches a team's objects only through a Membership, whose role decides what they may do (see
messaging/teams/permissions.py, the one place that decides).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


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


class InboxEmails(models.TextChoices):
    """Which new inbox messages a member is emailed about (they are always told in the app)."""

    ASSIGNED = "assigned", "Conversations assigned to me"
    ALL = "all", "Conversations assigned to me, and unassigned ones"
    NONE = "none", "None"


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.SENDER)
    joined_at = models.DateTimeField(default=timezone.now)
    # Remembers the team a user last switched to, so the choice survives a new login.
    last_selected_at = models.DateTimeField(null=True, blank=True)
    inbox_emails = models.CharField(
        max_length=10, choices=InboxEmails.choices, default=InboxEmails.ASSIGNED
    )

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
