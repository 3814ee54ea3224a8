"""High Volume SMS: a text-only campaign sent in batches from a number with `A2PSmsSender`.

    if is_high_volume_number(sender_number):
        result = send_batches(connection, sender_number.phone_number, items)
        # items: (recipient_key, to, text); result.batches, result.rejected, result.unsent
        ...
        report = read_results(connection, batch.batch_id, batch.recipients)
        # report.done; report.results: status, error code and reason per recipient

This module works on plain data, so the campaign runner decides what is stored. It sends as
few requests as RingCentral's limits allow (`ringcentral.a2p.plan_batches`: 10,000 texts or
50 MB a request), each one granted by the shared rate limiter first (the High Volume endpoints
are in RingCentral's Light group, `limits.A2P_GROUP`), and reads results a page of 1,000 at a
time, again one grant a request.

Opted-out recipients are the caller's to leave out, as in every other way of sending; a list
that still holds one is refused whole, before anything is sent (`OptedOutRecipients`).

A batch that was sent is never forgotten: a failure after the first request ends the run with
`result.error` and the items not sent in `result.unsent`, beside the batches that did go.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from messaging.consent import checks
from messaging.core.phones import format_number
from messaging.links.connections import usable_for
from messaging.links.tokens import client_for
from messaging.models import RingCentralConnection, SenderNumber
from messaging.outbox import delivery_errors
from messaging.ringcentral import a2p, errors, limits
from messaging.ringcentral.client import RingCentralClient
from messaging.sending import ratelimit

log = logging.getLogger(__name__)

# The feature RingCentral gives a number provisioned for High Volume SMS.
A2P_FEATURE = "A2PSmsSender"
# How long one call waits for the shared limiter before it gives the rest back to its caller.
MAX_LIMITER_WAIT = 10.0
# Messages are listed from a little before their batch was created: RingCentral's clock and
# its stamps need not agree to the second.
LIST_MARGIN = timedelta(minutes=1)
# RingCentral's messageStatus values that no report will change any more.
FINAL_STATUSES = frozenset({"Delivered", "DeliveryFailed", "SendingFailed"})
FAILED_STATUSES = frozenset({"DeliveryFailed", "SendingFailed"})


class HighVolumeError(Exception):
    """The items cannot be sent as they are; nothing was sent."""


class OptedOutRecipients(HighVolumeError):
    """Recipients who opted out were among the items; nothing was sent."""

    def __init__(self, numbers: Sequence[str]):
        self.numbers = list(numbers)
        shown = ", ".join(format_number(n) for n in self.numbers[:5])
        more = f" and {len(self.numbers) - 5} more" if len(self.numbers) > 5 else ""
        super().__init__(
            f"Not sent: {len(self.numbers)} recipient(s) opted out of texts from this number "
            f"({shown}{more}). Leave them out and start again."
        )


class LimiterBusy(Exception):
    """The shared rate limiter asked for a longer wait than one call holds a worker."""

    def __init__(self, retry_after: float):
        self.retry_after = retry_after
        super().__init__(
            f"the Light group of this RingCentral user is busy for {retry_after:.0f} s"
        )


@dataclass(frozen=True)
class Item:
    recipient_key: str
    to: str
    text: str


@dataclass(frozen=True)
class Rejection:
    """A recipient RingCentral would not text, with why in the words of the outbox."""

    recipient_key: str
    to: str
    code: str
    reason: str
    fix: str


@dataclass(frozen=True)
class SentBatch:
    batch_id: str
    # to -> recipient_key, for the recipients RingCentral accepted into this batch.
    recipients: dict[str, str]


@dataclass
class SendResult:
    batches: list[SentBatch] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    # Items no request carried: the limiter asked for a long wait (`retry_after`), or a request
    # failed (`error`; after an `OutcomeUnknown` that batch may exist at RingCentral).
    unsent: list[Item] = field(default_factory=list)
    retry_after: float = 0.0
    error: errors.RingCentralError | None = None
    requests: int = 0

    @property
    def batch_ids(self) -> list[str]:
        return [batch.batch_id for batch in self.batches]


@dataclass(frozen=True)
class RecipientResult:
    recipient_key: str  # "" when the caller gave no key for this number
    to: str
    status: str  # RingCentral's messageStatus
    error_code: str = ""
    reason: str = ""
    fix: str = ""
    kind: str = ""

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES


@dataclass(frozen=True)
class BatchResults:
    batch: a2p.BatchInfo
    results: list[RecipientResult]
    requests: int

    @property
    def done(self) -> bool:
        """Every message has left and none waits for a report that can still change it."""
        return self.batch.done and all(r.final for r in self.results)


def is_high_volume_number(number) -> bool:
    """Whether a synced number (a `SenderNumber`, or its list of features) is provisioned for
    High Volume SMS, as RingCentral's phone-number list said at the last sync."""
    features = number if isinstance(number, list | tuple) else (number.features or [])
    return A2P_FEATURE in features


