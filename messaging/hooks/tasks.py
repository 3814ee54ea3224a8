"""The hooks room's Celery tasks: one delivery attempt, and beat's sweep of due retries.

A retry due within `COUNTDOWN_LIMIT` is scheduled as a countdown on the task; later ones (up
to ten hours) are left to `deliver_due_webhooks`, which beat runs every 30 s, since a broker
holding a task for hours may hand it out twice (Redis' visibility timeout) or lose it with its
worker. The sweep also finds deliveries whose hand-off failed (a broker outage).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from messaging.hooks import delivery
from messaging.models import DeliveryStatus, WebhookDelivery

log = logging.getLogger(__name__)

COUNTDOWN_LIMIT = 5 * 60
# Deliveries handed to a worker are left to it for this long before the sweep sends them.
SWEEP_GRACE = timedelta(seconds=30)


def _hand_off(delivery_id: int, countdown: float = 0) -> None:
    try:
        deliver_webhook.apply_async((delivery_id,), countdown=countdown)
    except Exception:
        # The sweep will find it; an outage of the broker must not fail what triggered it.
        log.warning("Could not hand webhook delivery %s to a worker", delivery_id, exc_info=True)


def send_soon(delivery_ids) -> None:
    """Hand deliveries to a worker once the transaction that created them commits."""
    ids = list(delivery_ids)
    transaction.on_commit(lambda: [_hand_off(pk) for pk in ids], robust=True)


@shared_task(name="messaging.tasks.deliver_webhook")
def deliver_webhook(delivery_id: int) -> float | None:
    delay = delivery.attempt(delivery_id)
    if delay is not None and delay <= COUNTDOWN_LIMIT:
        transaction.on_commit(lambda: _hand_off(delivery_id, delay), robust=True)
    return delay


@shared_task(name="messaging.tasks.deliver_due_webhooks")
def deliver_due_webhooks(limit: int = 500) -> int:
    now = timezone.now()
    due = list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)
        .filter(
            Q(next_attempt_at__isnull=True, created_at__lte=now - SWEEP_GRACE)
            | Q(next_attempt_at__lte=now - SWEEP_GRACE)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in due:
        _hand_off(pk)
    return len(due)
