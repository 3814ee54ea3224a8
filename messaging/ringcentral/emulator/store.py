"""The message-store endpoints: list, read (one id or bulk), update the read status, and
download an attachment. The query helpers are shared with ``sync.py``."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .clock import parse_iso
from .errors import ApiError, invalid_parameter, not_found, unsupported_media_type
from .identity import check_path_owner
from .messages import DIRECTIONS, MESSAGE_TYPES, READ_STATUSES, StoredMessage
from .paging import page_params, paginate
from .wire import Request, Response

if TYPE_CHECKING:
    from .emulator import Emulator

BULK_JSON = "application/vnd.ringcentral.multipart+json"
AVAILABILITIES = ("Alive", "Deleted", "Purged")
DISPOSITIONS = ("Inline", "Attachment")
# What ``dateFrom`` defaults to before ``dateTo`` (the spec, for the list and for sync).
DEFAULT_WINDOW = 86400.0


# -- query parameters -----------------------------------------------------------------------


def multi(req: Request, name: str, allowed: tuple[str, ...]) -> list[str]:
    """A repeatable enum parameter; CMN-101 for a value outside ``allowed``."""
    values = req.query.get(name, [])
    for value in values:
        if value not in allowed:
            raise invalid_parameter(name)
    return values


def date_param(req: Request, name: str, default: float) -> float:
    raw = req.query_one(name)
    if raw is None:
        return default
    try:
        return parse_iso(raw)
    except ValueError:
        raise invalid_parameter(name) from None


def bool_param(req: Request, name: str) -> bool:
    """``true`` or ``false`` (absent: false); anything else is CMN-101."""
    raw = req.query_one(name)
    if raw is None:
        return False
    if raw not in ("true", "false"):
        raise invalid_parameter(name)
    return raw == "true"


def newest_first(messages: list[StoredMessage]) -> list[StoredMessage]:
    return sorted(messages, key=lambda m: (m.created_at, m.id), reverse=True)


def latest_per_conversation(messages: list[StoredMessage]) -> list[StoredMessage]:
    """``distinctConversations``: of a newest-first list, the first message of each
    conversation, order kept."""
    seen: set[int] = set()
    kept = []
    for message in messages:
        if message.conversation_id not in seen:
            seen.add(message.conversation_id)
            kept.append(message)
    return kept


def store_uri(emu: Emulator, req: Request) -> str:
    assert req.auth is not None
    return (
        f"{emu.base_url}/restapi/v1.0/account/{req.auth.account.id}"
        f"/extension/{req.auth.extension.id}/message-store"
    )


def _owned(emu: Emulator, req: Request, message_id: int) -> StoredMessage | None:
    assert req.auth is not None
    message = emu.messages.get(message_id)
    if message is None or message.extension_id != req.auth.extension.id:
        return None
    return message


# -- read -----------------------------------------------------------------------------------


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

    base = store_uri(emu, req)
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


# -- list -----------------------------------------------------------------------------------


def handle_list(emu: Emulator, req: Request) -> Response:
    """GET ``.../message-store``: newest first; ``dateFrom`` defaults to ``dateTo`` - 24 h."""
    check_path_owner(emu, req)
    assert req.auth is not None
    now = emu.now()
    date_to = date_param(req, "dateTo", now)
    date_from = date_param(req, "dateFrom", date_to - DEFAULT_WINDOW)
    directions = multi(req, "direction", DIRECTIONS)
    types = multi(req, "messageType", MESSAGE_TYPES)
    read_statuses = multi(req, "readStatus", READ_STATUSES)
    availability = multi(req, "availability", AVAILABILITIES)
    distinct = bool_param(req, "distinctConversations")
    page, per_page = page_params(req)
    conversation = req.query_one("conversationId")
    phone = req.query_one("phoneNumber")

    selected = newest_first(
        [
            m
            for m in emu.messages.for_extension(req.auth.extension.id)
            if date_from <= m.created_at <= date_to
            and (not directions or m.direction in directions)
            and (not types or "SMS" in types)
            and (not read_statuses or m.read_status in read_statuses)
            # Nothing is ever deleted here: every record is Alive.
            and (not availability or "Alive" in availability)
            and (conversation is None or str(m.conversation_id) == conversation)
            and (phone is None or phone in m.participants)
        ]
    )
    if distinct:
        selected = latest_per_conversation(selected)
    base = store_uri(emu, req)
    chunk, paging, navigation = paginate(req, base, selected, page, per_page)
    body = {
        "uri": base,
        "records": [m.to_json(emu.base_url, now) for m in chunk],
        "paging": paging,
        "navigation": navigation,
    }
    return Response.json(200, body)


# -- update ---------------------------------------------------------------------------------


def handle_update(emu: Emulator, req: Request) -> Response:
    """PUT ``.../message-store/{id}`` with ``{"readStatus": "Read"|"Unread"}`` (``updateMessage``).

    The read status is all the endpoint changes (the spec says so). Bulk forms (several ids,
    ``*``, the multipart bodies) are not emulated and are refused.
    """
    check_path_owner(emu, req)
    raw_id = req.params["ids"]
    if "," in raw_id or raw_id.strip() == "*":
        raise invalid_parameter(
            "messageId", "Bulk update is not supported by the emulator: one message id per request"
        )
    if not raw_id.strip().isdigit():
        raise invalid_parameter("messageId")
    if req.media_type != "application/json":
        raise unsupported_media_type(req.content_type)
    body = req.json()
    if not isinstance(body, dict):
        raise invalid_parameter("body", "The request body must be a JSON object")
    for name in body:
        if name != "readStatus":
            raise invalid_parameter(name, f"Parameter [{name}] cannot be updated")
    if "readStatus" not in body:
        raise invalid_parameter("readStatus", "Parameter [readStatus] is required")
    read_status = body["readStatus"]
    if read_status not in READ_STATUSES:
        raise invalid_parameter("readStatus")
    message = _owned(emu, req, int(raw_id))
    if message is None:
        raise not_found("messageId")
    now = emu.now()
    updated = emu.set_read_status(message.id, read_status)
    return Response.json(200, updated.to_json(emu.base_url, now))


# -- content --------------------------------------------------------------------------------


def _header_safe(text: str) -> str:
    """No control characters: a query parameter must not be able to add header lines."""
    return "".join(c if c.isprintable() else "_" for c in text)


def content_disposition(kind: str, filename: str) -> str:
    """``inline``/``attachment`` with an ASCII ``filename`` and, when the name is not ASCII,
    the exact one as RFC 6266's ``filename*``."""
    name = _header_safe(filename)
    fallback = name.encode("ascii", "replace").decode("ascii").replace('"', "'").replace("\\", "_")
    value = f'{kind.lower()}; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