def numbers_for(user, team) -> list[SenderNumber]:
    """The High Volume numbers `user` may send campaigns from in `team`: those of the links
    they may use (as compose decides), found by their feature, since they are kept inactive
    (they send no single texts)."""
    numbers = (
        SenderNumber.objects.filter(connection__in=usable_for(user, team))
        .select_related("connection")
        .order_by("phone_number", "pk")
    )
    return [number for number in numbers if is_high_volume_number(number)]


@dataclass(frozen=True)
class _Channel:
    client: RingCentralClient
    limit_key: ratelimit.LimitKey
    team_id: int | None
    account_id: str


def _channel(client_or_connection, team_id, account_id, extension_id) -> _Channel:
    if isinstance(client_or_connection, RingCentralConnection):
        connection = client_or_connection
        return _Channel(
            client_for(connection),
            ratelimit.key_for(connection, limits.A2P_GROUP),
            team_id if team_id is not None else connection.team_id,
            connection.account_id,
        )
    if not (account_id and extension_id):
        raise ValueError("a bare client needs the account_id and extension_id it acts for")
    return _Channel(
        client_or_connection,
        ratelimit.LimitKey(ratelimit.identity(account_id, extension_id), limits.A2P_GROUP),
        team_id,
        account_id,
    )


def _grant(channel: _Channel, limiter: ratelimit.RateLimiter, max_wait: float) -> None:
    wait = limiter.acquire([channel.limit_key], max_wait=max_wait)
    if wait > 0:
        raise LimiterBusy(wait)


def _items(items: Iterable) -> list[Item]:
    found = []
    for item in items:
        if not isinstance(item, Item):
            key, to, text = item
            item = Item(str(key), str(to), text)
        if not isinstance(item.text, str) or not item.text:
            raise HighVolumeError(f"Not sent: the text for {item.to} is empty.")
        if limits.utf16_units(item.text) > limits.MAX_TEXT_UNITS:
            raise HighVolumeError(
                f"Not sent: the text for {item.to} is longer than "
                f"{limits.MAX_TEXT_UNITS:,} characters (emoji count as 2)."
            )
        found.append(item)
    seen = set()
    for item in found:
        if item.to in seen:
            raise HighVolumeError(f"Not sent: {item.to} appears twice; each number gets one text.")
        seen.add(item.to)
    return found


def _refuse_opted_out(channel: _Channel, from_number: str, items: Sequence[Item]) -> None:
    if channel.team_id is None:
        raise ValueError("the team whose consent ledger applies is needed (team_id)")
    found = checks.opted_out(
        channel.team_id,
        [item.to for item in items],
        from_number=from_number,
        account_id=channel.account_id,
    )
    if found:
        raise OptedOutRecipients([item.to for item in items if item.to in found])


def _rejection(item: Item, rejected: a2p.Rejected) -> Rejection:
    explained = delivery_errors.explain(rejected.code, "SendingFailed")
    reason = explained.reason
    if rejected.description and not rejected.code:
        reason = rejected.description
    return Rejection(item.recipient_key, item.to, rejected.code, reason, explained.fix)


def send_batches(
    client_or_connection,
    from_number: str,
    items: Iterable,
    *,
    team_id: int | None = None,
    account_id: str = "",
    extension_id: str = "",
    limiter: ratelimit.RateLimiter | None = None,
    max_wait: float = MAX_LIMITER_WAIT,
    max_per_batch: int = limits.A2P_MAX_MESSAGES_PER_BATCH,
) -> SendResult:
    """Send `items` ((recipient_key, to, text) or `Item`) from `from_number` in batches.

    `client_or_connection`: a `RingCentralConnection` (its team's ledger and its user's rate
    budget), or a `RingCentralClient` with `team_id`, `account_id` and `extension_id`. A team
    using a shared link passes its own `team_id`. Raises `HighVolumeError` (nothing sent) for
    empty or too long texts, a number given twice, or an opted-out recipient.
    `max_per_batch` may only lower RingCentral's limit (smaller batches report progress sooner).
    """
    channel = _channel(client_or_connection, team_id, account_id, extension_id)
    listed = _items(items)
    _refuse_opted_out(channel, from_number, listed)
    limiter = limiter or ratelimit.get_limiter()
    result = SendResult()
    messages = [a2p.BatchMessage(item.to, item.text) for item in listed]
    try:
        planned = a2p.plan_batches(
            from_number,
            messages,
            max_messages=max(1, min(max_per_batch, limits.A2P_MAX_MESSAGES_PER_BATCH)),
        )
    except ValueError as exc:
        raise HighVolumeError(f"Not sent: {exc}.") from exc
    start = 0
    for position, batch in enumerate(planned):
        part = listed[start : start + len(batch)]
        try:
            _grant(channel, limiter, max_wait)
            result.requests += 1
            info = channel.client.create_a2p_batch(from_number, batch)
        except LimiterBusy as busy:
            result.retry_after = busy.retry_after
            result.unsent = listed[start:]
            return result
        except ValueError as exc:  # past a limit after all: a fault of ours, reported as such
            exc = errors.MessageInvalid(str(exc), reason=f"Not sent: {exc}.")
            result.error = exc
            result.unsent = listed[start:]
            return result
        except errors.RingCentralError as exc:
            if isinstance(exc, errors.RateLimited):
                limiter.pause(channel.limit_key, exc.retry_after)
                result.retry_after = exc.retry_after or limits.DEFAULT_RETRY_AFTER_SECONDS
            log.warning("High Volume batch %d of %d failed: %s", position + 1, len(planned), exc)
            result.error = exc
            result.unsent = listed[start:]
            return result
        by_index = {r.index: r for r in info.rejected}
        left_out = {part[index - 1].to for index in by_index if 1 <= index <= len(part)}
        result.rejected += [
            _rejection(part[index - 1], rejected)
            for index, rejected in sorted(by_index.items())
            if 1 <= index <= len(part)
        ]
        result.batches.append(
            SentBatch(
                info.id,
                {item.to: item.recipient_key for item in part if item.to not in left_out},
            )
        )
        start += len(batch)
    return result


