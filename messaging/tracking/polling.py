"""Delivery truth: following accepted messages until RingCentral reports how they ended.

A message RingCentral accepted is `sent`; its recipients then become delivered, delivery_failed
or sending_failed in RingCentral's message store. Reports are read here and handed to
`states.apply_delivery_report` (the state machine decides; this module only reads and paces).

Polling (always on; beat calls `poll` every ~10 s)
    1. Connections with due messages are visited. A message is due at its `next_check_at`, or
       `FIRST_CHECK` after it was accepted (most carriers confirm within seconds).
    2. A read takes up to 50 due messages in one bulk request (Light group), most overdue first,
       topped up with the connection's next-due messages: the request costs the same.
    3. Pace: a read carrying a full batch goes at once; a smaller one only if the connection was
       not read in the last `min_read_interval()` (45 s). A busy connection's reports thus
       gather into few requests, a quiet one's are read as soon as they are due.
    4. Each read also takes one grant of the connection's Light budget from the shared rate
       limiter (messaging/sending/ratelimit.py); a 429 pauses that budget for everyone.
    5. A message still not final is checked again on a grid whose spacing grows with its age
       (`SCHEDULE`: every 15 s in the first minute, every minute to 5 min, every 15 min to
       30 min, every 2 h to 6 h, every 6 h to 23 h, then hourly). Grid points are shared by
       all messages of similar age, so stragglers sent at different moments are read together.
       After `GIVE_UP_AFTER` (a day) without a final report, the next read gives up: no_receipt,
       "the carrier never reported delivery".
    With a healthy webhook subscription, checks are at least `webhook_poll_gap()` (15 min) apart.

Message sync (the inbox's, messaging/inbox/sync.py)
    The inbox syncs every linked user's messages every few seconds anyway; each incremental
    answer holds every message created or changed since the last, our own sends among them, so
    their reports come with it, whatever their number (`reports_received`). While a
    connection's sync is healthy, polling reads only the messages sync has not reported within
    `SYNC_MISS_GRACE` of their sending (a sync that ran between RingCentral's answer and the
    outbox recording it), and gives up on the rest after a day without reading them again.

Webhooks (when `PUBLIC_BASE_URL` makes the portal reachable)
    One RingCentral subscription per connection to its outbound SMS changes (subscriptions.py).
    The endpoint (views.py) verifies a delivery and calls `webhooks.webhook_received`, which
    asks for a message sync at once, or, where there is none, enqueues `refresh_connection`,
    which makes the connection's recent not-final messages due and reads them at once (at most
    one read every `WEBHOOK_READ_GAP`).

Times are passed in as `now` (default: the current time) so schedules can be tested.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from messaging.links.tokens import client_for
from messaging.models import (
    InboxSync,
    MessageStatus,
    OutboundMessage,
    RingCentralConnection,
    TrackingPace,
    WebhookSubscription,
)
from messaging.outbox import delivery_errors, states
from messaging.ringcentral import errors, limits, message_store
from messaging.sending import ratelimit

log = logging.getLogger(__name__)

# The first read of a just-accepted message.
FIRST_CHECK = timedelta(seconds=10)
# Two checks of one message are never closer than this.
MIN_GAP_SECONDS = 1.0
# A claimed message whose read never finished (worker killed) is due again after this.
CLAIM_LEASE = timedelta(seconds=60)
BATCH_SIZE = message_store.MAX_IDS_PER_READ
# Reads per connection per run; more due messages wait for the next run (~10 s later).
MAX_READS_PER_RUN = 4
MAX_CONNECTIONS_PER_RUN = 200
# How long a poll may wait for the rate limiter before leaving the work to the next run.
LIMITER_MAX_WAIT = 2.0
# A connection that cannot be used is looked at again this often (it may be linked again).
UNUSABLE_RECHECK = timedelta(minutes=10)
# After a webhook, a read of a connection follows its last read by at least this.
WEBHOOK_READ_GAP = timedelta(seconds=1)
# A message sync not heard of for longer than this is no source of reports (it failed).
SYNC_HEALTHY_WITHIN = timedelta(minutes=2)
# A message no sync has reported this long after its sending is read by polling. Syncs run
# every few seconds, so a message none of them brought within this was missed (a sync that ran
# between RingCentral's answer and the outbox recording it, or a send settled by reconciliation
# after its last change); such misses are rare, so the extra reads cost little.
SYNC_MISS_GRACE = timedelta(seconds=30)


def schedule() -> tuple[tuple[int | None, int], ...]:
    """(age below, seconds between checks): where a not-final message's next check falls."""
    return tuple(settings.TRACKING_SCHEDULE)


