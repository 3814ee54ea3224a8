"""High Volume SMS: ``/restapi/v1.0/account/{accountId}/a2p-sms/…`` (batches and their messages).

A batch is one ``POST …/a2p-sms/batches`` of ``MessageBatchCreateRequest``: ``from`` (a number of
the account with the ``A2PSmsSender`` feature), an optional top-level ``text`` and ``messages``,
each ``{to: [one number], text?}`` (its own text overrides the top-level one). Recipients the
emulator cannot text are left out of the batch and listed in the answer's ``rejected``
(``index`` from 1, ``to``, ``errorCode``, ``description``); only that answer lists them, reading
the batch later answers ``rejected: []`` (developer guide, "Sending High Volume SMS").

The High Volume store is separate from the message store, as at RingCentral. The messages of a
batch leave one after another, ``a2p_messages_per_second`` of them a second per sending number
(a number's batches queue behind each other); each one then follows its recipient's behaviour
(``RecipientTrack``: Queued, then Sent and Delivered / DeliveryFailed, or SendingFailed) and an
opted-out pair ends SendingFailed with SMS-RC-413. A message is processed once it has left
Queued; the batch is ``Processing`` until every message is, then ``Completed`` with its cost.

Errors use the ASG shape of these endpoints (``errorCode``, ``message``, ``errors[]`` without
``parameterName``). Lists are newest first and paged by opaque ``pageToken``s; ``perPage`` is 1
to 1000 (default 1000); ``dateFrom`` defaults to ``dateTo`` (default now) minus 24 hours.
"""

from __future__ import annotations

import base64
import itertools
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .clock import iso, parse_iso
from .errors import ApiError, unsupported_media_type
from .identity import check_path_owner
from .messages import RecipientTrack, outbound_tracks, segment_count, utf16_units
from .state import E164
from .wire import Request, Response

if TYPE_CHECKING:
    from .emulator import Emulator

# Statuses a batch may be filtered by (the spec's list); the emulator reports the two the
# developer guide documents for reading a batch.
BATCH_FILTER_STATUSES = ("Queued", "Processing", "Sent", "Completed")
PROCESSING = "Processing"
COMPLETED = "Completed"
MESSAGE_STATUSES = ("Queued", "Delivered", "Sent", "SendingFailed", "DeliveryFailed")
FAILED = ("SendingFailed", "DeliveryFailed")
DIRECTIONS = ("Inbound", "Outbound")
VIEWS = ("Simple", "Detailed")
MAX_PER_PAGE = 1000
MAX_PHONE_FILTERS = 15
DEFAULT_FRAME = 24 * 3600.0
# The developer guide's example price of one segment.
COST_PER_SEGMENT = 0.007
# Rejected recipients (developer guide: "SMS-RC-410 The recipient number is invalid").
INVALID_RECIPIENT = "SMS-RC-410"


def asg_error(status: int, code: str, message: str) -> ApiError:
    """An error in the ASG shape: the pair at the top and once in ``errors``."""
    return ApiError(status, code, message)


def invalid(name: str, why: str = "") -> ApiError:
    text = f"Parameter [{name}] value is invalid."
    return asg_error(400, "CMN-101", f"{text} {why}".strip())


def missing(name: str) -> ApiError:
    return asg_error(400, "CMN-100", f"Mandatory parameter [{name}] not specified.")


def not_found(name: str) -> ApiError:
    return asg_error(404, "CMN-102", f"Resource for parameter [{name}] is not found.")


@dataclass(frozen=True)
class A2PMessage:
    id: int
    batch_id: str
    account_id: str
    from_number: str
    to_number: str
    text: str
    created_at: float
    track: RecipientTrack

    def status(self, now: float) -> str:
        return self.track.state(now)[0]

    def processed(self, now: float) -> bool:
        return self.status(now) != "Queued"

    def last_modified(self, now: float) -> float:
        return max(self.created_at, self.track.state(now)[1])

    def cost(self, now: float) -> float:
        return round(COST_PER_SEGMENT * segment_count(self.text), 6) if self.processed(now) else 0.0

    def to_json(self, now: float, *, detailed: bool, id_as_text: bool = False) -> dict[str, Any]:
        """``MessageListMessageResponse`` (``id`` a number) or, with ``id_as_text``,
        ``MessageDetailsResponse`` (``id`` a string)."""
        status = self.status(now)
        record: dict[str, Any] = {
            "id": str(self.id) if id_as_text else self.id,
            "batchId": self.batch_id,
            "from": self.from_number,
            "to": [self.to_number],
            "creationTime": iso(self.created_at),
            "lastModifiedTime": iso(self.last_modified(now)),
            "messageStatus": status,
            "segmentCount": segment_count(self.text),
            "direction": "Outbound",
        }
        if self.processed(now):
            record["cost"] = self.cost(now)
        if status in FAILED and self.track.error_code:
            record["errorCode"] = self.track.error_code
        if detailed:
            record["text"] = self.text
        return record


