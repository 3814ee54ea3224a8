"""Files attached on the compose page before their message exists."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .files import StoredFile
from .teams import Team


class DraftAttachment(StoredFile):
    """A file attached on the compose page before its message exists.

    Created by the upload endpoint (or kept from a compose form that did not validate), already
    checked and normalised by messaging/compose/media/. It belongs to one user in one team and to
    one compose form (`form_key`, fresh for every compose page, so no file ever shows up on a
    page it was not attached on), and is addressed by its random `key`, never by its id.
    Creating the message consumes it: the row is deleted and its stored file passes to the new
    Attachment rows. An unused draft expires at
    `expires_at`; messaging/compose/drafts.py `purge_expired_drafts` deletes it and its files.
    """

    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # The compose page it was attached on; null only for drafts older than the field.
    form_key = models.UUIDField(null=True, blank=True)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="draft_attachments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="draft_attachments"
    )
    file = models.FileField(max_length=200)
    original_size = models.PositiveIntegerField()
    # A still raster image that may be scaled down to fit (not animated, not SVG).
    fittable = models.BooleanField(default=False)
    # What normalising did, in words for the compose page ("converted from HEIC to JPEG", …).
    notes = models.JSONField(default=list, blank=True)
    # Names a sent message's stored file ("send again") instead of holding new bytes, so it does
    # not count against the files a user may have waiting.
    from_message = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(size__gt=0), name="draft_attachment_not_empty")
        ]
        indexes = [
            models.Index(fields=["user", "team", "expires_at"], name="draft_owner_live"),
            models.Index(fields=["user", "team", "form_key"], name="draft_form"),
            models.Index(fields=["expires_at"], name="draft_expiry"),
        ]

    def __str__(self):
        return f"Draft {self.original_name} of {self.user} in {self.team}"
