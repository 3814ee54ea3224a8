"""Sending through the API: the compose rules (messaging/compose/submission.py) with the
request's fields, scheduled sends included (`send_at`)."""

from __future__ import annotations

from collections.abc import Sequence

from messaging.compose import media, submission
from messaging.compose.uploads import ingest_upload
from messaging.models import OutboundMessage


def prepare(membership, data: dict, uploads: Sequence) -> submission.Outgoing:
    """Every check compose makes (role, sender, recipients, consent, text, files, fitting);
    raises ComposeInvalid (422) or PermissionDenied (403)."""
    files, problems = [], []
    for upload in uploads:
        try:
            files.append(ingest_upload(upload))
        except media.MediaError as error:
            problems.append(error.message)
    return submission.prepare(
        membership,
        sender=data["from"],
        to="\n".join(data["to"]),
        text=data.get("text", ""),
        files=files,
        mode=submission.Mode.GROUP if data.get("group") else submission.Mode.SEPARATE,
        file_errors=problems,
        send_at=data.get("send_at"),
    )


def send(membership, data: dict, uploads: Sequence, *, origin: str) -> list[OutboundMessage]:
    """Check and create the messages: queued now, or scheduled when `send_at` is given (an
    aware moment in the future; the compose rules refuse one in the past under `send_at`)."""
    outgoing = prepare(membership, data, uploads)
    return submission.submit(outgoing, origin=origin)
