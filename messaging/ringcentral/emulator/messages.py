"""Sending SMS/MMS and reading the message store.

A stored outbound message never changes in memory after it is created: each recipient's status
is a function of the emulator clock (``RecipientTrack``), so reads are consistent with time
travel. ``Emulator.tick`` compares those statuses with what it last notified to emit webhook
"updated" events.

Validation order of a send (first failure wins): content type, multipart framing, the JSON root
part, each attachment part in order (MSG-350, MSG-351, MSG-347, MSG-348), attachment count
(MSG-379), combined attachment size (MSG-337), the JSON fields (``from``, ``to``, ``text``,
``country``), then the sender number's ownership and features and the destinations.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import multipart
from .clock import iso, parse_iso
from .errors import ApiError, invalid_parameter, not_found, unsupported_media_type
from .identity import check_path_owner
from .paging import page_params, paginate
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
MULTIPART_TYPES = ("multipart/form-data", "multipart/mixed")
BULK_JSON = "application/vnd.ringcentral.multipart+json"

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
class StoredMessage:
    id: int
    account_id: str
    extension_id: int
    sender_name: str
    from_number: str
    recipients: tuple[RecipientTrack, ...]
    text: str
    attachments: tuple[StoredAttachment, ...]
    created_at: float
    conversation_id: int
    text_attachment_id: int
    endpoint: str

    @property
    def to_numbers(self) -> list[str]:
        return [r.phone_number for r in self.recipients]

    def statuses(self, now: float) -> tuple[str, ...]:
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
        return max([self.created_at] + [r.state(now)[1] for r in self.recipients])

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

    def to_json(self, base_url: str, now: float) -> dict[str, Any]:
        uri = self.uri(base_url)
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
        status = self.status(now)
        body: dict[str, Any] = {
            "uri": uri,
            "id": self.id,
            "extensionId": str(self.extension_id),
            "to": [
                {"phoneNumber": r.phone_number, "messageStatus": r.state(now)[0]}
                for r in self.recipients
            ],
            "from": {"phoneNumber": self.from_number, "name": self.sender_name},
            "type": "SMS",
            "creationTime": iso(self.created_at),
            "readStatus": "Read",
            "priority": "Normal",
            "attachments": attachments,
            "direction": "Outbound",
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
        }
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
        self._conversations: dict[tuple, int] = {}
        self.notified: dict[int, tuple[str, ...]] = {}

    def create(
        self,
        *,
        account_id: str,
        extension_id: int,
        sender_name: str,
        from_number: str,
        recipients: list[RecipientTrack],
        text: str,
        files: list[multipart.Part],
        created_at: float,
        endpoint: str,
    ) -> StoredMessage:
        with self._lock:
            key = (extension_id, from_number, frozenset(r.phone_number for r in recipients))
            if key not in self._conversations:
                # Above 2**53 on purpose: clients must keep conversation.id as a string.
                self._conversations[key] = secrets.randbelow(2**62) + 2**62
            message = StoredMessage(
                id=next(self._ids),
                account_id=account_id,
                extension_id=extension_id,
                sender_name=sender_name,
                from_number=from_number,
                recipients=tuple(recipients),
                text=text,
                attachments=tuple(
                    StoredAttachment(
                        id=next(self._attachment_ids),
                        filename=part.filename or "",
                        content_type=part.content_type or "",
                        data=part.body,
                        headers=part.headers,
                    )
                    for part in files
                ),
                created_at=created_at,
                conversation_id=self._conversations[key],
                text_attachment_id=next(self._attachment_ids),
                endpoint=endpoint,
            )
            self._messages[message.id] = message
            self.notified[message.id] = tuple("Queued" for _ in recipients)
            return message

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


def _track(config: EmulatorConfig, world: World, number: str, now: float) -> RecipientTrack:
    """The timeline of ``number`` in a message created at ``now``: the number's behaviour, with
    the config's delays where the behaviour sets none."""
    behaviour = world.behaviour_for(number, config.default_outcome)
    sent_after = behaviour.sent_after if behaviour.sent_after is not None else config.sent_after
    final_after = (
        behaviour.delivered_after
        if behaviour.delivered_after is not None
        else config.delivered_after
    )
    return RecipientTrack(
        phone_number=number,
        outcome=behaviour.outcome,
        error_code=behaviour.error_code,
        sent_at=now + sent_after,
        final_at=now + max(final_after, sent_after),
    )


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
    config = emu.config

    def commit() -> Response:
        now = emu.now()
        message = emu.messages.create(
            account_id=auth.account.id,
            extension_id=auth.extension.id,
            sender_name=auth.extension.name,
            from_number=from_number,
            recipients=[_track(config, emu.world, number, now) for number in to],
            text=text,
            files=files,
            created_at=now,
            endpoint=endpoint,
        )
        req.message_id = message.id
        emu.subscriptions.message_created(message)
        response = Response.json(200, message.to_json(emu.base_url, now))
        response.message_id = message.id
        return response

    return Response(200, commit=commit)


# -- message store --------------------------------------------------------------------------


