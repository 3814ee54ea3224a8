"""Delivery truth: following accepted messages until RingCentral reports how they ended.

A message RingCentral accepted is `sent`; its recipients then become delivered, delivery_failed
or sending_failed in RingCentral's message store. Reports are read here and handed to
`outbox.apply_delivery_report` (the state machine decides; this module only reads and paces).

Polling (always on; beat calls `poll` every ~10 s)
    1. Connections with due messages are visited. A message is due at its `next_check_at`, or
       `FIRST_CHECK` after it was accepted (most carriers confirm within seconds).
    2. A read takes up to 50 due messages in one bulk request (Light group), most overdue first,
       topped up with the connection's next-due messages: the request costs the same.
    3. Pace: a read carrying a full batch goes at once; a smaller one only if the connection was
       not read in the last `min_read_interval()` (45 s). A busy connection's reports thus
       gather into few requests, a quiet one's are read as soon as they are due.
    4. Each read also takes one grant of the connection's Light budget from the shared rate
       limiter (messaging/ratelimit.py); a 429 pauses that budget for everyone.
    5. A message still not final is checked again on a grid whose spacing grows with its age
       (`SCHEDULE`: every 15 s in the first minute, every minute to 5 min, every 15 min to
       30 min, every 2 h to 6 h, every 6 h to 23 h, then hourly). Grid points are shared by
       all messages of similar age, so stragglers sent at different moments are read together.
       After `GIVE_UP_AFTER` (a day) without a final report, the next read gives up: no_receipt,
       "the carrier never reported delivery".
    With a healthy webhook subscription, checks are at least `webhook_poll_gap()` (15 min) apart.

Webhooks (when `PUBLIC_BASE_URL` makes the portal reachable)
    One RingCentral subscription per connection to its outbound SMS changes
    (`maintain_subscription`: created after linking, renewed a day before it lapses, re-created
    when RingCentral blacklists or forgets it). The endpoint (views/webhooks.py) verifies a
    delivery and calls `webhook_received`, which enqueues `refresh_connection` a few seconds
    later (letting a burst of notifications settle). Notifications carry no ids of changed
    messages, so the refresh makes the connection's recent not-final messages due and reads
    them under the same pacing.

Times are passed in as `now` (default: the current time) so schedules can be tested.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from . import delivery_errors, limits, outbox, ratelimit
from .models import (
    MessageStatus,
    OutboundMessage,
    RingCentralConnection,
    TrackingPace,
    WebhookStatus,
    WebhookSubscription,
)
from .ringcentral import errors, message_store
from .ringcentral import subscriptions as rc_subscriptions
from .ringcentral.client import RingCentralClient

log = logging.getLogger(__name__)

_HOUR = 3600
# (age below, seconds between checks): where a not-final message's next check falls.
DEFAULT_SCHEDULE = (
    (60, 15),
    (5 * 60, 60),
    (30 * 60, 15 * 60),
    (6 * _HOUR, 2 * _HOUR),
    (23 * _HOUR, 6 * _HOUR),
    (None, _HOUR),
)
DEFAULT_GIVE_UP_AFTER = 24 * _HOUR
# The first read of a just-accepted message.
FIRST_CHECK = timedelta(seconds=10)
DEFAULT_MIN_READ_INTERVAL = 45
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


def schedule() -> tuple[tuple[int | None, int], ...]:
    return tuple(getattr(settings, "TRACKING_SCHEDULE", DEFAULT_SCHEDULE))


def give_up_after() -> timedelta:
    return timedelta(seconds=getattr(settings, "TRACKING_GIVE_UP_AFTER", DEFAULT_GIVE_UP_AFTER))


def min_read_interval() -> timedelta:
    return timedelta(
        seconds=getattr(settings, "TRACKING_MIN_READ_INTERVAL", DEFAULT_MIN_READ_INTERVAL)
    )


def webhook_poll_gap() -> float:
    return float(getattr(settings, "TRACKING_WEBHOOK_POLL_GAP", 15 * 60))


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


def limit_key(connection: RingCentralConnection, group: str = limits.READ_GROUP):
    """The connection's budget of `group` in the shared rate limiter."""
    return ratelimit.LimitKey(f"{connection.account_id}/{connection.extension_id}", group)


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
    return check_connection(connection_id, now=now)