def handle_content(emu: Emulator, req: Request) -> Response:
    """GET ``.../message-store/{id}/content/{attachmentId}``: the stored bytes, typed as stored.

    ``contentDisposition`` (``Inline``/``Attachment``) adds a ``Content-Disposition`` header
    named after the file or ``contentDispositionFilename``; without it there is none.
    """
    check_path_owner(emu, req)
    disposition = req.query_one("contentDisposition")
    if disposition is not None and disposition not in DISPOSITIONS:
        raise invalid_parameter("contentDisposition")
    filename = req.query_one("contentDispositionFilename")
    if filename is not None and (disposition is None or not filename):
        raise invalid_parameter("contentDispositionFilename")
    try:
        message_id = int(req.params["ids"])
        attachment_id = int(req.params["attachment"])
    except ValueError:
        raise not_found("messageId") from None
    message = _owned(emu, req, message_id)
    if message is None:
        raise not_found("messageId")
    if attachment_id == message.text_attachment_id and message.text:
        response = Response(200, message.text.encode("utf-8"), "text/plain; charset=UTF-8")
        default_name = f"{message.id}.txt"
    else:
        item = next((a for a in message.attachments if a.id == attachment_id), None)
        if item is None:
            raise not_found("attachmentId")
        response = Response(200, item.data, item.content_type)
        default_name = item.filename
    if disposition is not None:
        response.headers["Content-Disposition"] = content_disposition(
            disposition, filename or default_name
        )
    return response