def give_up_after() -> timedelta:
    return timedelta(seconds=settings.TRACKING_GIVE_UP_AFTER)


def min_read_interval() -> timedelta:
    return timedelta(seconds=settings.TRACKING_MIN_READ_INTERVAL)


def webhook_poll_gap() -> float:
    return float(settings.TRACKING_WEBHOOK_POLL_GAP)


def next_check_at(sent_at: datetime, now: datetime, *, webhook_healthy: bool = False) -> datetime:
    """When to read a still-not-final message again, having just read it at `now`.

    The next point, at least a second away, of the grid `schedule()` gives for the message's
    age (grid points are multiples of the step in Unix time). With a healthy webhook, steps are
    at least `webhook_poll_gap()`.
    """
    age = (now - sent_at).total_seconds()
    step = schedule()[-1][1]
    for below, seconds in schedule():
        if below is None or age < below:
            step = seconds
            break
    if webhook_healthy:
        step = max(step, webhook_poll_gap())
    point = math.ceil((now.timestamp() + MIN_GAP_SECONDS) / step) * step
    return datetime.fromtimestamp(point, tz=UTC)


# --- Polling ------------------------------------------------------------------------------------


def _due(now: datetime) -> Q:
    return Q(status=MessageStatus.SENT) & (
        Q(next_check_at__lte=now) | Q(next_check_at__isnull=True, sent_at__lte=now - FIRST_CHECK)
    )