def check_connection(connection_id: int, *, now: datetime) -> dict[str, int]:
    """Read and apply the message-store records of one connection's due messages.

    Returns counts: `reads` (requests), `read` (messages), `final`, `gave_up`, `paced` (a small
    batch waited for the pace), `deferred` (rate limiter or 429), `failed_reads`.
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
    client = RingCentralClient(connection)
    key = limit_key(connection)
    limiter = ratelimit.get_limiter()
    tracked = OutboundMessage.objects.filter(connection=connection, status=MessageStatus.SENT)
    for _ in range(MAX_READS_PER_RUN):
        due = tracked.filter(_due(now)).count()
        if not due:
            break
        full = due >= BATCH_SIZE
        if not _take_read_slot(connection, now, full=full):
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
            result = message_store.read_messages(client, [rc_id for _, rc_id in batch])
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


def _take_read_slot(connection, now: datetime, *, full: bool) -> bool:
    """May a read happen now? Always for a full batch; otherwise only once the pace interval
    since the connection's last read has passed (compare-and-set, so two runs cannot both)."""
    TrackingPace.objects.bulk_create([TrackingPace(connection=connection)], ignore_conflicts=True)
    slot = TrackingPace.objects.filter(connection=connection)
    if not full:
        slot = slot.filter(
            Q(last_read_at__isnull=True) | Q(last_read_at__lte=now - min_read_interval())
        )
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
        states = [(r.phone_number, r.status) for r in record.recipients]
        if not states and record.status:
            # A record without per-recipient statuses: its top-level one is exact only for a
            # single recipient (for a group it is an aggregate).
            numbers = list(message.recipients.values_list("phone_number", flat=True))
            states = [(numbers[0], record.status)] if len(numbers) == 1 else []
        reports = [
            outbox.DeliveryReport(
                number,
                state,
                record.error_code if state in ("DeliveryFailed", "SendingFailed") else "",
            )
            for number, state in states
        ]
        status = outbox.apply_delivery_report(message, reports, at=record.last_modified)
    if status != MessageStatus.SENT:
        counts["final"] += 1
        return counts
    if message.sent_at is None or now - message.sent_at >= give_up_after():
        outbox.give_up_delivery(
            message,
            reason=delivery_errors.NO_RECEIPT_REASON,
            fix=delivery_errors.NO_RECEIPT_FIX,
            at=now,
        )
        counts["gave_up"] += 1
        return counts
    fields = {"next_check_at": next_check_at(message.sent_at, now, webhook_healthy=healthy)}
    if counted:
        fields.update(checks=F("checks") + 1, last_checked_at=now)
    OutboundMessage.objects.filter(pk=message_id, status=MessageStatus.SENT).update(**fields)
    return counts


def _park_unusable(connection, now: datetime) -> int:
    """A broken or disconnected link cannot be read: give up on its messages once their day is
    over, and look at the others again later (the link may be repaired)."""
    tracked = OutboundMessage.objects.filter(connection=connection, status=MessageStatus.SENT)
    gave_up = 0
    for message in tracked.filter(sent_at__lte=now - give_up_after()):
        outbox.give_up_delivery(
            message,
            reason=delivery_errors.LINK_LOST_REASON,
            fix=delivery_errors.LINK_LOST_FIX,
            at=now,
        )
        gave_up += 1
    tracked.filter(_due(now)).update(next_check_at=now + UNUSABLE_RECHECK)
    return gave_up


# --- Webhook subscriptions ----------------------------------------------------------------------


