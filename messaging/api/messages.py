"""Sending through the API: the compose rules (messaging/compose/submission.py) with the
request's fields, and the one place a scheduled send will be wired in."""

from __future__ import annotations

from collections.abc import Sequence

from messaging.api.problems import Problem
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
    )


def _schedule_or_queue(outgoing, send_at, *, origin: str) -> list[OutboundMessage]:
    """Queue the messages now (`send_at` null). A time to send at is where scheduled sends
    will be handed to the outbox; until then it is refused."""
    if send_at is not None:
        raise Problem(
            422,
            "scheduled sends are not available through the API yet",
            code="scheduling-unavailable",
            errors={"send_at": ["Leave send_at null to send now."]},
        )
    return submission.submit(outgoing, origin=origin)


def send(membership, data: dict, uploads: Sequence, *, origin: str) -> list[OutboundMessage]:
    if data.get("send_at") is not None:
        # Refused before any file is checked or stored.
        return _schedule_or_queue(None, data["send_at"], origin=origin)
    outgoing = prepare(membership, data, uploads)
    return _schedule_or_queue(outgoing, None, origin=origin)