def _result(record: a2p.A2PMessage, keys: Mapping[str, str]) -> RecipientResult:
    key = keys.get(record.to, "")
    if record.status not in FAILED_STATUSES and not record.error_code:
        return RecipientResult(key, record.to, record.status)
    explained = delivery_errors.explain(record.error_code, record.status)
    return RecipientResult(
        key,
        record.to,
        record.status,
        explained.code,
        explained.reason,
        explained.fix,
        explained.kind,
    )


def read_results(
    client_or_connection,
    batch_id: str,
    keys: Mapping[str, str] | None = None,
    *,
    account_id: str = "",
    extension_id: str = "",
    limiter: ratelimit.RateLimiter | None = None,
    max_wait: float = MAX_LIMITER_WAIT,
    before_page: Callable[[], None] | None = None,
) -> BatchResults:
    """The batch as RingCentral reports it now and one result per message: its status, and for
    a failure the error code with the outbox's reason and fix (`delivery_errors`).

    `keys` (to -> recipient_key, e.g. `SentBatch.recipients`) names each result's recipient.
    Raises `LimiterBusy` when the shared limiter asks for a longer wait than `max_wait`, and
    `errors.RingCentralError` when RingCentral fails.
    """
    channel = _channel(client_or_connection, None, account_id, extension_id)
    limiter = limiter or ratelimit.get_limiter()
    requests = 0

    def pace() -> None:
        nonlocal requests
        _grant(channel, limiter, max_wait)
        requests += 1
        if before_page is not None:
            before_page()

    try:
        pace()
        batch = channel.client.get_a2p_batch(batch_id)
        since = batch.created_at - LIST_MARGIN if batch.created_at else None
        records = list(channel.client.a2p_batch_messages(batch_id, since=since, before_page=pace))
    except errors.RateLimited as exc:
        limiter.pause(channel.limit_key, exc.retry_after)
        raise
    keys = keys or {}
    return BatchResults(batch, [_result(record, keys) for record in records], requests)


def read_batch(
    client_or_connection,
    batch_id: str,
    *,
    account_id: str = "",
    extension_id: str = "",
    limiter: ratelimit.RateLimiter | None = None,
    max_wait: float = MAX_LIMITER_WAIT,
) -> a2p.BatchInfo:
    """The batch's progress alone (size, processed, status): one request."""
    channel = _channel(client_or_connection, None, account_id, extension_id)
    limiter = limiter or ratelimit.get_limiter()
    _grant(channel, limiter, max_wait)
    try:
        return channel.client.get_a2p_batch(batch_id)
    except errors.RateLimited as exc:
        limiter.pause(channel.limit_key, exc.retry_after)
        raise


def wait_until_done(
    client_or_connection,
    batch_id: str,
    keys: Mapping[str, str] | None = None,
    *,
    timeout: float,
    interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    **kwargs,
) -> tuple[BatchResults, int]:
    """Follow a batch until every result is final or `timeout` passed (scripts, tests and the
    benchmark; a campaign runner reads once per run instead): the batch alone while messages
    are leaving, then every result. Returns the last report and the requests made in all."""
    deadline = clock() + timeout
    requests = 0
    while True:
        requests += 1
        if read_batch(client_or_connection, batch_id, **kwargs).done or clock() >= deadline:
            break
        sleep(interval)
    while True:
        report = read_results(client_or_connection, batch_id, keys, **kwargs)
        requests += report.requests
        if report.done or clock() >= deadline:
            return report, requests
        sleep(interval)
