"""Message sync: ``GET .../message-sync`` (``syncMessages``), full and incremental.

FSync answers the records of a frame (message types, directions, conversation, creation dates),
newest first and without paging, with a token that remembers the frame. ISync with that token
answers the frame's records created or modified (status, read status) since the token's
``syncTime`` minus ``sync_overlap`` seconds, and a new token. The overlap is deliberate, as
RingCentral documents it (5 s): no change falls between two syncs, so a record can come twice
and clients de-duplicate by id.

Tokens are random strings kept here with their frame. One stays valid for ``sync_token_ttl``
seconds after it was issued, used or not (a client may repeat an ISync whose answer it lost),
unless ``invalidate`` drops it. An unknown, malformed, expired or dropped token, or an ISync
without one, is 400 MSG-333: the client must start again with an FSync.
"""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from .clock import iso
from .errors import ApiError, invalid_parameter
from .identity import check_path_owner
from .messages import DIRECTIONS, MESSAGE_TYPES, StoredMessage
from .store import (
    DEFAULT_WINDOW,
    bool_param,
    date_param,
    latest_per_conversation,
    multi,
    newest_first,
)
from .wire import Request, Response

if TYPE_CHECKING:
    from .emulator import Emulator

TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32}$")
SYNC_TYPES = ("FSync", "ISync")
# The parameters that define a frame: FSync only (an ISync's frame comes from its token).
FRAME_PARAMETERS = (
    "messageType",
    "direction",
    "conversationId",
    "distinctConversations",
    "dateFrom",
    "dateTo",
    "recordCount",
)
MAX_RECORD_COUNT = 2**31 - 1  # the spec's int32


def full_sync_required() -> ApiError:
    return ApiError(
        400,
        "MSG-333",
        "Full synchronization is required: the syncToken is missing, invalid or expired",
        parameter_name="syncToken",
    )


@dataclass(frozen=True)
class SyncFrame:
    """What a sync covers. ``date_to`` None is an open frame: up to the time of each sync."""

    extension_id: int
    types: tuple[str, ...]
    directions: tuple[str, ...]
    conversation_id: int | None
    distinct: bool
    date_from: float
    date_to: float | None

    def selects(self, message: StoredMessage) -> bool:
        """The filters other than the creation dates."""
        return (
            message.extension_id == self.extension_id
            and (not self.types or "SMS" in self.types)
            and (not self.directions or message.direction in self.directions)
            and (self.conversation_id is None or message.conversation_id == self.conversation_id)
        )

    def contains(self, message: StoredMessage) -> bool:
        if not self.selects(message) or message.created_at < self.date_from:
            return False
        return self.date_to is None or message.created_at <= self.date_to


@dataclass(frozen=True)
class _Issued:
    frame: SyncFrame
    sync_time: float
    issued_at: float