def expires_in() -> int:
    return int(getattr(settings, "RINGCENTRAL_WEBHOOK_EXPIRES_IN", 7 * 24 * 3600))


def renew_before() -> timedelta:
    return timedelta(seconds=getattr(settings, "RINGCENTRAL_WEBHOOK_RENEW_BEFORE", 24 * 3600))


# Without a delivery in this long, RingCentral is asked whether the subscription still works.
CHECK_EVERY = timedelta(hours=1)
# A creation left pending longer than this (the worker died mid-way) is started again.
PENDING_TIMEOUT = timedelta(minutes=5)
# Waits after failed creations: 5 min, 15 min, 1 h, then every 6 h.
CREATE_BACKOFF = (300, 900, 3600, 21600)
# Deliveries arriving while a refresh is pending ask for nothing more; after this long without
# the refresh having started (broker trouble), a delivery asks again.
REFRESH_DEBOUNCE = timedelta(seconds=30)
# A refresh runs this long after the notification, so that a message's Sent and Delivered
# notifications (usually seconds apart) are answered by one read.
WEBHOOK_SETTLE_SECONDS = 5


def webhook_address() -> str:
    """Where RingCentral posts notifications, or "" when the portal is not reachable."""
    base = (getattr(settings, "PUBLIC_BASE_URL", "") or "").rstrip("/")
    return f"{base}{reverse('ringcentral_webhook')}" if base else ""


def new_verification_token(subscription_id: int) -> str:
    # The prefix names the row so a delivery finds it; the random part is the secret.
    return f"{subscription_id}.{secrets.token_urlsafe(32)}"


def subscription_for_token(token: str) -> WebhookSubscription | None:
    """The subscription a presented verification token claims to belong to (not yet verified)."""
    prefix, dot, _ = (token or "").partition(".")
    # isdigit() alone also accepts "²" and other Latin-1 digits that int() refuses.
    if not dot or not (prefix.isascii() and prefix.isdigit()) or len(prefix) > 18:
        return None
    return WebhookSubscription.objects.filter(pk=int(prefix)).first()


def maintain_subscription(
    connection_id: int, *, now: datetime | None = None, verify: bool = False
) -> str:
    """Bring the connection's subscription to a working state; returns what was done.

    created (none yet, blacklisted, gone, a failed creation whose wait is over, or a new
    address), renewed (lapses within `renew_before()`), checked (asked RingCentral; `verify`, or
    nothing heard for `CHECK_EVERY`), ok, waiting (a failed creation's backoff), off (no
    `PUBLIC_BASE_URL`), skipped (link unusable), failed, deferred (rate limiter).
    """
    now = now or timezone.now()
    connection = RingCentralConnection.objects.filter(pk=connection_id).first()
    if connection is None or not connection.is_usable:
        return "skipped"
    address = webhook_address()
    if not address:
        return "off"
    sub = WebhookSubscription.objects.filter(connection=connection).first()
    if sub is None:
        return _create(connection, sub, address, now)
    if sub.status == WebhookStatus.PENDING:
        if sub.created_at > now - PENDING_TIMEOUT:
            return "waiting"  # being created by another process
        return _create(connection, sub, address, now)
    if sub.address != address or sub.status in (WebhookStatus.BLACKLISTED, WebhookStatus.GONE):
        return _create(connection, sub, address, now)
    if sub.status == WebhookStatus.FAILED:
        if sub.retry_at and sub.retry_at > now:
            return "waiting"
        return _create(connection, sub, address, now)

    client = RingCentralClient(connection)
    renewing = sub.expires_at is None or sub.expires_at - now <= renew_before()
    stale = max(filter(None, [sub.checked_at, sub.last_delivery_at]), default=None)
    if not renewing and not verify and stale is not None and stale > now - CHECK_EVERY:
        return "ok"
    if not _granted(connection, limits.READ_GROUP):  # renew (POST …/renew) and GET are Light
        return "deferred"
    try:
        if renewing:
            info = rc_subscriptions.renew(client, sub.rc_subscription_id)
        else:
            info = rc_subscriptions.get(client, sub.rc_subscription_id)
    except errors.NotFound:
        _mark(sub, WebhookStatus.GONE, "RingCentral no longer knows the subscription.")
        return _create(connection, sub, address, now)
    except errors.RingCentralError as exc:
        log.warning("Checking the webhook of connection %s failed: %s", connection_id, exc)
        return "failed"
    if info.status != rc_subscriptions.ACTIVE:
        reason = info.blacklist_reason or f"RingCentral reports it {info.status or 'inactive'}."
        _mark(sub, WebhookStatus.BLACKLISTED, reason)
        return _create(connection, sub, address, now)
    fields = {"expires_at": info.expires_at, "checked_at": now, "last_error": ""}
    if renewing:
        fields["renewed_at"] = now
    WebhookSubscription.objects.filter(pk=sub.pk).update(**fields)
    return "renewed" if renewing else "checked"


