"""A connection's RingCentral webhook subscription, kept working.

One subscription per connection to its outbound SMS changes (`maintain_subscription`: created
after linking, renewed a day before it lapses, re-created when RingCentral blacklists or forgets
it). Deliveries to it arrive at messaging/tracking/views.py and are handled by webhooks.py.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from messaging.links.tokens import client_for
from messaging.models import RingCentralConnection, WebhookStatus, WebhookSubscription
from messaging.ringcentral import errors, limits
from messaging.ringcentral import subscriptions as rc_subscriptions
from messaging.sending import ratelimit

log = logging.getLogger(__name__)

# How long a poll may wait for the rate limiter before leaving the work to the next run.
LIMITER_MAX_WAIT = 2.0


def expires_in() -> int:
    return settings.RINGCENTRAL_WEBHOOK_EXPIRES_IN


def renew_before() -> timedelta:
    return timedelta(seconds=settings.RINGCENTRAL_WEBHOOK_RENEW_BEFORE)


# Without a delivery in this long, RingCentral is asked whether the subscription still works.
CHECK_EVERY = timedelta(hours=1)
# A creation left pending longer than this (the worker died mid-way) is started again.
PENDING_TIMEOUT = timedelta(minutes=5)
# Waits after failed creations: 5 min, 15 min, 1 h, then every 6 h.
CREATE_BACKOFF = (300, 900, 3600, 21600)


def webhook_address() -> str:
    """Where RingCentral posts notifications, or "" when the portal is not reachable (in demo
    mode, the local web server `make run` started, which the emulator reaches)."""
    base = settings.PUBLIC_BASE_URL or settings.DEMO_PORTAL_URL
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
    if _outdated(sub, now):
        return _create(connection, sub, address, now)

    client = client_for(connection)
    renewing = sub.expires_at is None or sub.expires_at - now <= renew_before()
    stale = max(filter(None, [sub.checked_at, sub.last_delivery_at]), default=None)
    if not renewing and not verify and stale is not None and stale > now - CHECK_EVERY:
        return "ok"
    if not _granted(connection, limits.READ_GROUP):  # renew (POST …/renew) and GET are Light
        return "deferred"
    try:
        if renewing:
            info = client.renew_subscription(sub.rc_subscription_id)
        else:
            info = client.get_subscription(sub.rc_subscription_id)
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


# A subscription RingCentral made without consent events is asked for them again after this.
CONSENTS_RETRY = timedelta(days=1)


def _outdated(sub: WebhookSubscription, now: datetime) -> bool:
    """Made before the portal asked for these events (the inbox's instant messages, the consent
    list's changes). One made with message events only because RingCentral refused consent
    events is tried with them again once a day."""
    filters = list(sub.event_filters or [])
    if filters == list(rc_subscriptions.EVENT_FILTERS):
        return False
    if filters == list(rc_subscriptions.MESSAGE_FILTERS) and sub.consents_refused_at:
        return sub.consents_refused_at < now - CONSENTS_RETRY
    return True


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
    return limiter.acquire([ratelimit.key_for(connection, group)], max_wait=LIMITER_MAX_WAIT) <= 0


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
    client = client_for(connection)
    sub.verification_token = new_verification_token(sub.pk)
    sub.status = WebhookStatus.PENDING
    sub.rc_subscription_id = ""
    sub.address = address
    sub.expires_at = None
    sub.created_at = now
    sub.save()
    if old_id:
        try:
            client.delete_subscription(old_id)
        except errors.RingCentralError as exc:
            # A leftover subscription is harmless: its token no longer verifies, so RingCentral
            # blacklists it after a few refused deliveries.
            log.info("Deleting old webhook %s of connection %s failed: %s", old_id, sub.pk, exc)
    filters, refused_at = rc_subscriptions.EVENT_FILTERS, None
    try:
        try:
            info = client.create_subscription(
                address=address, token=sub.verification_token, expires_in=expires_in()
            )
        except errors.RingCentralError as exc:
            if exc.retryable or exc.status not in (400, 403):
                raise
            # Perhaps only the consent events are refused: messages must still come by webhook
            # (consent is then read by beat, messaging/tracking/consents.py).
            log.warning(
                "Webhook of connection %s refused (%s); without consent events", sub.pk, exc
            )
            filters, refused_at = rc_subscriptions.MESSAGE_FILTERS, now
            info = client.create_subscription(
                address=address,
                token=sub.verification_token,
                expires_in=expires_in(),
                filters=filters,
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
        event_filters=list(filters),
        consents_refused_at=refused_at,
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


def start_refresh(connection_id: int) -> None:
    """Called by the task before it reads: deliveries from now on may ask for another read."""
    WebhookSubscription.objects.filter(connection_id=connection_id).update(
        refresh_requested_at=None
    )


def forget(connection) -> None:
    """Before a connection's tokens are deleted: delete its subscription at RingCentral (best
    effort) and forget it. Never raises."""
    sub = WebhookSubscription.objects.filter(connection_id=connection.pk).first()
    if sub is None:
        return
    if sub.rc_subscription_id and connection.is_usable:
        try:
            if _granted(connection, limits.SEND_GROUP):
                client_for(connection).delete_subscription(sub.rc_subscription_id)
        except Exception as exc:  # a disconnect must succeed whatever happens here
            # Left behind, it is refused by our endpoint and blacklisted by RingCentral.
            log.info("Deleting the webhook of connection %s failed: %s", connection.pk, exc)
    sub.delete()