@dataclass(frozen=True)
class Batch:
    id: str
    seq: int
    account_id: str
    from_number: str
    created_at: float
    messages: tuple[A2PMessage, ...]

    def processed_count(self, now: float) -> int:
        return sum(1 for m in self.messages if m.processed(now))

    def status(self, now: float) -> str:
        return COMPLETED if self.processed_count(now) == len(self.messages) else PROCESSING

    def to_json(self, now: float, rejected: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
        """``MessageBatchResponse``."""
        processed = self.processed_count(now)
        status = self.status(now)
        body: dict[str, Any] = {
            "id": self.id,
            "from": self.from_number,
            "batchSize": len(self.messages),
            "processedCount": processed,
            "status": status,
            "creationTime": iso(self.created_at),
            "lastModifiedTime": iso(
                max([self.created_at, *(m.last_modified(now) for m in self.messages)])
            ),
            "rejected": list(rejected),
        }
        if status == COMPLETED:
            body["cost"] = round(sum(m.cost(now) for m in self.messages), 6)
        return body


class A2PStore:
    """Every account's batches and High Volume messages, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: dict[str, Batch] = {}
        self._messages: dict[int, A2PMessage] = {}
        self._ids = itertools.count(8_410_000_001)
        self._seq = itertools.count(1)
        # When each sending number is through with the batches it has already been given.
        self._free_at: dict[str, float] = {}

    def create(
        self,
        account_id: str,
        from_number: str,
        items: list[tuple[str, str]],
        now: float,
        rate: float,
        tracks: Callable[[str, float], RecipientTrack],
    ) -> Batch:
        """A batch of ``items`` (to, text) from ``from_number``; its messages leave ``rate`` a
        second after the number's earlier batches."""
        batch_id = str(uuid.uuid4())
        with self._lock:
            start = max(now, self._free_at.get(from_number, now))
            messages = []
            for index, (to, text) in enumerate(items):
                leaves = start + (index + 1) / rate
                messages.append(
                    A2PMessage(
                        id=next(self._ids),
                        batch_id=batch_id,
                        account_id=account_id,
                        from_number=from_number,
                        to_number=to,
                        text=text,
                        created_at=now,
                        track=tracks(to, leaves),
                    )
                )
            if items:
                self._free_at[from_number] = start + len(items) / rate
            batch = Batch(batch_id, next(self._seq), account_id, from_number, now, tuple(messages))
            self._batches[batch_id] = batch
            self._messages.update((m.id, m) for m in messages)
            return batch

    def batch(self, account_id: str, batch_id: str) -> Batch | None:
        with self._lock:
            found = self._batches.get(batch_id)
        return found if found is not None and found.account_id == account_id else None

    def batches(self, account_id: str | None = None) -> list[Batch]:
        """Newest first."""
        with self._lock:
            found = list(self._batches.values())
        found = [b for b in found if account_id is None or b.account_id == account_id]
        return sorted(found, key=lambda b: -b.seq)

    def message(self, account_id: str, message_id: int) -> A2PMessage | None:
        with self._lock:
            found = self._messages.get(message_id)
        return found if found is not None and found.account_id == account_id else None

    def messages(self, account_id: str | None = None) -> list[A2PMessage]:
        """Newest first."""
        with self._lock:
            found = list(self._messages.values())
        found = [m for m in found if account_id is None or m.account_id == account_id]
        return sorted(found, key=lambda m: -m.id)

    def clear(self) -> None:
        with self._lock:
            self._batches.clear()
            self._messages.clear()
            self._free_at.clear()


# -- create ------------------------------------------------------------------------------------


def _text(value: Any, name: str, max_units: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(name)
    if utf16_units(value) > max_units:
        raise invalid(name, f"The maximum number of characters is {max_units}.")
    return value


def _sender(emu: Emulator, req: Request, value: Any) -> str:
    assert req.auth is not None
    if value is None:
        raise missing("from")
    if not isinstance(value, str) or not E164.match(value):
        raise invalid("from")
    owner = emu.world.owner_of(value)
    if owner is None or owner.account_id != req.auth.account.id:
        raise invalid("from", "The phone number does not belong to the account.")
    number = owner.number(value)
    if number is None or not number.has("A2PSmsSender"):
        raise invalid("from", "The phone number has no A2PSmsSender feature.")
    return value


def _rejection(index: int, to: str, why: str) -> dict[str, Any]:
    return {"index": index, "to": [to], "errorCode": INVALID_RECIPIENT, "description": why}


def _recipient_problem(to: str) -> str | None:
    if not E164.match(to):
        return "The recipient number is invalid"
    if not to.startswith("+1"):
        return "The recipient number is not a US or Canadian number"
    return None


def handle_create(emu: Emulator, req: Request) -> Response:
    """POST ``…/a2p-sms/batches``: 201 ``MessageBatchResponse`` with ``rejected``."""
    check_path_owner(emu, req)
    assert req.auth is not None
    if req.media_type != "application/json":
        raise unsupported_media_type(req.content_type)
    try:
        body = req.json()
    except ApiError:
        raise asg_error(400, "CMN-104", "Cannot parse request") from None
    if not isinstance(body, dict):
        raise asg_error(400, "CMN-104", "Cannot parse request")
    config = emu.config
    from_number = _sender(emu, req, body.get("from"))
    common = _text(body.get("text"), "text", config.max_text_units)
    items = body.get("messages")
    if items is None:
        raise missing("messages")
    if not isinstance(items, list) or not items:
        raise invalid("messages")
    if len(items) > config.a2p_max_messages:
        raise invalid("messages", f"At most {config.a2p_max_messages} messages per request.")
    accepted: list[tuple[str, str]] = []
    rejected: list[dict[str, Any]] = []
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise invalid("messages")
        to = item.get("to")
        if to is None:
            raise missing("messages.to")
        if not isinstance(to, list) or len(to) != 1 or not isinstance(to[0], str):
            raise invalid("messages.to", "Exactly one phone number per message is supported.")
        text = _text(item.get("text"), "messages.text", config.max_text_units)
        if text is None:
            text = common
        if not text:
            raise missing("text")
        problem = _recipient_problem(to[0])
        if problem is not None:
            rejected.append(_rejection(position, to[0], problem))
            continue
        accepted.append((to[0], text))

    account_id = req.auth.account.id

    def commit() -> Response:
        now = emu.now()
        batch = emu.a2p.create(
            account_id,
            from_number,
            accepted,
            now,
            config.a2p_messages_per_second,
            lambda to, at: outbound_tracks(emu, from_number, [to], at)[0],
        )
        return Response.json(201, batch.to_json(now, rejected))

    return Response(201, commit=commit)


# -- read --------------------------------------------------------------------------------------


def _token(kind: str, after: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{after}".encode()).decode().rstrip("=")


def _after(req: Request, kind: str) -> int | None:
    """The position a ``pageToken`` continues after; None for the first page."""
    token = req.query_one("pageToken")
    if token is None or token == "":
        return None
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != kind or not number.isdigit():
            raise ValueError
    except ValueError:
        raise invalid("pageToken") from None
    return int(number) or None


def _per_page(req: Request) -> int:
    raw = req.query_one("perPage")
    if raw is None:
        return MAX_PER_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PER_PAGE:
        raise invalid("perPage")
    return int(raw)


def _page(
    req: Request, kind: str, items: list[Any], position: Callable[[Any], int]
) -> tuple[list[Any], dict[str, Any]]:
    """One page of ``items`` (ordered by descending ``position``) and its ``paging`` block."""
    per_page = _per_page(req)
    after = _after(req, kind)
    if after is not None:
        items = [item for item in items if position(item) < after]
    chunk = items[:per_page]
    paging: dict[str, Any] = {"perPage": per_page, "firstPageToken": _token(kind, 0)}
    if chunk:
        paging["pageToken"] = req.query_one("pageToken") or _token(kind, 0)
    if len(items) > per_page:
        paging["nextPageToken"] = _token(kind, position(chunk[-1]))
    return chunk, paging


def _frame(req: Request, now: float) -> tuple[float, float]:
    """[dateFrom, dateTo], both included: ``dateTo`` defaults to now, ``dateFrom`` to 24 hours
    before it."""

    def moment(name: str) -> float | None:
        raw = req.query_one(name)
        if raw is None:
            return None
        try:
            return parse_iso(raw)
        except ValueError:
            raise invalid(name) from None

    date_to = moment("dateTo")
    date_to = now if date_to is None else date_to
    date_from = moment("dateFrom")
    return (date_to - DEFAULT_FRAME if date_from is None else date_from), date_to


def _choices(req: Request, name: str, allowed: tuple[str, ...]) -> set[str] | None:
    values = [item for value in req.query.get(name, []) for item in value.split(",") if item]
    if not values:
        return None
    if not set(values) <= set(allowed):
        raise invalid(name)
    return set(values)


def _number(value: str, name: str) -> str:
    """E.164, also written without the ``+`` (as the spec's examples are)."""
    number = value if value.startswith("+") else f"+{value}"
    if not E164.match(number):
        raise invalid(name)
    return number


def handle_read_batch(emu: Emulator, req: Request) -> Response:
    check_path_owner(emu, req)
    assert req.auth is not None
    batch = emu.a2p.batch(req.auth.account.id, req.params["batch"])
    if batch is None:
        raise not_found("batchId")
    return Response.json(200, batch.to_json(emu.now()))


def handle_list_batches(emu: Emulator, req: Request) -> Response:
    check_path_owner(emu, req)
    assert req.auth is not None
    now = emu.now()
    start, end = _frame(req, now)
    sender = req.query_one("from")
    sender = _number(sender, "from") if sender else None
    statuses = _choices(req, "status", BATCH_FILTER_STATUSES)
    found = [
        batch
        for batch in emu.a2p.batches(req.auth.account.id)
        if start <= batch.created_at <= end
        and (sender is None or batch.from_number == sender)
        and (statuses is None or batch.status(now) in statuses)
    ]
    chunk, paging = _page(req, "batches", found, lambda b: b.seq)
    return Response.json(200, {"records": [b.to_json(now) for b in chunk], "paging": paging})


def _matching_messages(emu: Emulator, req: Request, now: float) -> list[A2PMessage]:
    """The account's messages the query's filters keep, newest first."""
    assert req.auth is not None
    account_id = req.auth.account.id
    start, end = _frame(req, now)
    directions = _choices(req, "direction", DIRECTIONS)
    numbers_given = [
        item for value in req.query.get("phoneNumber", []) for item in value.split(",")
    ]
    if len(numbers_given) > MAX_PHONE_FILTERS:
        raise invalid("phoneNumber", f"At most {MAX_PHONE_FILTERS} phone numbers.")
    numbers = {_number(n, "phoneNumber") for n in numbers_given if n}
    batch_id = req.query_one("batchId")
    if batch_id is not None:
        batch = emu.a2p.batch(account_id, batch_id)
        if batch is None:
            raise not_found("batchId")
        candidates = sorted(batch.messages, key=lambda m: -m.id)
    else:
        candidates = emu.a2p.messages(account_id)
    return [
        message
        for message in candidates
        if start <= message.created_at <= end
        and (directions is None or "Outbound" in directions)
        and (not numbers or message.from_number in numbers or message.to_number in numbers)
    ]


def handle_list_messages(emu: Emulator, req: Request) -> Response:
    check_path_owner(emu, req)
    view = req.query_one("view") or "Simple"
    if view not in VIEWS:
        raise invalid("view")
    now = emu.now()
    found = _matching_messages(emu, req, now)
    chunk, paging = _page(req, "messages", found, lambda m: m.id)
    records = [m.to_json(now, detailed=view == "Detailed") for m in chunk]
    return Response.json(200, {"records": records, "paging": paging})


def handle_read_message(emu: Emulator, req: Request) -> Response:
    check_path_owner(emu, req)
    assert req.auth is not None
    raw = req.params["message"]
    message = emu.a2p.message(req.auth.account.id, int(raw)) if raw.isdigit() else None
    if message is None:
        raise not_found("messageId")
    return Response.json(200, message.to_json(emu.now(), detailed=True, id_as_text=True))


def handle_statuses(emu: Emulator, req: Request) -> Response:
    """GET ``…/a2p-sms/statuses``: ``MessageStatusesResponse``, counts by status."""
    check_path_owner(emu, req)
    now = emu.now()
    keys = {
        "Queued": "queued",
        "Delivered": "delivered",
        "DeliveryFailed": "deliveryFailed",
        "Sent": "sent",
        "SendingFailed": "sendingFailed",
    }
    body: dict[str, dict[str, Any]] = {key: {"count": 0, "cost": 0.0} for key in keys.values()}
    for key in ("deliveryFailed", "sendingFailed"):
        body[key]["errorCodeCounts"] = {}
    for message in _matching_messages(emu, req, now):
        entry = body[keys[message.status(now)]]
        entry["count"] += 1
        entry["cost"] = round(entry["cost"] + message.cost(now), 6)
        if "errorCodeCounts" in entry and message.track.error_code:
            codes = entry["errorCodeCounts"]
            codes[message.track.error_code] = codes.get(message.track.error_code, 0) + 1
    return Response.json(200, body)
