"""The links room's Celery task (its name keeps the `messaging.tasks.` prefix beat knows)."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from messaging.links import tokens
from messaging.models import RingCentralConnection
from messaging.ringcentral.errors import RingCentralError

log = logging.getLogger(__name__)

# Refresh tokens live 7 days by default and only a refresh renews them, so a user who sends
# nothing for a week would lose the link. Beat runs this hourly; two days leaves room for a
# RingCentral outage.
KEEP_ALIVE_WINDOW = timedelta(days=2)


@shared_task(name="messaging.tasks.keep_connections_alive")
def keep_connections_alive() -> dict[str, int]:
    """Refresh every usable connection whose refresh token lapses within KEEP_ALIVE_WINDOW."""
    due = RingCentralConnection.objects.filter(
        status__in=RingCentralConnection.USABLE_STATUSES,
        refresh_expires_at__lt=timezone.now() + KEEP_ALIVE_WINDOW,
    ).values_list("pk", flat=True)
    counts = {"refreshed": 0, "failed": 0}
    for connection_id in list(due):
        try:
            tokens.fresh_access_token(connection_id, refresh_lapses_within=KEEP_ALIVE_WINDOW)
        except RingCentralError as exc:
            # Broken links are marked and their admins told by fresh_access_token; transient
            # failures are retried by the next run.
            log.warning("Keeping RingCentral connection %s alive failed: %s", connection_id, exc)
            counts["failed"] += 1
        else:
            counts["refreshed"] += 1
    return counts
