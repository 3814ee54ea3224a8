"""Message sync: the inbox's complete source, with or without a webhook.

Each usable connection has an `InboxSync` row. Its first sync is a full one (`FSync`) from
`INBOX_HISTORY_DAYS` ago, so threads start with their context (the history import; several
requests going back page by page when there is more than one page). From then on every sync is
incremental (`ISync` with the token of the last answer): one request brings whatever was
received, sent from elsewhere or changed since, however long the portal was away. A token
RingCentral no longer honours (`errors.FullSyncRequired`) leads to a full sync from shortly
before the last good one, never to a stuck inbox.

When: beat runs `sync_due` every two seconds; a connection is due `INBOX_SYNC_INTERVAL` seconds
after its last sync (so that, without a webhook, a new message shows within about half a
minute), or `INBOX_SYNC_INTERVAL_WITH_WEBHOOK` while its webhook delivers instant messages (the
sync then only backs the webhook up). Every verified webhook delivery also asks for a sync at
once (`request_sync`: one pending at a time; one asked for while another runs follows it).
Every request takes a grant of the linked user's Light budget from the shared rate limiter,
which delivery tracking uses too; a 429 pauses that budget for everyone. A lease on the row
keeps two syncs of one connection apart.

The answers also hold our own sent messages whose status changed: their delivery reports go to
tracking (`polling.reports_received`), which then has nothing to read for them itself.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from messaging.inbox import schedule
from messaging.inbox.storing import store_record
from messaging.links.tokens import client_for
from messaging.models import (
    InboxSync,
    MessageSource,
    RingCentralConnection,
    WebhookSubscription,
)
from messaging.ringcentral import errors, limits
from messaging.ringcentral.message_sync import SyncAnswer
from messaging.sending import ratelimit
from messaging.tracking import polling

log = logging.getLogger(__name__)

# Records asked for per full-sync request; older ones are fetched page by page.
PAGE_RECORDS = 1000
MAX_HISTORY_PAGES = 20
# A full sync after a refused token starts this long before the last good sync.
RECOVERY_MARGIN = timedelta(hours=1)
# How long a sync holds its connection. Short, because a worker killed mid-sync holds the
# inbox (and the delivery reports sync brings) still until it ends; a long history import
# renews it as it stores (`LEASE_RENEW_EVERY` records).
LEASE = timedelta(seconds=30)
LEASE_RENEW_EVERY = 200
LIMITER_MAX_WAIT = 2.0
# A sync asked for but not started after this long (its task was lost) may be asked for again.
REQUEST_PENDING_AT_MOST = timedelta(seconds=30)
# Syncs asked for by webhooks start at least this far apart: in a busy hour RingCentral
# notifies several times a second, and one sync answers for all of them.
REQUEST_MIN_GAP = timedelta(seconds=2)
# Waits after failed syncs: 30 s, 2 min, 10 min, then every 30 min.
FAILURE_BACKOFF = (30, 120, 600, 1800)
MAX_CONNECTIONS_PER_RUN = 200


def history_days() -> int:
    return settings.INBOX_HISTORY_DAYS


def interval(*, webhook_healthy: bool) -> timedelta:
    seconds = (
        settings.INBOX_SYNC_INTERVAL_WITH_WEBHOOK
        if webhook_healthy
        else settings.INBOX_SYNC_INTERVAL
    )
    return timedelta(seconds=seconds)


def due_connection_ids(now: datetime) -> list[int]:
    usable = RingCentralConnection.objects.filter(status__in=RingCentralConnection.USABLE_STATUSES)
    # Every usable link has a row; a new link's row is due at once.
    missing = usable.exclude(inbox_sync__isnull=False).values_list("pk", flat=True)
    InboxSync.objects.bulk_create(
        [InboxSync(connection_id=pk, next_sync_at=now) for pk in missing], ignore_conflicts=True
    )
    return list(
        InboxSync.objects.filter(connection__in=usable, next_sync_at__lte=now)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .order_by("next_sync_at")
        .values_list("connection_id", flat=True)[:MAX_CONNECTIONS_PER_RUN]
    )


def sync_due(now: datetime | None = None) -> dict[str, int]:
    """One beat run: sync every connection that is due."""
    now = now or timezone.now()
    counts: Counter = Counter()
    for connection_id in due_connection_ids(now):
        counts.update(sync_connection(connection_id, now=now))
    return dict(counts)


def request_sync(connection_id: int, now: datetime | None = None) -> bool:
    """After a verified webhook delivery: sync this connection now (an instant delivery brought
    one message, a change notification none; sync brings everything, and confirms). A sync
    already asked for and not yet started answers for this one too. Returns True."""
    now = now or timezone.now()
    InboxSync.objects.bulk_create(
        [InboxSync(connection_id=connection_id, next_sync_at=now)], ignore_conflicts=True
    )
    asked = (
        InboxSync.objects.filter(connection_id=connection_id)
        .filter(Q(requested_at__isnull=True) | Q(requested_at__lt=now - REQUEST_PENDING_AT_MOST))
        .update(requested_at=now)
    )
    if asked:
        last = InboxSync.objects.filter(connection_id=connection_id).values_list(
            "synced_at", flat=True
        )[0]
        wait = 0.0 if last is None else (last + REQUEST_MIN_GAP - now).total_seconds()
        schedule.after_commit(schedule.SYNC, connection_id, countdown=max(wait, 0.0) or None)
    return True


def sync_is_possible(connection_id: int) -> bool:
    """Can a sync of this connection be expected to work (a usable link whose last sync did
    not fail)? Otherwise callers rely on something else."""
    return (
        RingCentralConnection.objects.filter(
            pk=connection_id, status__in=RingCentralConnection.USABLE_STATUSES
        ).exists()
        and not InboxSync.objects.filter(connection_id=connection_id, failures__gt=0).exists()
    )


def sync_connection(connection_id: int, *, now: datetime | None = None) -> dict[str, int]:
    """Sync one connection now if nobody else is; returns counts (`stored`, `known`,
    `requests`, `busy`, `deferred`, `failed`, `full`)."""
    now = now or timezone.now()
    counts: Counter = Counter()
    connection = RingCentralConnection.objects.filter(pk=connection_id).first()
    if connection is None or not connection.is_usable:
        counts["skipped"] += 1
        return counts
    InboxSync.objects.bulk_create(
        [InboxSync(connection=connection, next_sync_at=now)], ignore_conflicts=True
    )
    claimed = (
        InboxSync.objects.filter(connection=connection)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .update(leased_until=now + LEASE, requested_at=None)
    )
    if not claimed:
        # Another sync runs: whatever this one was asked for follows it, at the next beat.
        InboxSync.objects.filter(connection=connection).update(next_sync_at=now)
        counts["busy"] += 1
        return counts
    state = InboxSync.objects.get(connection=connection)
    key = ratelimit.key_for(connection, limits.READ_GROUP)
    limiter = ratelimit.get_limiter()
    healthy = _webhook_healthy(connection, now)
    try:
        answers, source = _read(connection, state, limiter, key, now, counts)
    except errors.RateLimited as exc:
        limiter.pause(key, exc.retry_after)
        _finish(state, next_at=now + timedelta(seconds=exc.retry_after or 30))
        counts["deferred"] += 1
        return counts
    except errors.RingCentralError as exc:
        failures = state.failures + 1
        wait = FAILURE_BACKOFF[min(failures, len(FAILURE_BACKOFF)) - 1]
        log.warning("Message sync of connection %s failed: %s", connection_id, exc)
        _finish(
            state,
            next_at=now + timedelta(seconds=wait),
            failures=failures,
            last_error=f"{exc.reason} ({exc})"[:1000],
        )
        counts["failed"] += 1
        return counts
    except _Deferred as wait:
        _finish(state, next_at=now + timedelta(seconds=wait.seconds))
        counts["deferred"] += 1
        return counts
    records = [record for answer in answers for record in answer.records]
    # Oldest first, so that each conversation ends showing its newest message.
    records.sort(key=lambda r: (r.created_at or now, r.id))
    for index, record in enumerate(records, start=1):
        stored = store_record(connection, record, source=source)
        counts["stored" if stored.created else "known"] += 1
        if index % LEASE_RENEW_EVERY == 0:
            InboxSync.objects.filter(pk=state.pk).update(leased_until=timezone.now() + LEASE)
    counts.update(polling.reports_received(connection.pk, records, now))
    for answer in answers:
        _observe(limiter, key, answer)
    fields = {
        "sync_token": answers[0].token,
        "synced_at": now,
        "failures": 0,
        "last_error": "",
    }
    if source == MessageSource.HISTORY:
        fields["history_imported_at"] = now
    _finish(state, next_at=now + interval(webhook_healthy=healthy), **fields)
    return counts


class _Deferred(Exception):
    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.seconds = seconds


def _grant(limiter, key) -> None:
    wait = limiter.acquire([key], max_wait=LIMITER_MAX_WAIT)
    if wait > 0:
        raise _Deferred(wait)


def _read(connection, state, limiter, key, now, counts) -> tuple[list[SyncAnswer], str]:
    """The answers of this sync (newest first; the first one's token is the one to keep) and
    the source to record the messages under."""
    client = client_for(connection)
    if state.sync_token:
        _grant(limiter, key)
        counts["requests"] += 1
        try:
            return [client.sync_messages(token=state.sync_token)], MessageSource.SYNC
        except errors.FullSyncRequired:
            log.info("RingCentral asked connection %s for a full sync", connection.pk)
    counts["full"] += 1
    if state.history_imported_at is None:
        since, source = now - timedelta(days=history_days()), MessageSource.HISTORY
    else:
        since, source = (state.synced_at or now) - RECOVERY_MARGIN, MessageSource.SYNC
    _grant(limiter, key)
    counts["requests"] += 1
    answers = [client.sync_messages(date_from=since, record_count=PAGE_RECORDS)]
    # Older pages: each asks for what lies before the oldest record so far.
    while answers[-1].older_exist and answers[-1].records and len(answers) < MAX_HISTORY_PAGES:
        oldest = min((r.created_at for r in answers[-1].records if r.created_at), default=None)
        if oldest is None:
            break
        try:
            _grant(limiter, key)
        except _Deferred:
            log.info("History of connection %s cut short by the rate limit", connection.pk)
            break
        counts["requests"] += 1
        answers.append(
            client.sync_messages(date_from=since, date_to=oldest, record_count=PAGE_RECORDS)
        )
    return answers, source


def _observe(limiter, key, answer: SyncAnswer) -> None:
    if answer.headers:
        try:
            limiter.observe(key, answer.headers)
        except Exception:
            log.warning("Rate limiter unavailable; RingCentral's answer not recorded")


def _finish(state: InboxSync, *, next_at: datetime, **fields) -> None:
    InboxSync.objects.filter(pk=state.pk).update(next_sync_at=next_at, leased_until=None, **fields)


def _webhook_healthy(connection, now: datetime) -> bool:
    """Does the connection's webhook deliver instant messages now?"""
    sub = WebhookSubscription.objects.filter(connection=connection).first()
    return (
        sub is not None
        and sub.is_healthy(now)
        and any("/instant" in f for f in (sub.event_filters or []))
    )
