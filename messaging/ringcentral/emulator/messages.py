"""Stored messages and sending SMS/MMS (the message-store endpoints are in ``store.py``).

A stored message is never changed in memory: each outbound recipient's status is a function of
the emulator clock (``RecipientTrack``), so reads are consistent with time travel, and a new read
status replaces the record with a copy. ``Emulator.tick`` compares statuses with what it last
notified to emit webhook "updated" events.

Inbound messages (``inbound.py``) and outbound ones sent from the user's other RingCentral apps
share the store: ``direction`` tells them apart, and a conversation is keyed on the extension and
the set of every participant, so both directions of a thread (group MMS included) share its id.

Validation order of a send (first failure wins): content type, multipart framing, the JSON root
part, each attachment part in order (MSG-350, MSG-351, MSG-347, MSG-348), attachment count
(MSG-379), combined attachment size (MSG-337), the JSON fields (``from``, ``to``, ``text``,
``country``), then the sender number's ownership and features and the destinations.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import multipart
from .clock import iso
from .errors import ApiError, invalid_parameter, unsupported_media_type
from .identity import check_path_owner
from .state import E164, World
from .wire import Request, Response

if TYPE_CHECKING:
    from .config import EmulatorConfig
    from .emulator import Emulator

# Attachment types RingCentral accepts for MMS (developer guide, "sending images", 2026-04).
SUPPORTED_MIME_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/bmp",
        "image/gif",
        "image/tiff",
        "image/svg+xml",
        "image/webp",
        "video/3gpp",
        "video/mp4",
        "video/mpeg",
        "video/avi",
        "video/x-flv",
        "video/x-ms-wmv",
        "video/quicktime",
        "video/webm",
        "video/ogg",
        "audio/mpeg",
        "audio/mp4",
        "audio/ogg",
        "audio/wav",
        "audio/amr",
        "audio/3gpp",
        "text/vcard",
        "application/zip",
        "application/gzip",
        "application/rtf",
        "application/pdf",
        "text/html",
        "text/plain",
        "text/csv",
        "text/calendar",
    }
)

MESSAGE_TYPES = ("Fax", "SMS", "VoiceMail", "Pager", "Text")
DIRECTIONS = ("Inbound", "Outbound")
READ_STATUSES = ("Read", "Unread")
MULTIPART_TYPES = ("multipart/form-data", "multipart/mixed")

_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


def utf16_units(text: str) -> int:
    """Length as RingCentral counts it: UTF-16 code units (an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def segment_count(text: str) -> int:
    if not text:
        return 1
    if set(text) <= _GSM7:
        return 1 if len(text) <= 160 else math.ceil(len(text) / 153)
    units = utf16_units(text)
    return 1 if units <= 70 else math.ceil(units / 67)


@dataclass(frozen=True)
class StoredAttachment:
    id: int
    filename: str
    content_type: str
    data: bytes = field(repr=False)
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class RecipientTrack:
    """One recipient's timeline, fixed at send time from its behaviour and the config."""

    phone_number: str
    outcome: str
    error_code: str | None
    sent_at: float
    final_at: float

    def state(self, now: float) -> tuple[str, float]:
        """(messageStatus, time it was reached) at ``now``."""
        if now < self.sent_at:
            return "Queued", 0.0
        if self.outcome == "sending_failed":
            return "SendingFailed", self.sent_at
        if self.outcome == "no_receipt" or now < self.final_at:
            return "Sent", self.sent_at
        if self.outcome == "delivered":
            return "Delivered", self.final_at
        return "DeliveryFailed", self.final_at


@dataclass(frozen=True)
class NewAttachment:
    """A file about to be stored with a message."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class StoredMessage:
    id: int
    account_id: str
    extension_id: int
    # The extension's user: ``from.name`` of outbound records and ``owner.name`` of all.
    owner_name: str
    direction: str
    from_number: str
    # Outbound: one timeline per recipient. Inbound: empty.
    recipients: tuple[RecipientTrack, ...]
    # Inbound: the extension's number that received it, then the other group MMS members.
    inbound_to: tuple[str, ...]
    text: str
    attachments: tuple[StoredAttachment, ...]
    created_at: float
    # When the record entered the store: later than ``created_at`` for back-dated records.
    stored_at: float
    conversation_id: int
    text_attachment_id: int
    # "sms", "mms", "elsewhere" (sent from another RingCentral app) or "inbound".
    endpoint: str
    read_status: str
    read_changed_at: float | None = None

    @property
    def inbound(self) -> bool:
        return self.direction == "Inbound"

    @property
    def to_numbers(self) -> list[str]:
        if self.inbound:
            return list(self.inbound_to)
        return [r.phone_number for r in self.recipients]

    @property
    def participants(self) -> frozenset[str]:
        return frozenset([self.from_number, *self.to_numbers])

    def statuses(self, now: float) -> tuple[str, ...]:
        if self.inbound:
            return ("Received",)
        return tuple(r.state(now)[0] for r in self.recipients)

    def status(self, now: float) -> str:
        """Top-level status: the common one, else Queued > SendingFailed > Sent (RingCentral)."""
        statuses = set(self.statuses(now))
        if len(statuses) == 1:
            return statuses.pop()
        if "Queued" in statuses:
            return "Queued"
        if "SendingFailed" in statuses:
            return "SendingFailed"
        return "Sent"

    def last_modified(self, now: float) -> float:
        times = [self.created_at] + [r.state(now)[1] for r in self.recipients]
        if self.read_changed_at is not None:
            times.append(self.read_changed_at)
        return max(times)

    def changed_at(self, now: float) -> float:
        """When a client could last have seen this record change: its last modification, or when
        it entered the store if that is later (a back-dated record is new when it is stored)."""
        return max(self.stored_at, self.last_modified(now))

    def error_code(self, now: float) -> str | None:
        for recipient in self.recipients:
            if recipient.state(now)[0] in ("SendingFailed", "DeliveryFailed"):
                return recipient.error_code
        return None

    def uri(self, base_url: str) -> str:
        return (
            f"{base_url}/restapi/v1.0/account/{self.account_id}/extension/{self.extension_id}"
            f"/message-store/{self.id}"
        )

    def _attachments_json(self, uri: str) -> list[dict[str, Any]]:
        attachments: list[dict[str, Any]] = []
        if self.text:
            attachments.append(
                {
                    "id": self.text_attachment_id,
                    "uri": f"{uri}/content/{self.text_attachment_id}",
                    "type": "Text",
                    "contentType": "text/plain",
                }
            )
        for item in self.attachments:
            attachments.append(
                {
                    "id": item.id,
                    "uri": f"{uri}/content/{item.id}",
                    "type": "MmsAttachment",
                    "contentType": item.content_type,
                    "fileName": item.filename,
                    "size": item.size,
                }
            )
        return attachments

    def _parties_json(self, now: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if not self.inbound:
            sender = {"phoneNumber": self.from_number, "name": self.owner_name}
            to = [
                {"phoneNumber": r.phone_number, "messageStatus": r.state(now)[0]}
                for r in self.recipients
            ]
            return sender, to
        # ``target`` marks the extension's own number among the recipients (group MMS).
        own, *others = self.inbound_to
        to = [{"phoneNumber": own, "name": self.owner_name, "target": True}]
        to += [{"phoneNumber": number} for number in others]
        return {"phoneNumber": self.from_number}, to

    def to_json(self, base_url: str, now: float) -> dict[str, Any]:
        """The record as the message store answers it (``GetMessageInfoResponse``)."""
        uri = self.uri(base_url)
        sender, to = self._parties_json(now)
        status = self.status(now)
        body: dict[str, Any] = {
            "uri": uri,
            "id": self.id,
            "extensionId": str(self.extension_id),
            "to": to,
            "from": sender,
            "type": "SMS",
            "creationTime": iso(self.created_at),
            "readStatus": self.read_status,
            "priority": "Normal",
            "attachments": self._attachments_json(uri),
            "direction": self.direction,
            "availability": "Alive",
            "subject": self.text,
            "messageStatus": status,
            "conversationId": self.conversation_id,
            "conversation": {
                "id": str(self.conversation_id),
                "uri": f"{base_url}/restapi/v1.0/conversation/{self.conversation_id}",
            },
            "lastModifiedTime": iso(self.last_modified(now)),
            "segmentCount": segment_count(self.text),
            "owner": {
                "extensionId": str(self.extension_id),
                "extensionType": "User",
                "name": self.owner_name,
            },
        }
        if self.inbound:
            return body
        if status != "Queued":
            body["smsSendingAttemptsCount"] = 1
        if status == "Delivered":
            body["smsDeliveryTime"] = iso(max(r.final_at for r in self.recipients))
        code = self.error_code(now)
        if code is not None:
            body["deliveryErrorCode"] = code
        return body


class MessageStore:
    """All stored messages, thread-safe. Iteration yields a snapshot in creation order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: dict[int, StoredMessage] = {}
        self._ids = itertools.count(3_154_000_000_001)
        self._attachment_ids = itertools.count(6_020_000_001)
        self._conversations: dict[tuple[int, frozenset[str]], int] = {}
        self.notified: dict[int, tuple[str, ...]] = {}

    def create(
        self,
        *,
        account_id: str,
        extension_id: int,
        owner_name: str,
        direction: str,
        from_number: str,
        recipients: Iterable[RecipientTrack] = (),
        inbound_to: Iterable[str] = (),
        text: str,
        files: Iterable[NewAttachment],
        created_at: float,
        stored_at: float,
        endpoint: str,
        read_status: str,
    ) -> StoredMessage:
        recipients = tuple(recipients)
        inbound_to = tuple(inbound_to)
        with self._lock:
            participants = frozenset(
                [from_number, *inbound_to, *(r.phone_number for r in recipients)]
            )
            key = (extension_id, participants)
            if key not in self._conversations:
                # Above 2**53 on purpose: clients must keep conversation.id as a string.
                self._conversations[key] = secrets.randbelow(2**62) + 2**62
            message = StoredMessage(
                id=next(self._ids),
                account_id=account_id,
                extension_id=extension_id,
                owner_name=owner_name,
                direction=direction,
                from_number=from_number,
                recipients=recipients,
                inbound_to=inbound_to,
                text=text,
                attachments=tuple(
                    StoredAttachment(
                        id=next(self._attachment_ids),
                        filename=item.filename,
                        content_type=item.content_type,
                        data=item.data,
                        headers=item.headers,
                    )
                    for item in files
                ),
                created_at=created_at,
                stored_at=stored_at,
                conversation_id=self._conversations[key],
                text_attachment_id=next(self._attachment_ids),
                endpoint=endpoint,
                read_status=read_status,
            )
            self._messages[message.id] = message
            if created_at < stored_at:
                # A back-dated record arrives with the statuses it has by now: no "updated"
                # events for changes that happened before anyone could see it.
                self.notified[message.id] = message.statuses(stored_at)
            else:
                initial = "Received" if message.inbound else "Queued"
                self.notified[message.id] = tuple(initial for _ in message.statuses(stored_at))
            return message

    def set_read_status(
        self, message_id: int, read_status: str, now: float
    ) -> tuple[StoredMessage, bool] | None:
        """Replace the record with one carrying ``read_status``; (record, whether it changed),
        or None for an unknown id. Setting the status it already has changes nothing."""
        with self._lock:
            message = self._messages.get(message_id)
            if message is None:
                return None
            if message.read_status == read_status:
                return message, False
            updated = dataclasses.replace(message, read_status=read_status, read_changed_at=now)
            self._messages[message_id] = updated
            return updated, True

    def get(self, message_id: int) -> StoredMessage | None:
        with self._lock:
            return self._messages.get(message_id)

    def all(self) -> list[StoredMessage]:
        with self._lock:
            return list(self._messages.values())

    def for_extension(self, extension_id: int) -> list[StoredMessage]:
        return [m for m in self.all() if m.extension_id == extension_id]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self.notified.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    def __iter__(self) -> Iterator[StoredMessage]:
        return iter(self.all())


# -- send -----------------------------------------------------------------------------------


def _read_body(req: Request, endpoint: str) -> tuple[Any, list[multipart.Part]]:
    media = req.media_type
    if media == "application/json" and endpoint == "sms":
        return req.json(), []
    if media not in MULTIPART_TYPES:
        raise unsupported_media_type(req.content_type)
    try:
        parts = multipart.parse(req.body, req.content_type or "")
    except multipart.MultipartError as exc:
        raise ApiError(400, "CMN-104", f"Cannot parse request: {exc}") from exc
    root = parts[0]
    try:
        root_type = root.content_type
    except multipart.MultipartError as exc:
        raise ApiError(400, "CMN-104", f"Cannot parse request: {exc}") from exc
    if root_type != "application/json":
        raise ApiError(
            400,
            "CMN-104",
            "Cannot parse request: the first part must be the JSON request body "
            "with Content-Type: application/json",
        )
    try:
        body = json.loads(root.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "CMN-103", "JSON can't be parsed") from exc
    return body, parts[1:]


def _check_file(part: multipart.Part) -> None:
    """One attachment part's own headers and body; raises ``MultipartError`` if unreadable."""
    if part.header("Content-Disposition") is None:
        raise ApiError(400, "MSG-350", "No content disposition")
    filename = part.filename
    if not filename:
        raise ApiError(400, "MSG-351", "No file name in content disposition")
    if not part.body:
        raise ApiError(400, "MSG-347", "Attachment body is empty", parameter_value=filename)
    if part.content_type not in SUPPORTED_MIME_TYPES:
        raise ApiError(
            415,
            "MSG-348",
            f"Unsupported attachment media type: {part.content_type or '(none)'}",
            parameter_value=filename,
        )


def _check_files(emu: Emulator, files: list[multipart.Part]) -> None:
    try:
        for part in files:
            _check_file(part)
    except multipart.MultipartError as exc:
        raise ApiError(400, "CMN-104", f"Cannot parse request: {exc}") from exc
    config = emu.config
    if len(files) > config.max_attachments:
        raise ApiError(
            400, "MSG-379", f"Exceeded maximum number of attachments: [{config.max_attachments}]"
        )
    total = sum(len(part.body) for part in files)
    if total > config.max_attachment_bytes:
        raise ApiError(
            400,
            "MSG-337",
            f"Attachment size limit exceeded: {total} > {config.max_attachment_bytes} bytes",
        )


def _phone_number(party: Any, name: str) -> str:
    """The E.164 ``phoneNumber`` of the ``from`` entry or of one ``to`` entry (``name`` says which).

    Both sides refuse extension numbers with the one MSG-246, whose message names both.
    """
    if not isinstance(party, dict):
        raise invalid_parameter(name)
    if "extensionNumber" in party:
        raise ApiError(400, "MSG-246", "Sending SMS from/to extension numbers is not available")
    number = party.get("phoneNumber")
    if not isinstance(number, str) or not E164.match(number):
        raise invalid_parameter(f"{name}.phoneNumber")
    return number


def _check_fields(emu: Emulator, body: Any, has_files: bool) -> tuple[str, list[str], str]:
    if not isinstance(body, dict):
        raise invalid_parameter("body", "The request body must be a JSON object")
    from_number = _phone_number(body.get("from"), "from")

    to = body.get("to")
    if not isinstance(to, list) or not to:
        raise invalid_parameter("to")
    if len(to) > emu.config.max_recipients:
        raise ApiError(
            400,
            "MSG-381",
            f"Exceeded maximum number of recipients for a Group MMS: [{emu.config.max_recipients}]",
        )
    numbers: list[str] = []
    for item in to:
        number = _phone_number(item, "to")
        if number in numbers:
            raise ApiError(
                400,
                "CMN-406",
                f"Duplicate value for parameter to.phoneNumber: {number} found in request",
                parameter_name="to.phoneNumber",
                parameter_value=number,
            )
        numbers.append(number)

    text = body.get("text", "")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise invalid_parameter("text")
    if not text and not has_files:
        raise invalid_parameter("text", "Parameter [text] is required")
    units = utf16_units(text)
    if units > emu.config.max_text_units:
        # RingCentral documents the limit but not the code; MSG-338 is its "message size" code.
        raise ApiError(
            400,
            "MSG-338",
            f"Message size limit exceeded: text is {units} UTF-16 code units, "
            f"the maximum is {emu.config.max_text_units}",
            parameter_name="text",
        )
    country = body.get("country")
    if isinstance(country, dict) and "id" in country and "isoCode" in country:
        raise ApiError(400, "MSG-365", "Specify either country.id or country.isoCode, not both")
    return from_number, numbers, text


def _check_numbers(req: Request, from_number: str, to: list[str], has_files: bool) -> None:
    assert req.auth is not None
    number = req.auth.extension.number(from_number)
    if number is None:
        raise ApiError(
            400,
            "MSG-245",
            "Cannot find the phone number which belongs to user",
            parameter_name="from.phoneNumber",
            parameter_value=from_number,
        )
    if number.type == "FaxOnly":
        raise ApiError(403, "MSG-241", "Cannot send SMS from Fax number")
    if not number.has("SmsSender"):
        raise ApiError(403, "MSG-367", "The from phone number does not support SMS")
    if has_files and not number.has("MmsSender"):
        raise ApiError(403, "MSG-242", "Sending MMS is not available from the number specified")
    for recipient in to:
        if recipient.startswith("+1"):
            continue
        if has_files:
            raise ApiError(403, "MSG-383", "International MMS feature is not available")
        if not number.has("InternationalSmsSender"):
            raise ApiError(
                403, "MSG-240", f"Specified recipient [{recipient}] isn't an US phone number"
            )


# What a send to an opted-out pair ends with (developer guide, SMS errors).
OPTED_OUT_ERROR = "SMS-RC-413"


def _track(
    config: EmulatorConfig, world: World, number: str, now: float, opted_out: bool
) -> RecipientTrack:
    """The timeline of ``number`` in a message created at ``now``: the number's behaviour, with
    the config's delays where the behaviour sets none. An opted-out pair is accepted and then
    fails to send, whatever the number's behaviour."""
    behaviour = world.behaviour_for(number, config.default_outcome)
    sent_after = behaviour.sent_after if behaviour.sent_after is not None else config.sent_after
    final_after = (
        behaviour.delivered_after
        if behaviour.delivered_after is not None
        else config.delivered_after
    )
    outcome, error_code = behaviour.outcome, behaviour.error_code
    if opted_out:
        outcome, error_code = "sending_failed", OPTED_OUT_ERROR
    return RecipientTrack(
        phone_number=number,
        outcome=outcome,
        error_code=error_code,
        sent_at=now + sent_after,
        final_at=now + max(final_after, sent_after),
    )


def outbound_tracks(
    emu: Emulator, from_number: str, to: list[str], now: float
) -> list[RecipientTrack]:
    """One timeline per recipient of a message from ``from_number`` created at ``now``."""
    return [
        _track(emu.config, emu.world, number, now, emu.opted_out(from_number, number))
        for number in to
    ]


def handle_send(emu: Emulator, req: Request, endpoint: str) -> Response:
    """POST ``.../sms`` (JSON or multipart) and ``.../mms`` (multipart only).

    Returns a response whose ``commit`` stores the message; nothing is stored before that.
    """
    check_path_owner(emu, req)
    body, files = _read_body(req, endpoint)
    _check_files(emu, files)
    if endpoint == "mms" and not files:
        raise invalid_parameter("attachments", "Parameter [attachments] is required")
    from_number, to, text = _check_fields(emu, body, bool(files))
    _check_numbers(req, from_number, to, bool(files))

    auth = req.auth
    assert auth is not None

    def commit() -> Response:
        now = emu.now()
        message = emu.messages.create(
            account_id=auth.account.id,
            extension_id=auth.extension.id,
            owner_name=auth.extension.name,
            direction="Outbound",
            from_number=from_number,
            recipients=outbound_tracks(emu, from_number, to, now),
            text=text,
            files=[
                NewAttachment(part.filename or "", part.content_type or "", part.body, part.headers)
                for part in files
            ],
            created_at=now,
            stored_at=now,
            endpoint=endpoint,
            read_status="Read",
        )
        req.message_id = message.id
        emu.message_stored(message)
        response = Response.json(200, message.to_json(emu.base_url, now))
        response.message_id = message.id
        return response

    return Response(200, commit=commit)
