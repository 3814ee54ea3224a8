"""Files attached on the compose page before their message exists (DraftAttachment), and the
private storage their bytes live in.

A draft belongs to one user in one team and to one compose form: every compose page gets a fresh
`form_key`, and a page shows, keeps and sends only the drafts of its own key. So a file attached
on a page that was then left (or refused) never turns up on another one, and "send again" starts
with exactly the files of the message it copies. A draft is addressed by its random key.

Creating the message consumes a draft: the row is deleted and its stored file passes to the new
Attachment rows. Sending separately to each recipient makes one message per recipient that all
point at the same stored files (one key, several Attachment rows) instead of copies: the bytes
are identical and immutable. Hence the rule in ``release_files``: a stored file is deleted
only once no Attachment or DraftAttachment names it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from messaging.compose import media
from messaging.models import Attachment, DraftAttachment, TemplateAttachment
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
            or TemplateAttachment.objects.filter(Q(file=name) | Q(thumbnail=name)).exists()
        )
        if not referenced:
            storage.delete(name)


def delete_stored(name: str) -> None:
    """Delete bytes stored moments ago that nothing names yet (a submission that failed)."""
    default_storage.delete(name)


def release_after_commit(names: Iterable[str]) -> None:
    names = list(names)
    transaction.on_commit(lambda: release_files(names), robust=True)


def new_form_key() -> uuid.UUID:
    """The key of a compose page just opened."""
    return uuid.uuid4()


def parse_form_key(value) -> uuid.UUID | None:
    """A compose page's key as the browser sent it back, or None if it is not one."""
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def live_drafts(user, team):
    """Every draft ``user`` has waiting in ``team``, whichever page it is on."""
    return DraftAttachment.objects.filter(user=user, team=team, expires_at__gt=timezone.now())


def quota_problem(user, team, adding: int) -> str | None:
    """Why ``adding`` more bytes of uploads for ``user`` in ``team`` would pass a quota, or None.

    Sign-up is open and uploading needs no RingCentral link, so what may wait on the compose
    pages is capped per person (over all their teams) and per team, counting the uploads still
    waiting (a draft lives `DRAFT_LIFETIME`; drafts that name a sent message's file hold no bytes
    of their own)."""
    waiting = DraftAttachment.objects.filter(expires_at__gt=timezone.now(), from_message=False)
    totals = waiting.filter(Q(user=user) | Q(team=team)).aggregate(
        mine=Sum("size", filter=Q(user=user), default=0),
        team=Sum("size", filter=Q(team=team), default=0),
    )
    if totals["mine"] + adding > settings.COMPOSE_UPLOAD_QUOTA_PER_USER:
        held, limit = totals["mine"], settings.COMPOSE_UPLOAD_QUOTA_PER_USER
        whose = "your files waiting to be sent (in all your teams)"
    elif totals["team"] + adding > settings.COMPOSE_UPLOAD_QUOTA_PER_TEAM:
        held, limit = totals["team"], settings.COMPOSE_UPLOAD_QUOTA_PER_TEAM
        whose = f"the files waiting to be sent in {team}"
    else:
        return None
    return (
        f"This file does not fit: {whose} take {limits.format_size(held)} of the "
        f"{limits.format_size(limit)} this portal keeps. Send or remove some first; files "
        f"nobody sends are deleted after {DRAFT_LIFETIME.days or 1} day."
    )


def form_drafts(user, team, form_key):
    """The drafts of one compose page, in the order they were attached."""
    return live_drafts(user, team).filter(form_key=form_key)


def waiting_uploads(user, team) -> int:
    """How many uploaded files ``user`` has waiting in ``team`` (drafts that only name a sent
    message's file hold no new bytes and do not count against MAX_LIVE_DRAFTS)."""
    return live_drafts(user, team).filter(from_message=False).count()


def stored_file_fields(file: media.MediaFile) -> dict[str, Any]:
    """What a DraftAttachment and an Attachment both record of a checked file, save where its
    bytes and its thumbnail are stored."""
    return {
        "original_name": file.name,
        "content_type": file.content_type,
        "size": file.size,
        "sha256": file.sha256,
        "original_size": file.original_size,
        "original_content_type": file.original_content_type,
        "was_converted": file.was_converted,
        "metadata_removed": file.metadata_removed,
        "width": file.width,
        "height": file.height,
    }


def create_draft(user, team, form_key, file: media.MediaFile) -> DraftAttachment:
    """Store a checked file as a draft of ``user`` in ``team``, on compose page ``form_key``."""
    stored = store_bytes(team.pk, file.data, file.content_type)
    thumb = ""
    try:
        if file.thumbnail:
            thumb = store_bytes(team.pk, file.thumbnail, "image/jpeg", "-thumb")
        return _new_draft(user, team, form_key, file, stored, thumb, timezone.now())
    except BaseException:
        default_storage.delete(stored)
        if thumb:
            default_storage.delete(thumb)
        raise


def draft_of_attachment(
    user, team, form_key, attachment: Attachment | TemplateAttachment, now
) -> DraftAttachment:
    """A fresh draft of ``user`` in ``team`` that names ``attachment``'s stored file instead of
    copying it: stored bytes never change, and `release_files` deletes a file only once nothing
    names it any more."""
    # Already fitted once; shrinking it again would only lose quality.
    file = stored_media(attachment, fittable=False)
    return _new_draft(
        user, team, form_key, file, file.stored_name, file.thumbnail_name, now, from_message=True
    )


def _new_draft(
    user, team, form_key, file: media.MediaFile, stored: str, thumb: str, now, **extra
) -> DraftAttachment:
    return DraftAttachment.objects.create(
        **stored_file_fields(file),
        **extra,
        team=team,
        user=user,
        form_key=form_key,
        file=stored,
        thumbnail=thumb,
        fittable=file.fittable,
        notes=file.notes,
        created_at=now,
        expires_at=now + DRAFT_LIFETIME,
    )


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
    return stored_media(draft, fittable=draft.fittable, notes=list(draft.notes or []))


def stored_media(row: Attachment | DraftAttachment, **extra) -> media.MediaFile:
    """A MediaFile for a stored file; its bytes are read from storage only when needed.

    ``extra`` gives what only drafts record (``fittable``, ``notes``).
    """

    def load() -> bytes:
        with default_storage.open(row.file.name, "rb") as handle:
            return handle.read()

    try:
        # A local file a child process can read itself (see uploads.fit_photos).
        path = default_storage.path(row.file.name)
    except NotImplementedError:
        path = None

    return media.MediaFile(
        name=row.original_name,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        # Attachments older than the field have none: the size they were sent at stands in.
        original_size=row.original_size or row.size,
        original_content_type=row.original_content_type,
        width=row.width,
        height=row.height,
        was_converted=row.was_converted,
        metadata_removed=row.metadata_removed,
        stored_name=row.file.name,
        thumbnail_name=row.thumbnail.name or "",
        loader=load,
        path=path,
        **extra,
    )


GONE = "An attached file is no longer available (it expired or was removed). Attach it again."


def load_drafts(
    user, team, form_key, keys: Iterable[str]
) -> tuple[list[DraftAttachment], list[str]]:
    """The drafts of compose page ``form_key`` named by ``keys``, in that order, and a problem
    if any is gone (expired, removed, or attached on another page)."""
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
    found = {d.key: d for d in form_drafts(user, team, form_key).filter(key__in=wanted)}
    if len(found) < len(wanted):
        problems = [GONE]
    return [found[k] for k in wanted if k in found], problems
