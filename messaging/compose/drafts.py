"""Files attached on the compose page before their message exists (DraftAttachment), and the
private storage their bytes live in.

A draft belongs to one user in one team and is addressed by its random key. Creating the message
consumes it: the row is deleted and its stored file passes to the new Attachment rows. Sending
separately to each recipient makes one message per recipient that all point at the same stored
files (one key, several Attachment rows) instead of copies: the bytes are identical and
immutable. Hence the rule in ``release_files``: a stored file is deleted only once no Attachment
or DraftAttachment names it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from messaging.compose import media
from messaging.models import Attachment, DraftAttachment
from messaging.ringcentral import limits

# How long an uploaded file waits on the compose page before it is deleted.
DRAFT_LIFETIME = timedelta(hours=24)
# Files a user may have waiting at once in one team (a guard against filling the disk).
MAX_LIVE_DRAFTS = 3 * limits.MAX_ATTACHMENTS


def store_bytes(team_id: int, data: bytes, content_type: str, suffix: str = "") -> str:
    """Save bytes under a fresh random key in the private storage; returns the stored name."""
    content = ContentFile(data)
    content.content_type = content_type  # S3 stores it as the object's Content-Type
    return default_storage.save(f"attachments/{team_id}/{uuid.uuid4().hex}{suffix}", content)


def release_files(names: Iterable[str]) -> None:
    """Delete stored files that no Attachment or DraftAttachment names any more.

    Call it after the transaction that dropped the references has committed.
    """
    storage = default_storage
    for name in {n for n in names if n}:
        referenced = (
            Attachment.objects.filter(Q(file=name) | Q(thumbnail=name)).exists()
            or DraftAttachment.objects.filter(Q(file=name) | Q(thumbnail=name)).exists()
        )
        if not referenced:
            storage.delete(name)


def delete_stored(name: str) -> None:
    """Delete bytes stored moments ago that nothing names yet (a submission that failed)."""
    default_storage.delete(name)


def release_after_commit(names: Iterable[str]) -> None:
    names = list(names)
    transaction.on_commit(lambda: release_files(names), robust=True)


def live_drafts(user, team):
    return DraftAttachment.objects.filter(user=user, team=team, expires_at__gt=timezone.now())


def create_draft(user, team, file: media.MediaFile) -> DraftAttachment:
    """Store a checked file as a draft of ``user`` in ``team``."""
    stored = store_bytes(team.pk, file.data, file.content_type)
    thumb = ""
    try:
        if file.thumbnail:
            thumb = store_bytes(team.pk, file.thumbnail, "image/jpeg", "-thumb")
        now = timezone.now()
        return DraftAttachment.objects.create(
            team=team,
            user=user,
            file=stored,
            thumbnail=thumb,
            original_name=file.name,
            content_type=file.content_type,
            size=file.size,
            sha256=file.sha256,
            original_size=file.original_size,
            original_content_type=file.original_content_type,
            was_converted=file.was_converted,
            metadata_removed=file.metadata_removed,
            fittable=file.fittable,
            width=file.width,
            height=file.height,
            notes=file.notes,
            created_at=now,
            expires_at=now + DRAFT_LIFETIME,
        )
    except BaseException:
        default_storage.delete(stored)
        if thumb:
            default_storage.delete(thumb)
        raise


def delete_draft(draft: DraftAttachment) -> None:
    names = [draft.file.name, draft.thumbnail.name]
    with transaction.atomic():
        draft.delete()
        release_after_commit(names)


def purge_expired_drafts(limit: int = 200) -> int:
    """Delete up to ``limit`` expired drafts and their files; returns how many."""
    expired = list(
        DraftAttachment.objects.filter(expires_at__lte=timezone.now()).order_by("expires_at")[
            :limit
        ]
    )
    for draft in expired:
        delete_draft(draft)
    return len(expired)


def draft_media(draft: DraftAttachment) -> media.MediaFile:
    """A MediaFile for a stored draft; its bytes are read from storage only when needed."""

    def load() -> bytes:
        with default_storage.open(draft.file.name, "rb") as handle:
            return handle.read()

    return media.MediaFile(
        name=draft.original_name,
        content_type=draft.content_type,
        size=draft.size,
        sha256=draft.sha256,
        original_size=draft.original_size,
        original_content_type=draft.original_content_type,
        width=draft.width,
        height=draft.height,
        fittable=draft.fittable,
        was_converted=draft.was_converted,
        metadata_removed=draft.metadata_removed,
        notes=list(draft.notes or []),
        stored_name=draft.file.name,
        thumbnail_name=draft.thumbnail.name or "",
        loader=load,
    )


GONE = "An attached file is no longer available (it expired or was removed). Attach it again."


def load_drafts(user, team, keys: Iterable[str]) -> tuple[list[DraftAttachment], list[str]]:
    """The user's live drafts named by ``keys``, in that order, and a problem if any is gone."""
    wanted = []
    problems = []
    for key in keys:
        try:
            value = uuid.UUID(str(key))
        except (ValueError, TypeError, AttributeError):
            problems = [GONE]
            continue
        if value not in wanted:
            wanted.append(value)
    found = {d.key: d for d in live_drafts(user, team).filter(key__in=wanted)}
    if len(found) < len(wanted):
        problems = [GONE]
    return [found[k] for k in wanted if k in found], problems
