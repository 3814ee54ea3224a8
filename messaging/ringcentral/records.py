"""RingCentral's message records and times, read in one place.

A message record (`GetMessageInfoResponse` in RingCentral's spec) is what the send answer, a
message-store read, a listing and a notification all carry. `parse_message` is the one reader
of it; `parse_time` and `format_time` the one reader and writer of RingCentral's times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import errors

# Outcomes a recipient's `messageStatus` can end in; Queued and Sent are on the way.
FINAL_STATUSES = frozenset({"Delivered", "DeliveryFailed", "SendingFailed"})
# The `type` of an attachment that is a file sent with an MMS (the text is another entry).
MMS_ATTACHMENT = "MmsAttachment"


@dataclass(frozen=True)
class RecipientState:
    """One entry of a record's `to[]`: the number as RingCentral wrote it and its status."""

    phone_number: str
    status: str


@dataclass(frozen=True)
class AttachmentInfo:
    """One entry of a record's `attachments[]` (`MessageAttachmentInfo`)."""

    id: str
    uri: str = ""
    type: str = ""
    content_type: str = ""
    filename: str = ""
    size: int | None = None


@dataclass(frozen=True)
class MessageRecord:
    """One message as RingCentral stores it.

    `id` and `conversation_id` are strings: both exceed 2**53, which JSON tools that read
    numbers as doubles would corrupt. `status` is the record's `messageStatus` (for a group, an
    aggregate); each recipient's own is in `recipients`.
    """

    id: str
    conversation_id: str = ""
    direction: str = ""
    type: str = ""
    from_number: str = ""
    recipients: tuple[RecipientState, ...] = ()
    status: str = ""
    text: str = ""
    attachments: tuple[AttachmentInfo, ...] = ()
    error_code: str = ""
    created_at: datetime | None = None
    last_modified: datetime | None = None
    delivered_at: datetime | None = None

    @property
    def recipient_statuses(self) -> dict[str, str]:
        """E.164 (as RingCentral wrote it) -> that recipient's `messageStatus`."""
        return {r.phone_number: r.status for r in self.recipients}

    @property
    def files(self) -> tuple[AttachmentInfo, ...]:
        """The files of an MMS (not the entry that carries its text)."""
        return tuple(a for a in self.attachments if a.type == MMS_ATTACHMENT)

    @property
    def is_final(self) -> bool:
        return bool(self.recipients) and all(r.status in FINAL_STATUSES for r in self.recipients)


def parse_message(data: Any) -> MessageRecord:
    """Read one message record; raises `errors.UnexpectedResponse` without an id."""
    if not isinstance(data, dict) or data.get("id") in (None, ""):
        raise errors.UnexpectedResponse("message record without id")
    top_status = str(data.get("messageStatus") or "")
    recipients = []
    for entry in data.get("to") or ():
        if isinstance(entry, dict) and entry.get("phoneNumber"):
            status = str(entry.get("messageStatus") or top_status)
            recipients.append(RecipientState(str(entry["phoneNumber"]), status))
    conversation = data.get("conversation")
    conversation_id = conversation.get("id") if isinstance(conversation, dict) else None
    if conversation_id in (None, ""):
        conversation_id = data.get("conversationId")
    sender = data.get("from")
    return MessageRecord(
        id=str(data["id"]),
        conversation_id="" if conversation_id in (None, "") else str(conversation_id),
        direction=str(data.get("direction") or ""),
        type=str(data.get("type") or ""),
        from_number=str(sender.get("phoneNumber") or "") if isinstance(sender, dict) else "",
        recipients=tuple(recipients),
        status=top_status,
        text=str(data.get("subject") or ""),
        attachments=tuple(
            _attachment(a) for a in data.get("attachments") or () if isinstance(a, dict)
        ),
        error_code=str(data.get("deliveryErrorCode") or ""),
        created_at=parse_time(data.get("creationTime")),
        last_modified=parse_time(data.get("lastModifiedTime")),
        delivered_at=parse_time(data.get("smsDeliveryTime")),
    )


def _attachment(data: dict[str, Any]) -> AttachmentInfo:
    size = data.get("size")
    return AttachmentInfo(
        id=str(data.get("id") or ""),
        uri=str(data.get("uri") or ""),
        type=str(data.get("type") or ""),
        content_type=str(data.get("contentType") or ""),
        filename=str(data.get("fileName") or ""),
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
    )


def parse_time(value: Any) -> datetime | None:
    """RingCentral's ISO 8601 times (`2026-01-01T10:00:00.000Z`); None when absent or bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_time(moment: datetime) -> str:
    """A time as RingCentral writes it: UTC with milliseconds and a Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
