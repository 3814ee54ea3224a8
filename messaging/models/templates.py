"""Message templates: a text with merge fields, and files, that compose and replies start from.

A template is either a team's (``owner`` null: every member reads it, team admins change it) or
one person's in a team (``owner`` set: only they see it). What a recipient without a value for
one of its fields gets is the template's ``missing_policy``: the ``fallback`` text in place of
the field, or no message at all (the recipient is skipped, and the sender is told why).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .files import StoredFile
from .teams import Team


class MissingPolicy(models.TextChoices):
    FALLBACK = "fallback", "Put the fallback text in place of the field"
    SKIP = "skip", "Skip that recipient (you are told who and why)"


class MessageTemplate(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="message_templates")
    # Null: a team template. Set: a personal template only its owner sees.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="message_templates",
    )
    name = models.CharField(max_length=100)
    text = models.TextField(blank=True)
    missing_policy = models.CharField(
        max_length=10, choices=MissingPolicy.choices, default=MissingPolicy.FALLBACK
    )
    fallback = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(missing_policy__in=MissingPolicy.values),
                name="template_missing_policy_is_known",
            ),
        ]
        indexes = [models.Index(fields=["team", "owner", "name"], name="template_team_owner")]

    def __str__(self):
        return self.name

    @property
    def is_personal(self) -> bool:
        return self.owner_id is not None


class TemplateAttachment(StoredFile):
    """A file of a template; picking the template makes it a draft of the compose page."""

    template = models.ForeignKey(
        MessageTemplate, on_delete=models.CASCADE, related_name="attachments"
    )
    position = models.PositiveSmallIntegerField(default=0)
    file = models.FileField(max_length=200)
    original_size = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.original_name