def _owned(emu: Emulator, req: Request, message_id: int) -> StoredMessage | None:
    assert req.auth is not None
    message = emu.messages.get(message_id)
    if message is None or message.extension_id != req.auth.extension.id:
        return None
    return message


def handle_read(emu: Emulator, req: Request) -> Response:
    """GET ``.../message-store/{id}`` or ``{id},{id},...`` (bulk: HTTP 207)."""
    check_path_owner(emu, req)
    raw_ids = req.params["ids"].split(",")
    if any(not raw.strip().isdigit() for raw in raw_ids):
        raise invalid_parameter("messageId")
    ids = [int(raw) for raw in raw_ids]
    if len(ids) > emu.config.batch_read_max:
        raise ApiError(
            400, "CMN-106", f"Batch request is limited to {emu.config.batch_read_max} entries"
        )
    now = emu.now()
    if len(ids) == 1:
        message = _owned(emu, req, ids[0])
        if message is None:
            raise not_found("messageId")
        return Response.json(200, message.to_json(emu.base_url, now))

    assert req.auth is not None
    base = (
        f"{emu.base_url}/restapi/v1.0/account/{req.auth.account.id}"
        f"/extension/{req.auth.extension.id}/message-store"
    )
    results: list[tuple[int, int, dict[str, Any]]] = []
    for message_id in ids:
        message = _owned(emu, req, message_id)
        if message is None:
            results.append((message_id, 404, not_found("messageId").body()))
        else:
            results.append((message_id, 200, message.to_json(emu.base_url, now)))

    if BULK_JSON in (req.header("Accept") or ""):
        items = [{"resourceId": str(i), "status": s, "body": b} for i, s, b in results]
        response = Response.json(207, items)
        response.content_type = BULK_JSON
        return response

    boundary = f"Boundary_{uuid.uuid4().hex}"
    summary = {
        "response": [
            {
                "href": f"{base}/{message_id}",
                "status": status,
                "responseDescription": "OK" if status == 200 else "Not Found",
            }
            for message_id, status, _ in results
        ]
    }
    chunks = [summary] + [body for _, _, body in results]
    payload = b"".join(
        b"--"
        + boundary.encode()
        + b"\r\nContent-Type: application/json\r\n\r\n"
        + json.dumps(chunk).encode("utf-8")
        + b"\r\n"
        for chunk in chunks
    )
    payload += b"--" + boundary.encode() + b"--\r\n"
    return Response(207, payload, f"multipart/mixed; boundary={boundary}")


def _multi(req: Request, name: str, allowed: tuple[str, ...]) -> list[str]:
    values = req.query.get(name, [])
    for value in values:
        if value not in allowed:
            raise invalid_parameter(name)
    return values


def _date(req: Request, name: str, default: float) -> float:
    raw = req.query_one(name)
    if raw is None:
        return default
    try:
        return parse_iso(raw)
    except ValueError:
        raise invalid_parameter(name) from None


def handle_list(emu: Emulator, req: Request) -> Response:
    """GET ``.../message-store``: newest first; ``dateFrom`` defaults to ``dateTo`` - 24 h."""
    check_path_owner(emu, req)
    assert req.auth is not None
    now = emu.now()
    date_to = _date(req, "dateTo", now)
    date_from = _date(req, "dateFrom", date_to - 86400)
    directions = _multi(req, "direction", DIRECTIONS)
    types = _multi(req, "messageType", MESSAGE_TYPES)
    page, per_page = page_params(req)
    conversation = req.query_one("conversationId")
    phone = req.query_one("phoneNumber")

    selected = [
        m
        for m in emu.messages.for_extension(req.auth.extension.id)
        if date_from <= m.created_at <= date_to
        and (not directions or "Outbound" in directions)
        and (not types or "SMS" in types)
        and (conversation is None or str(m.conversation_id) == conversation)
        and (phone is None or phone == m.from_number or phone in m.to_numbers)
    ]
    selected.sort(key=lambda m: (m.created_at, m.id), reverse=True)
    base = (
        f"{emu.base_url}/restapi/v1.0/account/{req.auth.account.id}"
        f"/extension/{req.auth.extension.id}/message-store"
    )
    chunk, paging, navigation = paginate(req, base, selected, page, per_page)
    body = {
        "uri": base,
        "records": [m.to_json(emu.base_url, now) for m in chunk],
        "paging": paging,
        "navigation": navigation,
    }
    return Response.json(200, body)


def handle_content(emu: Emulator, req: Request) -> Response:
    """GET ``.../message-store/{id}/content/{attachmentId}``: the stored bytes."""
    check_path_owner(emu, req)
    try:
        message_id = int(req.params["ids"])
        attachment_id = int(req.params["attachment"])
    except ValueError:
        raise not_found("messageId") from None
    message = _owned(emu, req, message_id)
    if message is None:
        raise not_found("messageId")
    if attachment_id == message.text_attachment_id and message.text:
        return Response(200, message.text.encode("utf-8"), "text/plain; charset=UTF-8")
    for item in message.attachments:
        if item.id == attachment_id:
            return Response(200, item.data, item.content_type)
    raise not_found("attachmentId")