def maintain_all(now: datetime | None = None) -> dict[str, int]:
    """`maintain_subscription` for every usable connection (the renewal task)."""
    counts: Counter = Counter()
    if not webhook_address():
        return {"off": 1}
    usable = RingCentralConnection.objects.filter(
        status__in=RingCentralConnection.USABLE_STATUSES
    ).values_list("pk", flat=True)
    for connection_id in list(usable):
        try:
            counts[maintain_subscription(connection_id, now=now)] += 1
        except errors.RingCentralError as exc:  # e.g. the link broke while refreshing
            log.warning("Webhook upkeep of connection %s failed: %s", connection_id, exc)
            counts["failed"] += 1
    return dict(counts)


def _granted(connection, group: str) -> bool:
    limiter = ratelimit.get_limiter()
    return limiter.acquire([limit_key(connection, group)], max_wait=LIMITER_MAX_WAIT) <= 0


def _mark(sub: WebhookSubscription, status: str, error: str) -> None:
    WebhookSubscription.objects.filter(pk=sub.pk).update(status=status, last_error=error[:1000])
    sub.status, sub.last_error = status, error


def _create(connection, sub: WebhookSubscription | None, address: str, now: datetime) -> str:
    """(Re-)create the subscription.

    The row is first claimed (compare-and-set to pending), so two processes never both create
    one; it is saved with its new token before the request, so a delivery that beats our answer
    is already verifiable. RingCentral's handshake reaches our endpoint during the request: no
    transaction may be open here.
    """
    if not _granted(connection, limits.SEND_GROUP):  # creation and deletion are Medium
        return "deferred"
    old_id = sub.rc_subscription_id if sub is not None else ""
    if sub is None:
        sub, made = WebhookSubscription.objects.get_or_create(
            connection=connection, defaults={"created_at": now}
        )
        if not made:
            return "waiting"
    elif not WebhookSubscription.objects.filter(
        pk=sub.pk, status=sub.status, created_at=sub.created_at
    ).update(status=WebhookStatus.PENDING, created_at=now):
        return "waiting"
    client = RingCentralClient(connection)
    sub.verification_token = new_verification_token(sub.pk)
    sub.status = WebhookStatus.PENDING
    sub.rc_subscription_id = ""
    sub.address = address
    sub.expires_at = None
    sub.created_at = now
    sub.save()
    if old_id:
        try:
            rc_subscriptions.delete(client, old_id)
        except errors.RingCentralError as exc:
            # A leftover subscription is harmless: its token no longer verifies, so RingCentral
            # blacklists it after a few refused deliveries.
            log.info("Deleting old webhook %s of connection %s failed: %s", old_id, sub.pk, exc)
    try:
        info = rc_subscriptions.create(
            client, address=address, token=sub.verification_token, expires_in=expires_in()
        )
    except errors.RingCentralError as exc:
        failures = sub.failures + 1
        wait = CREATE_BACKOFF[min(failures, len(CREATE_BACKOFF)) - 1]
        WebhookSubscription.objects.filter(pk=sub.pk).update(
            status=WebhookStatus.FAILED,
            failures=failures,
            retry_at=now + timedelta(seconds=wait),
            last_error=f"{exc.reason} ({exc})"[:1000],
        )
        log.warning("Creating the webhook of connection %s failed: %s", connection.pk, exc)
        return "failed"
    WebhookSubscription.objects.filter(pk=sub.pk).update(
        status=WebhookStatus.ACTIVE if info.is_active else WebhookStatus.BLACKLISTED,
        rc_subscription_id=info.id[:64],
        expires_at=info.expires_at,
        checked_at=now,
        renewed_at=None,
        failures=0,
        retry_at=None,
        last_error="",
    )
    log.info("Webhook %s created for connection %s", info.id, connection.pk)
    return "created"


