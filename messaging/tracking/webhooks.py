"""A verified webhook delivery: what it asks of the portal.

Two kinds arrive. Message-store notifications carry no ids of changed messages, so one that
announces changes asks for a read of the connection's messages: an incremental message sync
when the inbox's handler takes it (one request brings every change, whatever the number of
messages), else a read of the recent not-final messages (`refresh_after_webhook`), at once,
unless one is already pending. Instant-message notifications carry a received message whole;
they go to the inbox's handler. Both handlers are registered when the app starts
(`register_*_handler`, from MessagingConfig.ready: the inbox sits above tracking, which never
imports it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from messaging.models import WebhookSubscription
from messaging.tracking.tasks import refresh_after_webhook

# Deliveries arriving while a refresh is pending ask for nothing more; after this long without
# the refresh having started (broker trouble), a delivery asks again.
REFRESH_DEBOUNCE = timedelta(seconds=30)


INSTANT_EVENT = "/message-store/instant"

_instant_handler = None
_changes_handler = None


def register_instant_handler(handler) -> None:
    """`handler(connection_id, body) -> str` stores a received message; it answers
    "no message" when the body holds none."""
    global _instant_handler
    _instant_handler = handler


def register_changes_handler(handler) -> None:
    """`handler(connection_id) -> bool` reads the connection's changes (a message sync); it
    answers False when it cannot, and the read falls back to tracking's own."""
    global _changes_handler
    _changes_handler = handler


def is_instant(payload: dict) -> bool:
    return INSTANT_EVENT in str(payload.get("event") or "")


def instant_received(sub: WebhookSubscription, payload: dict, now: datetime | None = None) -> str:
    """A verified instant-message delivery for `sub`: the message goes to the inbox."""
    now = now or timezone.now()
    WebhookSubscription.objects.filter(pk=sub.pk).update(last_delivery_at=now)
    if _instant_handler is None:
        return "no handler"
    return _instant_handler(sub.connection_id, payload.get("body"))


def webhook_received(sub: WebhookSubscription, payload: dict, now: datetime | None = None) -> bool:
    """A verified delivery for `sub`: remember it, and ask for one read of the connection's
    messages unless one is already pending. Returns True when a read was requested.

    With the inbox's sync, any notification asks for one; otherwise only changes to existing
    messages need a read, and a notification that only announces new ones does not.
    """
    now = now or timezone.now()
    WebhookSubscription.objects.filter(pk=sub.pk).update(last_delivery_at=now)
    # A sync brings new messages too (one sent from a desk phone), so it is asked for on any
    # notification; tracking's own read only helps with changes.
    if _changes_handler is not None and _changes_handler(sub.connection_id):
        return True
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
    connection_id = sub.connection_id
    transaction.on_commit(
        lambda: refresh_after_webhook.apply_async((connection_id,), retry=False), robust=True
    )
    return True


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
