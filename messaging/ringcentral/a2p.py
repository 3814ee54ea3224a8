"""High Volume SMS on the wire: batch bodies within RingCentral's limits, and its answers read.

    plan_batches(from_number, messages) -> list of lists      (each fits one request)
    build_batch(from_number, messages) -> bytes               (the JSON body of one request)
    parse_batch(data) -> BatchInfo                            (`MessageBatchResponse`)
    parse_message_page(data) -> (records, next page token)    (`MessageListResponse`)

A batch is one `POST …/a2p-sms/batches` from a number with the `A2PSmsSender` feature: a
top-level `text` and `messages`, each `{"to": [one number]}` with its own `text` only where it
differs. The text most shared (by the bytes it saves) is the top-level one, so a campaign whose
texts are all alike costs a few bytes per recipient. A request holds at most
`limits.A2P_MAX_MESSAGES_PER_BATCH` messages and `limits.A2P_MAX_BATCH_BYTES` of body.

RingCentral lists recipients it will not text in the create answer's `rejected` (`index` counts
the request's messages from 1); reading the batch later lists none. A batch is `Processing`
until every message was handed on, then `Completed` (the spec also names `Queued` and `Sent`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import errors, limits
from .consents import parse_time_precise

# Batch statuses after which no message of it is waiting to leave.
PROCESSED_STATUSES = frozenset({"Completed", "Sent"})
# A guard: a batch of 10,000 messages is 10 pages; a server that never stops paging is a bug.
MAX_PAGES = 1000


@dataclass(frozen=True)
class BatchMessage:
    """One text to one number."""

    to: str
    text: str


@dataclass(frozen=True)
class Rejected:
    """A recipient RingCentral left out of a batch: its position in the request (from 1)."""

    index: int
    to: str
    code: str
    description: str


@dataclass(frozen=True)
class BatchInfo:
    id: str
    from_number: str
    size: int
    processed: int
    status: str
    created_at: datetime | None
    rejected: tuple[Rejected, ...] = ()
    cost: float | None = None

    @property
    def done(self) -> bool:
        """Every message of the batch has left RingCentral (delivery reports may follow)."""
        return self.status in PROCESSED_STATUSES or (self.size > 0 and self.processed >= self.size)


@dataclass(frozen=True)
class A2PMessage:
    """One message of the High Volume store. `id` is a string whatever the answer's type."""

    id: str
    batch_id: str
    to: str
    status: str
    error_code: str = ""
    created_at: datetime | None = None
    segments: int | None = None
    cost: float | None = None


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# What a message's own text costs besides the text itself: `,"text":`.
_TEXT_FIELD = len(',"text":')


def common_text(messages: Sequence[BatchMessage]) -> str:
    """The text sent once at the top: the one whose sharing saves the most bytes (the first of
    equals). So a request's own choice never makes it larger than any other text would."""
    counts = Counter(message.text for message in messages)

    def saving(text: str) -> int:
        size = len(_dump(text))
        return counts[text] * (size + _TEXT_FIELD) - size

    return max(counts, key=saving) if counts else ""


def _entry(message: BatchMessage, common: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"to": [message.to]}
    if message.text != common:
        entry["text"] = message.text
    return entry


def build_batch(from_number: str, messages: Sequence[BatchMessage]) -> bytes:
    """The JSON body of one batch request. Raises `ValueError` past the limits."""
    if not 1 <= len(messages) <= limits.A2P_MAX_MESSAGES_PER_BATCH:
        raise ValueError(f"1 to {limits.A2P_MAX_MESSAGES_PER_BATCH:,} messages per batch")
    common = common_text(messages)
    body = _dump(
        {
            "from": from_number,
            "text": common,
            "messages": [_entry(message, common) for message in messages],
        }
    )
    if len(body) > limits.A2P_MAX_BATCH_BYTES:
        raise ValueError(f"a batch body is at most {limits.A2P_MAX_BATCH_BYTES:,} bytes")
    return body


def plan_batches(
    from_number: str,
    messages: Sequence[BatchMessage],
    *,
    max_messages: int = limits.A2P_MAX_MESSAGES_PER_BATCH,
    max_bytes: int = limits.A2P_MAX_BATCH_BYTES,
) -> list[list[BatchMessage]]:
    """`messages` cut, in order, into as few requests as the limits allow.

    Sizes are the exact bytes `build_batch` writes with the common text of all the messages at
    the top of every request; `build_batch` picks each request's own, which is never larger.
    Raises `ValueError` when one message alone cannot fit.
    """
    common = common_text(messages)
    envelope = len(_dump({"from": from_number, "text": common, "messages": []}))
    batches: list[list[BatchMessage]] = []
    current: list[BatchMessage] = []
    size = envelope
    for message in messages:
        # Every entry after the first is preceded by a comma.
        cost = len(_dump(_entry(message, common))) + (1 if current else 0)
        if current and (len(current) >= max_messages or size + cost > max_bytes):
            batches.append(current)
            current, size = [], envelope
            cost -= 1
        if envelope + cost > max_bytes:
            raise ValueError("one message is larger than a whole batch may be")
        current.append(message)
        size += cost
    if current:
        batches.append(current)
    return batches


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _first_number(value: Any) -> str:
    if isinstance(value, list) and value:
        return str(value[0])
    return str(value) if isinstance(value, str) else ""


def parse_batch(data: Any) -> BatchInfo:
    """A `MessageBatchResponse` (the create answer, a read, an entry of the list)."""
    if not isinstance(data, dict) or not data.get("id"):
        raise errors.UnexpectedResponse("High Volume batch without an id")
    rejected = tuple(
        Rejected(
            index=_int(item.get("index")),
            to=_first_number(item.get("to")),
            code=str(item.get("errorCode") or ""),
            description=str(item.get("description") or ""),
        )
        for item in data.get("rejected") or ()
        if isinstance(item, dict)
    )
    return BatchInfo(
        id=str(data["id"]),
        from_number=str(data.get("from") or ""),
        size=_int(data.get("batchSize")),
        processed=_int(data.get("processedCount")),
        status=str(data.get("status") or ""),
        created_at=parse_time_precise(data.get("creationTime")),
        rejected=rejected,
        cost=_float(data.get("cost")),
    )


def parse_message(data: Any) -> A2PMessage | None:
    """One record of the message list (or a single message read); None when unreadable."""
    if not isinstance(data, dict) or data.get("id") in (None, ""):
        return None
    return A2PMessage(
        id=str(data["id"]),
        batch_id=str(data.get("batchId") or ""),
        to=_first_number(data.get("to")),
        status=str(data.get("messageStatus") or ""),
        error_code=str(data.get("errorCode") or ""),
        created_at=parse_time_precise(data.get("creationTime")),
        segments=_int(data.get("segmentCount")) or None,
        cost=_float(data.get("cost")),
    )


def parse_message_page(data: Any) -> tuple[list[A2PMessage], str]:
    """The readable records of one page of `…/a2p-sms/messages` and the next page's token."""
    raw = data.get("records") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise errors.UnexpectedResponse("High Volume message list without records")
    paging = data.get("paging") if isinstance(data.get("paging"), dict) else {}
    records = [parse_message(item) for item in raw]
    return [r for r in records if r is not None], str(paging.get("nextPageToken") or "")