def due_connection_ids(now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return list(
        OutboundMessage.objects.filter(_due(now))
        .order_by()
        .values_list("connection_id", flat=True)
        .distinct()[:MAX_CONNECTIONS_PER_RUN]
    )


def poll(now: datetime | None = None) -> dict[str, int]:
    """One polling round over every connection with due messages (see the module docstring)."""
    now = now or timezone.now()
    counts: Counter = Counter()
    for connection_id in due_connection_ids(now):
        counts.update(check_connection(connection_id, now=now))
    return dict(counts)


def refresh_connection(connection_id: int, now: datetime | None = None) -> dict[str, int]:
    """After a webhook: make the connection's recent not-final messages due, and read them now
    if the pace allows (else the next poll does)."""
    now = now or timezone.now()
    OutboundMessage.objects.filter(
        connection_id=connection_id,
        status=MessageStatus.SENT,
        sent_at__gte=now - give_up_after(),
    ).filter(Q(next_check_at__isnull=True) | Q(next_check_at__gt=now)).update(next_check_at=now)
    return check_connection(connection_id, now=now, after_webhook=True)


def sync_is_healthy(connection_id: int, now: datetime) -> bool:
    """Does the inbox's message sync of this connection bring its reports (a recent success)?"""
    return InboxSync.objects.filter(
        connection_id=connection_id, synced_at__gte=now - SYNC_HEALTHY_WITHIN, failures=0
    ).exists()


def check_connection(
    connection_id: int, *, now: datetime, after_webhook: bool = False
) -> dict[str, int]:
    """Read and apply the message-store records of one connection's due messages.

    Returns counts: `reads` (requests), `read` (messages), `final`, `gave_up`, `paced` (a small
    batch waited for the pace), `deferred` (rate limiter or 429), `failed_reads`, `synced`
    (left to the message sync).
    """
    counts: Counter = Counter()
    connection = RingCentralConnection.objects.filter(pk=connection_id).first()
    if connection is None:
        return counts
    if not connection.is_usable:
        counts["gave_up"] += _park_unusable(connection, now)
        return counts
    webhook = WebhookSubscription.objects.filter(connection=connection).first()
    healthy = webhook is not None and webhook.is_healthy(now)
    tracked = OutboundMessage.objects.filter(connection=connection, status=MessageStatus.SENT)
    if not after_webhook and sync_is_healthy(connection_id, now):
        counts.update(_leave_to_sync(tracked, now))
        tracked = tracked.filter(last_checked_at__isnull=True, sent_at__lte=now - SYNC_MISS_GRACE)
    client = client_for(connection)
    key = ratelimit.key_for(connection, limits.READ_GROUP)
    limiter = ratelimit.get_limiter()
    for _ in range(MAX_READS_PER_RUN):
        due = tracked.filter(_due(now)).count()
        if not due:
            break
        full = due >= BATCH_SIZE
        if not _take_read_slot(connection, now, full=full, after_webhook=after_webhook):
            counts["paced"] += 1
            break
        wait = limiter.acquire([key], max_wait=LIMITER_MAX_WAIT)
        if wait > 0:
            counts["deferred"] += 1
            break
        batch = _claim(tracked, now)
        if not batch:
            break
        try:
            result = client.read_messages([rc_id for _, rc_id in batch])
        except errors.RateLimited as exc:
            limiter.pause(key, exc.retry_after)
            _release(batch, now + timedelta(seconds=exc.retry_after or 30))
            counts["deferred"] += 1
            break
        except errors.RingCentralError as exc:
            # Broken link, network trouble, a refusal: read again on the normal schedule (and
            # give up after a day as usual) instead of hammering.
            log.warning("Reading delivery reports of connection %s failed: %s", connection_id, exc)
            counts["failed_reads"] += 1
            for message_id, _ in batch:
                counts.update(_after_read(message_id, None, now, healthy, counted=False))
            break
        counts["reads"] += 1
        limiter.observe(key, result.headers)
        for message_id, rc_id in batch:
            counts["read"] += 1
            counts.update(_after_read(message_id, result.found.get(rc_id), now, healthy))
        if not full:
            break
    return dict(counts)


def _take_read_slot(connection, now: datetime, *, full: bool, after_webhook: bool) -> bool:
    """May a read happen now? Always for a full batch; after a webhook once `WEBHOOK_READ_GAP`
    has passed since the connection's last read (RingCentral said something changed);
    otherwise once the pace interval has (compare-and-set, so two runs cannot both)."""
    TrackingPace.objects.bulk_create([TrackingPace(connection=connection)], ignore_conflicts=True)
    slot = TrackingPace.objects.filter(connection=connection)
    if not full:
        gap = WEBHOOK_READ_GAP if after_webhook else min_read_interval()
        slot = slot.filter(Q(last_read_at__isnull=True) | Q(last_read_at__lte=now - gap))
    return slot.update(last_read_at=now) == 1


def _claim(tracked, now: datetime) -> list[tuple[int, str]]:
    """Up to one batch of (message id, RingCentral id): the most overdue first, topped up with
    the next due. Their `next_check_at` moves a lease ahead so an overlapping run skips them."""
    with transaction.atomic():
        picked = list(
            tracked.filter(_due(now))
            .order_by(F("next_check_at").asc(nulls_first=True), "sent_at", "pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", "rc_message_id")[:BATCH_SIZE]
        )
        if picked and len(picked) < BATCH_SIZE:
            picked += list(
                tracked.exclude(_due(now))
                .order_by(F("next_check_at").asc(nulls_first=True), "sent_at", "pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", "rc_message_id")[: BATCH_SIZE - len(picked)]
            )
        if picked:
            OutboundMessage.objects.filter(pk__in=[pk for pk, _ in picked]).update(
                next_check_at=now + CLAIM_LEASE
            )
    return [(pk, rc_id) for pk, rc_id in picked if rc_id]


def _release(batch, when: datetime) -> None:
    ids = [message_id for message_id, _ in batch]
    OutboundMessage.objects.filter(pk__in=ids, status=MessageStatus.SENT).update(next_check_at=when)


def _after_read(message_id: int, record, now: datetime, healthy: bool, *, counted: bool = True):
    """Apply one message's record (None: not read, or unknown to RingCentral), then reschedule
    it or give up on it."""
    counts: Counter = Counter()
    message = OutboundMessage.objects.filter(pk=message_id).first()
    if message is None:
        return counts
    status = message.status
    if record is not None:
        status = _apply_record(message, record)
    if status != MessageStatus.SENT:
        counts["final"] += 1
        return counts
    if message.sent_at is None or now - message.sent_at >= give_up_after():
        _no_receipt(message, now)
        counts["gave_up"] += 1
        return counts
    fields = {"next_check_at": next_check_at(message.sent_at, now, webhook_healthy=healthy)}
    if counted:
        fields.update(checks=F("checks") + 1, last_checked_at=now)
    OutboundMessage.objects.filter(pk=message_id, status=MessageStatus.SENT).update(**fields)
    return counts


# --- Reports brought by the message sync ----------------------------------------------------------


def reports_received(connection_id: int, records, now: datetime | None = None) -> dict[str, int]:
    """Apply the records of our own sent messages that a message sync brought (the inbox calls
    this with every outbound record of an answer); returns counts `reported`, `final`."""
    now = now or timezone.now()
    counts: Counter = Counter()
    by_id = {r.id: r for r in records if r.direction == "Outbound"}
    if not by_id:
        return counts
    messages = OutboundMessage.objects.filter(
        connection_id=connection_id, status=MessageStatus.SENT, rc_message_id__in=list(by_id)
    )
    for message in messages:
        counts["reported"] += 1
        status = _apply_record(message, by_id[message.rc_message_id])
        if status != MessageStatus.SENT:
            counts["final"] += 1
            continue
        OutboundMessage.objects.filter(pk=message.pk, status=MessageStatus.SENT).update(
            checks=F("checks") + 1,
            last_checked_at=now,
            next_check_at=next_check_at(message.sent_at or now, now, webhook_healthy=True),
        )
    return dict(counts)


def _leave_to_sync(tracked, now: datetime) -> Counter:
    """With a healthy message sync: give up on the messages whose day is over (sync would have
    brought any report), and move the due ones sync has reported on to a later check, without
    reading them."""
    counts: Counter = Counter()
    for message in tracked.filter(sent_at__lte=now - give_up_after()):
        _no_receipt(message, now)
        counts["gave_up"] += 1
    seen = tracked.filter(_due(now)).filter(
        Q(last_checked_at__isnull=False) | Q(sent_at__gt=now - SYNC_MISS_GRACE)
    )
    for message_id, sent_at in seen.values_list("pk", "sent_at"):
        later = max(
            next_check_at(sent_at or now, now, webhook_healthy=True),
            (sent_at or now) + SYNC_MISS_GRACE,
        )
        OutboundMessage.objects.filter(pk=message_id, status=MessageStatus.SENT).update(
            next_check_at=later
        )
        counts["synced"] += 1
    return counts


def _apply_record(message: OutboundMessage, record) -> str:
    """Hand one RingCentral record of `message` to the state machine; its status after."""
    reported = [(r.phone_number, r.status) for r in record.recipients]
    if not reported and record.status:
        # A record without per-recipient statuses: its top-level one is exact only for a
        # single recipient (for a group it is an aggregate).
        numbers = list(message.recipients.values_list("phone_number", flat=True))
        reported = [(numbers[0], record.status)] if len(numbers) == 1 else []
    reports = [
        states.DeliveryReport(
            number,
            state,
            record.error_code if state in ("DeliveryFailed", "SendingFailed") else "",
        )
        for number, state in reported
    ]
    return states.apply_delivery_report(message, reports, at=record.last_modified)


def _no_receipt(message: OutboundMessage, now: datetime) -> None:
    """Give up on a message whose day passed without a final report."""
    states.give_up_delivery(
        message,
        reason=delivery_errors.NO_RECEIPT_REASON,
        fix=delivery_errors.NO_RECEIPT_FIX,
        at=now,
    )


def _park_unusable(connection, now: datetime) -> int:
    """A broken or disconnected link cannot be read: give up on its messages once their day is
    over, and look at the others again later (the link may be repaired)."""
    tracked = OutboundMessage.objects.filter(connection=connection, status=MessageStatus.SENT)
    gave_up = 0
    for message in tracked.filter(sent_at__lte=now - give_up_after()):
        states.give_up_delivery(
            message,
            reason=delivery_errors.LINK_LOST_REASON,
            fix=delivery_errors.LINK_LOST_FIX,
            at=now,
        )
        gave_up += 1
    tracked.filter(_due(now)).update(next_check_at=now + UNUSABLE_RECHECK)
    return gave_up