def webhook_received(sub: WebhookSubscription, payload: dict, now: datetime | None = None) -> bool:
    """A verified delivery for `sub`: remember it, and ask for one read of the connection's
    messages unless one is already pending. Returns True when a read was requested.

    Only changes to existing messages need a read; a notification that only announces new
    messages (our own sends) does not.
    """
    now = now or timezone.now()
    WebhookSubscription.objects.filter(pk=sub.pk).update(last_delivery_at=now)
    if not _announces_updates(payload):
        return False
    requested = (
        WebhookSubscription.objects.filter(pk=sub.pk)
        .filter(
            Q(refresh_requested_at__isnull=True)
            | Q(refresh_requested_at__lt=now - REFRESH_DEBOUNCE)
        )
        .update(refresh_requested_at=now)
    )
    if not requested:
        return False
    from .tasks import refresh_after_webhook

    connection_id = sub.connection_id
    transaction.on_commit(
        lambda: refresh_after_webhook.apply_async(
            (connection_id,), countdown=WEBHOOK_SETTLE_SECONDS, retry=False
        ),
        robust=True,
    )
    return True


def start_refresh(connection_id: int) -> None:
    """Called by the task before it reads: deliveries from now on may ask for another read."""
    WebhookSubscription.objects.filter(connection_id=connection_id).update(
        refresh_requested_at=None
    )


def _announces_updates(payload: dict) -> bool:
    body = payload.get("body")
    changes = body.get("changes") if isinstance(body, dict) else None
    if not isinstance(changes, list) or not changes:
        return True  # an unfamiliar shape: reading once is the safe answer
    for change in changes:
        if not isinstance(change, dict):
            return True
        updated = change.get("updatedCount")
        if updated is None or (isinstance(updated, int) and updated > 0):
            return True
    return False


# --- Connection life ----------------------------------------------------------------------------


def connection_linked(connection_id: int) -> None:
    """After a (re-)link commits: create or check the subscription in a worker (the handshake
    needs this portal to answer RingCentral while the request is running)."""
    if not webhook_address():
        return
    from .tasks import maintain_webhook

    transaction.on_commit(lambda: maintain_webhook.delay(connection_id), robust=True)


def connection_disconnecting(connection) -> None:
    """Before the tokens are deleted: delete the subscription at RingCentral (best effort) and
    forget it. Never raises."""
    sub = WebhookSubscription.objects.filter(connection_id=connection.pk).first()
    if sub is None:
        return
    if sub.rc_subscription_id and connection.is_usable:
        try:
            if _granted(connection, limits.SEND_GROUP):
                rc_subscriptions.delete(RingCentralClient(connection), sub.rc_subscription_id)
        except Exception as exc:  # a disconnect must succeed whatever happens here
            # Left behind, it is refused by our endpoint and blacklisted by RingCentral.
            log.info("Deleting the webhook of connection %s failed: %s", connection.pk, exc)
    sub.delete()
