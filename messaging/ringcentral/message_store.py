"""Reading sent messages back from RingCentral's message store, many per request.

    read = client.read_messages(["3154000000001", "3154000000002", ...])   # <= MAX_IDS_PER_READ
    read.found["3154000000001"] -> records.MessageRecord(status, recipients, error_code, ...)
    read.missing -> ids RingCentral does not know (deleted, or another user's)

One id is `GET …/message-store/{id}` (200, JSON); several are one comma-separated bulk read
(`…/message-store/{id},{id},…`, HTTP 207). The 207 body is `multipart/mixed`: a first part that
lists each id's status (`{"response": [{"href", "status"}, …]}`), then one JSON part per id in the
order asked, an error body for an id that failed. RingCentral's JSON flavour of the same answer
(`application/vnd.ringcentral.multipart+json`) is read too. Both are Light-group requests.

`build_read` makes the request without sending it; `parse_read` reads any answer;
`RingCentralClient.read_messages` does both (token refresh, typed errors).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from requests_toolbelt.multipart.decoder import MultipartDecoder, NonMultipartContentTypeException

from . import errors, paths
from .records import MessageRecord, parse_message

# RingCentral's cap on ids in one bulk request (its spec gives 50 for message bulk syntax).
MAX_IDS_PER_READ = 50
BULK_JSON = "application/vnd.ringcentral.multipart+json"

_ID = re.compile(r"^[0-9]{1,32}$")


@dataclass
class ReadResult:
    found: dict[str, MessageRecord] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    # Ids answered with another error (status code), to be read again later.
    failed: dict[str, int] = field(default_factory=dict)
    # The response's headers, for the rate limiter (X-Rate-Limit-*).
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadRequest:
    method: str
    path: str
    ids: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict)


def build_read(ids) -> ReadRequest:
    """The request that reads `ids` (1 to MAX_IDS_PER_READ RingCentral message ids)."""
    ids = tuple(dict.fromkeys(str(i) for i in ids))
    if not ids:
        raise ValueError("no message ids to read")
    if len(ids) > MAX_IDS_PER_READ:
        raise ValueError(f"at most {MAX_IDS_PER_READ} ids per read, got {len(ids)}")
    bad = [i for i in ids if not _ID.match(i)]
    if bad:
        raise ValueError(f"not RingCentral message ids: {bad[:3]}")
    return ReadRequest(
        "GET",
        f"{paths.MESSAGE_STORE}/{','.join(ids)}",
        ids,
        # The bulk answer is multipart/mixed by default; a single id answers plain JSON.
        {"Accept": f"application/json, multipart/mixed, {BULK_JSON}"},
    )


def parse_read(status: int, headers, body: bytes, ids) -> ReadResult:
    """Turn a 200 (one id) or 207 (bulk) answer into a `ReadResult`.

    Raises `errors.UnexpectedResponse` for a body that is not what RingCentral promises.
    """
    ids = tuple(str(i) for i in ids)
    result = ReadResult(headers={str(k): str(v) for k, v in dict(headers).items()})
    content_type = _header(headers, "Content-Type")
    if status == 200:
        record = parse_message(_json(body))
        _place(result, ids, record.id, 200, record)
        return result
    if status != 207:
        raise errors.UnexpectedResponse(f"message-store read answered HTTP {status}")
    if content_type.split(";", 1)[0].strip().lower() == BULK_JSON:
        items = _json(body)
        if not isinstance(items, list):
            raise errors.UnexpectedResponse("bulk read: JSON answer is not a list")
        for position, item in enumerate(items):
            if not isinstance(item, dict):
                raise errors.UnexpectedResponse("bulk read: item is not an object")
            _place_part(result, ids, position, item.get("resourceId"), item.get("status"), item)
        return result
    parts = _multipart(body, content_type)
    if not parts:
        raise errors.UnexpectedResponse("bulk read: empty multipart answer")
    summary = parts[0].get("response") if isinstance(parts[0], dict) else None
    if not isinstance(summary, list):
        raise errors.UnexpectedResponse("bulk read: first part is not the status list")
    bodies = parts[1:]
    for position, body_part in enumerate(bodies):
        entry = summary[position] if position < len(summary) else {}
        entry = entry if isinstance(entry, dict) else {}
        href_id = str(entry.get("href") or "").rstrip("/").rsplit("/", 1)[-1] or None
        _place_part(result, ids, position, href_id, entry.get("status"), {"body": body_part})
    return result


# --- plumbing -----------------------------------------------------------------------------------


def _header(headers, name: str) -> str:
    for key, value in dict(headers).items():
        if str(key).lower() == name.lower():
            return str(value)
    return ""


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # RecursionError: nested past Python's stack
        raise errors.UnexpectedResponse("message-store answer is not JSON") from None


def _multipart(body: bytes, content_type: str) -> list[Any]:
    try:
        decoder = MultipartDecoder(body, content_type)
    except (NonMultipartContentTypeException, ValueError, IndexError) as exc:
        raise errors.UnexpectedResponse(f"bulk read: unreadable multipart ({exc})") from None
    return [_json(part.content) for part in decoder.parts]


def _place(result: ReadResult, ids, resource_id, status, record: MessageRecord | None) -> None:
    if resource_id not in ids:
        raise errors.UnexpectedResponse(
            f"message-store answered for an id not asked: {resource_id}"
        )
    if record is not None:
        result.found[resource_id] = record
    elif status == 404:
        result.missing.add(resource_id)
    else:
        result.failed[resource_id] = int(status or 0)


def _place_part(result: ReadResult, ids, position: int, resource_id, status, item) -> None:
    # A successful part names its id in its body; an error part only through the status list,
    # whose entries come in the order the ids were asked.
    try:
        status = int(status) if status is not None else None
    except (TypeError, ValueError):
        status = None
    body = item.get("body")
    if status is None:
        status = 200 if isinstance(body, dict) and "id" in body else 0
    if status == 200:
        record = parse_message(body)
        _place(result, ids, record.id, 200, record)
        return
    if resource_id is None or str(resource_id) not in ids:
        if position >= len(ids):
            raise errors.UnexpectedResponse("bulk read: more parts than ids")
        resource_id = ids[position]
    _place(result, ids, str(resource_id), status, None)