class SyncTokens:
    """Issued tokens and their frames, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, _Issued] = {}

    def issue(self, frame: SyncFrame, now: float) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = _Issued(frame, now, now)
        return token

    def find(self, token: str, extension_id: int, now: float, ttl: float) -> _Issued | None:
        """The live token of ``extension_id``; None when unknown, malformed or expired."""
        if not TOKEN_SHAPE.match(token):
            return None
        with self._lock:
            issued = self._tokens.get(token)
            if issued is None or issued.frame.extension_id != extension_id:
                return None
            if now - issued.issued_at > ttl:
                del self._tokens[token]
                return None
            return issued

    def invalidate(self, extension_id: int | None = None) -> int:
        """Drop the tokens of ``extension_id`` (all tokens when None); how many were dropped."""
        with self._lock:
            doomed = [
                token
                for token, issued in self._tokens.items()
                if extension_id is None or issued.frame.extension_id == extension_id
            ]
            for token in doomed:
                del self._tokens[token]
            return len(doomed)

    def clear(self) -> None:
        self.invalidate(None)


def _record_count(req: Request) -> int | None:
    raw = req.query_one("recordCount")
    if raw is None:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_RECORD_COUNT:
        raise invalid_parameter("recordCount")
    return int(raw)


def _conversation(req: Request) -> int | None:
    raw = req.query_one("conversationId")
    if raw is None:
        return None
    if not raw.isdigit():
        raise invalid_parameter("conversationId")
    return int(raw)


def _answer(
    emu: Emulator,
    req: Request,
    records: list[StoredMessage],
    sync_type: str,
    token: str,
    now: float,
    older: bool,
) -> Response:
    query = [(name, value) for name, values in req.query.items() for value in values]
    uri = f"{emu.base_url}{req.path}" + (f"?{urlencode(query)}" if query else "")
    body: dict[str, Any] = {
        "uri": uri,
        "records": [m.to_json(emu.base_url, now) for m in records],
        "syncInfo": {
            "syncType": sync_type,
            "syncToken": token,
            "syncTime": iso(now),
            "olderRecordsExist": older,
        },
    }
    return Response.json(200, body)


def _full(emu: Emulator, req: Request) -> Response:
    assert req.auth is not None
    if "syncToken" in req.query:
        raise invalid_parameter("syncToken", "Parameter [syncToken] is for ISync only")
    now = emu.now()
    date_to = date_param(req, "dateTo", now)
    date_from = date_param(req, "dateFrom", date_to - DEFAULT_WINDOW)
    if date_from > date_to:
        raise invalid_parameter("dateFrom", "Parameter [dateFrom] is after [dateTo]")
    frame = SyncFrame(
        extension_id=req.auth.extension.id,
        types=tuple(multi(req, "messageType", MESSAGE_TYPES)),
        directions=tuple(multi(req, "direction", DIRECTIONS)),
        conversation_id=_conversation(req),
        distinct=bool_param(req, "distinctConversations"),
        date_from=date_from,
        date_to=date_to if "dateTo" in req.query else None,
    )
    record_count = _record_count(req)
    mine = emu.messages.for_extension(frame.extension_id)
    found = newest_first([m for m in mine if frame.contains(m)])
    if frame.distinct:
        found = latest_per_conversation(found)
    # Older records exist when recordCount cut the answer or the filters match records
    # created before the frame's start.
    cut = record_count is not None and len(found) > record_count
    before = any(frame.selects(m) and m.created_at < frame.date_from for m in mine)
    records = found[:record_count] if record_count is not None else found
    token = emu.sync_tokens.issue(frame, now)
    return _answer(emu, req, records, "FSync", token, now, cut or before)


def _incremental(emu: Emulator, req: Request) -> Response:
    assert req.auth is not None
    for name in FRAME_PARAMETERS:
        if name in req.query:
            raise invalid_parameter(
                name, f"Parameter [{name}] is not accepted with ISync: the token holds the frame"
            )
    raw = req.query_one("syncToken")
    now = emu.now()
    config = emu.config
    issued = (
        None
        if raw is None
        else emu.sync_tokens.find(raw, req.auth.extension.id, now, config.sync_token_ttl)
    )
    if issued is None:
        raise full_sync_required()
    frame = issued.frame
    since = issued.sync_time - config.sync_overlap
    changed = newest_first(
        [
            m
            for m in emu.messages.for_extension(frame.extension_id)
            if frame.contains(m) and m.changed_at(now) >= since
        ]
    )
    if frame.distinct:
        changed = latest_per_conversation(changed)
    token = emu.sync_tokens.issue(frame, now)
    return _answer(emu, req, changed, "ISync", token, now, False)


def handle_sync(emu: Emulator, req: Request) -> Response:
    check_path_owner(emu, req)
    sync_type = req.query_one("syncType")
    if sync_type is None:
        raise invalid_parameter("syncType", "Parameter [syncType] is required")
    if sync_type not in SYNC_TYPES:
        raise invalid_parameter("syncType")
    if sync_type == "FSync":
        return _full(emu, req)
    return _incremental(emu, req)
