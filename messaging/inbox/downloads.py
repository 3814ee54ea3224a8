"""Fetching the files of received MMS into the private storage.

A stored message lists its files as `pending` rows (messaging/inbox/storing.py); the text is
shown at once and the files follow. `download_files` takes due rows (claimed by moving their
`next_try_at` a lease ahead, so two workers never fetch the same file), asks the shared rate
limiter for the linked user's Medium budget (RingCentral's group for message content), streams
each file to a bounded buffer, decides its type from its bytes as uploads are checked
(messaging/compose/media/), and stores it with a thumbnail for pictures. A failed fetch is
tried again after `RETRY_AFTER`; after the last try the file is `failed`, with the reason on
the thread. A type the portal never keeps (programs) is `refused`: its bytes are dropped.
"""

from __future__ import annotations

import hashlib
import io
import logging
import uuid
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import F, Q
from django.utils import timezone

from messaging.compose import media
from messaging.compose.uploads import thumbnail_in_child
from messaging.inbox import schedule, threads
from messaging.links.tokens import client_for
from messaging.models import FileState, InboxFile
from messaging.ringcentral import errors, limits
from messaging.ringcentral.client import FileTooLarge
from messaging.sending import ratelimit

log = logging.getLogger(__name__)

# Waits before the 2nd, 3rd, … try; after the last, the file is given up.
RETRY_AFTER = (30, 120, 600, 3600, 6 * 3600)
# A claimed download whose worker died is due again after this.
LEASE = timedelta(minutes=5)
LIMITER_MAX_WAIT = 2.0
PER_RUN = 50


def max_file_bytes() -> int:
    return settings.INBOX_MAX_FILE_BYTES


def download_soon(entry_id: int) -> None:
    """After the commit that stored message `entry_id`: fetch its files in a worker."""
    schedule.after_commit(schedule.DOWNLOAD, entry_id)


def download_files(entry_id: int | None = None, *, now: datetime | None = None) -> dict[str, int]:
    """Fetch due files (of one message, or any); returns counts by outcome."""
    now = now or timezone.now()
    due = InboxFile.objects.filter(state=FileState.PENDING).filter(
        Q(next_try_at__isnull=True) | Q(next_try_at__lte=now)
    )
    if entry_id is not None:
        due = due.filter(message_id=entry_id)
    counts: Counter = Counter()
    for file_id in list(due.order_by("next_try_at", "pk").values_list("pk", flat=True)[:PER_RUN]):
        if not _claim(file_id, now):
            continue
        file = InboxFile.objects.select_related("message__connection", "message__conversation").get(
            pk=file_id
        )
        counts[_download(file, now)] += 1
    return dict(counts)


def _claim(file_id: int, now: datetime) -> bool:
    return (
        InboxFile.objects.filter(pk=file_id, state=FileState.PENDING)
        .filter(Q(next_try_at__isnull=True) | Q(next_try_at__lte=now))
        .update(next_try_at=now + LEASE)
        == 1
    )


def _download(file: InboxFile, now: datetime) -> str:
    connection = file.message.connection
    if not connection.is_usable:
        reason = "The RingCentral link is not working; the file is fetched once it is linked again."
        return _retry(file, now, reason, counted=False, wait=600)
    key = ratelimit.key_for(connection, limits.SEND_GROUP)
    limiter = ratelimit.get_limiter()
    wait = limiter.acquire([key], max_wait=LIMITER_MAX_WAIT)
    if wait > 0:
        return _retry(file, now, "", counted=False, wait=wait)
    buffer = io.BytesIO()
    try:
        answer = client_for(connection).download_file(
            file.message.rc_message_id or "",
            file.rc_attachment_id,
            file.rc_uri,
            buffer.write,
            max_bytes=max_file_bytes(),
        )
    except FileTooLarge:
        return _give_up(
            file,
            FileState.REFUSED,
            f"Larger than the {limits.format_size(max_file_bytes())} this portal keeps.",
        )
    except errors.RateLimited as exc:
        limiter.pause(key, exc.retry_after)
        return _retry(file, now, "", counted=False, wait=exc.retry_after or 30)
    except errors.NotFound:
        return _give_up(file, FileState.FAILED, "RingCentral no longer has this file.")
    except (errors.RingCentralError, ValueError) as exc:
        log.warning("Fetching file %s of message %s failed: %s", file.pk, file.message_id, exc)
        return _retry(file, now, getattr(exc, "reason", str(exc)))
    data = buffer.getvalue()
    if not data:
        return _give_up(file, FileState.FAILED, "RingCentral sent an empty file.")
    return _store(file, data, answer.content_type)


def _store(file: InboxFile, data: bytes, served_type: str) -> str:
    name = media.clean_filename(file.original_name or "file")
    try:
        sniffed = media.sniff(data, name)
    except media.MediaError:
        sniffed = media.Sniffed("application/octet-stream", "damaged file")
    if sniffed.refusal:
        return _give_up(file, FileState.REFUSED, f"“{name}” {sniffed.refusal}: not kept.")
    content_type = sniffed.mime
    team_id = file.message.conversation.team_id
    stored = default_storage.save(f"inbox/{team_id}/{uuid.uuid4().hex}", ContentFile(data))
    thumbnail = ""
    if content_type.startswith("image/") and content_type != "image/svg+xml":
        # Decoded in a child process under the media limits: the file came from outside.
        preview = thumbnail_in_child(name, data)
        if preview:
            thumbnail = default_storage.save(
                f"inbox/{team_id}/{uuid.uuid4().hex}-thumb", ContentFile(preview)
            )
    updated = InboxFile.objects.filter(pk=file.pk, state=FileState.PENDING).update(
        state=FileState.STORED,
        file=stored,
        thumbnail=thumbnail,
        original_name=media.with_extension(name, content_type, replace_known=False)[:255],
        content_type=content_type[:100],
        original_content_type=(served_type or file.content_type)[:100],
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        next_try_at=None,
        error="",
    )
    if not updated:  # stored meanwhile by another worker after a lease ran out
        for name in filter(None, (stored, thumbnail)):
            default_storage.delete(name)
        return "duplicate"
    _changed(file)
    return "stored"


def _retry(file: InboxFile, now: datetime, reason: str, *, counted: bool = True, wait=None) -> str:
    tries = file.tries + (1 if counted else 0)
    if counted and tries > len(RETRY_AFTER):
        return _give_up(file, FileState.FAILED, f"Could not be fetched from RingCentral: {reason}")
    delay = wait if wait is not None else RETRY_AFTER[tries - 1]
    InboxFile.objects.filter(pk=file.pk, state=FileState.PENDING).update(
        tries=F("tries") + (1 if counted else 0),
        next_try_at=now + timedelta(seconds=delay),
        error=reason[:1000],
    )
    return "deferred" if not counted else "retry"


def _give_up(file: InboxFile, state: str, reason: str) -> str:
    InboxFile.objects.filter(pk=file.pk, state=FileState.PENDING).update(
        state=state, next_try_at=None, error=reason[:1000]
    )
    _changed(file)
    return state


def _changed(file: InboxFile) -> None:
    threads.touched(file.message.conversation_id)
