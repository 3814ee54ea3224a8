"""Celery tasks. Thin on purpose: each one calls the module that owns the logic.

Sending (the state machine is messaging/outbox.py; the wire is messaging/ringcentral/client.py):

    send_message(id)     one attempt: due? -> shared rate limiter -> claim (committed) -> token ->
                         POST -> record_success | schedule_retry | record_failure | mark_unknown
    dispatch_due()       beat, every 5 s: due messages to send_message (lost broker messages,
                         retries and deferrals beyond a countdown, messages queued while the
                         broker was down)
    sweep_stuck()        beat, every minute: sends whose lease ran out (a killed worker) -> unknown
    reconcile_unknown()  beat, every 30 s: unknown outcomes settled from RingCentral's store
    cleanup()            beat, hourly: expired draft uploads and their files

Why a message is never sent twice: the claim is a compare-and-set committed before the POST, so
of two deliveries of the same task (a Redis redelivery, a countdown racing the dispatcher) only
one gets past it; and once a request may have reached RingCentral the message goes to `unknown`,
which only the message store can settle. Why none is lost: every path ends in a state that the
dispatcher, the sweeper or the reconciler picks up again, whatever the broker dropped.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from datetime import timedelta

from celery import shared_task, signals
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from . import limits, outbox, ratelimit
from .models import CLAIMABLE_STATUSES, MessageStatus, OutboundMessage, RingCentralConnection
from .ringcentral import connections, errors, oauth
from .ringcentral.client import (
    RingCentralClient,
    SentMessage,
    match_sent,
    pooled_session,
    search_start,
)
from .ringcentral.errors import RingCentralError

log = logging.getLogger(__name__)

# Refresh tokens live 7 days by default and only a refresh renews them, so a user who sends
# nothing for a week would lose the link. Beat runs this hourly; two days leaves room for a
# RingCentral outage.
KEEP_ALIVE_WINDOW = timedelta(days=2)


@shared_task
def keep_connections_alive() -> dict[str, int]:
    """Refresh every usable connection whose refresh token lapses within KEEP_ALIVE_WINDOW."""
    due = RingCentralConnection.objects.filter(
        status__in=RingCentralConnection.USABLE_STATUSES,
        refresh_expires_at__lt=timezone.now() + KEEP_ALIVE_WINDOW,
    ).values_list("pk", flat=True)
    counts = {"refreshed": 0, "failed": 0}
    for connection_id in list(due):
        try:
            oauth.fresh_access_token(connection_id, refresh_lapses_within=KEEP_ALIVE_WINDOW)
        except RingCentralError as exc:
            # Broken links are marked and their admins told by fresh_access_token; transient
            # failures are retried by the next run.
            log.warning("Keeping RingCentral connection %s alive failed: %s", connection_id, exc)
            counts["failed"] += 1
        else:
            counts["refreshed"] += 1
    return counts


@shared_task(bind=True, max_retries=3)
def sync_sender_numbers(self, connection_id: int) -> dict[str, int] | None:
    """Re-read the connection's phone numbers from RingCentral."""
    connection = RingCentralConnection.objects.filter(pk=connection_id).first()
    if connection is None or not connection.is_usable:
        return None
    try:
        result = connections.sync_numbers(connection)
    except RingCentralError as exc:
        if exc.retryable:
            raise self.retry(exc=exc, countdown=exc.retry_after or 60) from exc
        log.warning("Syncing numbers of RingCentral connection %s failed: %s", connection_id, exc)
        return None
    return {"added": result.added, "updated": result.updated, "deactivated": result.deactivated}


@signals.task_postrun.connect
def _drop_broken_connections(**kwargs) -> None:
    # Workers keep their database connection across tasks (CELERY_DB_REUSE_MAX); as after a web
    # request, one that failed or outlived CONN_MAX_AGE is closed here and the next task opens a
    # fresh one, instead of every later task failing on it.
    close_old_connections()


# Sending ------------------------------------------------------------------------------------

# Waits the limiter asks for up to this long are slept through in the task; longer ones defer
# the message and free the worker.
SHORT_WAIT = 1.0
# A task arriving this much before its message is due waits instead of leaving it to a later run.
DUE_TOLERANCE = 1.0
# Countdowns are set a little past the moment the message becomes due, never before it.
COUNTDOWN_SLACK = 0.05
# A request may start only within this share of the lease after the claim. The rest covers the
# sweeper's clock running ahead of this worker's and the time the request itself takes; settings
# keep the lease above 4 × (connect + read timeouts), so a healthy send never comes near it.
LEASE_USABLE_SHARE = 0.75


def limit_identity(connection) -> str:
    """The rate-limit identity of a RingCentral user (see messaging/ratelimit.py)."""
    return identity_of(connection.account_id, connection.extension_id)


def identity_of(account_id: str, extension_id: str) -> str:
    return f"{account_id}/{extension_id}"


def client_for(connection) -> RingCentralClient:
    # One keep-alive session per worker process: sends skip the TCP and TLS handshakes.
    return RingCentralClient(connection, session=pooled_session())


@shared_task(bind=True, ignore_result=True)
def send_message(self, message_id: int) -> str:
    """Make one attempt at sending the message, if it is due; returns what happened.

    Safe to run any number of times for the same message, in any number of processes: only the
    run that wins `outbox.claim` sends. The limiter is asked before the claim, so a message
    held back by a limit keeps its attempts; it is deferred and comes back by countdown, on the
    queue this run came from.
    """
    queue = (self.request.delivery_info or {}).get("routing_key")
    found = (
        OutboundMessage.objects.filter(pk=message_id)
        .values_list(
            "status",
            "next_attempt_at",
            "from_number",
            "connection__account_id",
            "connection__extension_id",
        )
        .first()
    )
    if found is None or found[0] not in CLAIMABLE_STATUSES:
        return "not claimable"
    _, next_attempt_at, from_number, account_id, extension_id = found
    early = _seconds_until(next_attempt_at)
    if early > DUE_TOLERANCE:
        return "not due"  # its countdown or the dispatcher brings it back
    if early > 0:
        time.sleep(early)

    limiter = ratelimit.get_limiter()
    keys = ratelimit.send_keys(identity_of(account_id, extension_id), from_number)
    wait = limiter.acquire(keys, max_wait=SHORT_WAIT)
    if wait > 0:
        if outbox.defer(message_id, wait):
            _send_later(message_id, wait, queue)
        return "deferred"

    claimed = outbox.claim(message_id)
    if claimed is None:
        return "taken"
    message, attempt = claimed
    # The sweeper gives a claim up after OUTBOX_SENDING_LEASE and another worker may then send
    # the message; a request must never leave this worker that late (see _attempt).
    not_after = time.monotonic() + settings.OUTBOX_SENDING_LEASE * LEASE_USABLE_SHARE
    try:
        return _attempt(message, attempt, limiter, keys[0], queue, not_after)
    except Exception as exc:
        # A bug or an infrastructure failure after the claim: the request may or may not have
        # gone out, so the message waits for the message store instead of being retried blindly.
        try:
            outbox.mark_unknown(
                message,
                attempt,
                outbox.Failure(reason="The send stopped on an unexpected error.", detail=repr(exc)),
            )
        except Exception:
            log.exception("Could not mark message %s unknown; the sweeper will", message.pk)
        raise


def _attempt(message, attempt, limiter, send_key, queue, not_after: float) -> str:
    try:
        # The client's first step is `oauth.fresh_access_token` (refreshed under the row lock when
        # due; ConnectionBroken when the link is gone); then the body is built from storage,
        # re-checking the limits with the files as they are now; then the POST.
        sent = client_for(message.connection).send(message, not_after=not_after)
    except errors.OutcomeUnknown as exc:
        log.warning("Message %s: outcome unknown (%s); reconciling", message.pk, exc)
        outbox.mark_unknown(message, attempt, outbox.Failure.from_error(exc))
        return "unknown"
    except errors.RateLimited as exc:
        # Every request during RingCentral's penalty restarts it: stop this user's sends in
        # every worker, not just this message.
        _best_effort(limiter.pause, send_key, exc.retry_after)
        _observe(limiter, send_key, exc.rate_limit)
        _retry(message, attempt, exc, queue, counts_as_attempt=False)
        return "rate limited"
    except RingCentralError as exc:
        # ConnectionBroken lands here as a permanent failure whose fix says "Reconnect
        # RingCentral"; everything else as the error table says.
        _observe(limiter, send_key, exc.rate_limit)
        if exc.retryable:
            _retry(message, attempt, exc, queue)
            return "retry"
        outbox.record_failure(message, attempt, outbox.Failure.from_error(exc))
        return "failed"
    # A sweeper that thought this worker dead may have moved the message to unknown meanwhile;
    # RingCentral's answer is the better evidence.
    outbox.record_success(
        message,
        attempt,
        accepted(sent),
        from_statuses=[MessageStatus.SENDING, MessageStatus.UNKNOWN],
    )
    _observe(limiter, send_key, sent.rate_limit)
    return "sent"


def accepted(sent: SentMessage) -> outbox.Accepted:
    return outbox.Accepted(
        rc_message_id=sent.id,
        conversation_id=sent.conversation_id,
        recipient_statuses=dict(sent.recipient_statuses),
        http_status=sent.http_status,
        rate_limit=dict(sent.rate_limit),
    )


def _retry(message, attempt, exc, queue, *, counts_as_attempt: bool = True) -> None:
    failure = outbox.Failure.from_error(exc)
    if not outbox.schedule_retry(message, attempt, failure, counts_as_attempt=counts_as_attempt):
        return
    due = (
        OutboundMessage.objects.filter(pk=message.pk, status=MessageStatus.RETRY_WAIT)
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if due is not None:
        _send_later(message.pk, _seconds_until(due), queue)


def _send_later(message_id: int, seconds: float, queue: str | None) -> None:
    """Re-schedule by countdown when that is short; otherwise the dispatcher brings it back."""
    if seconds > settings.OUTBOX_MAX_COUNTDOWN:
        return
    try:
        send_message.apply_async(
            (message_id,), countdown=max(seconds, 0.0) + COUNTDOWN_SLACK, queue=queue
        )
    except Exception:
        log.warning("Could not re-schedule message %s; the dispatcher will", message_id)


def _observe(limiter, key, headers) -> None:
    if headers:
        _best_effort(limiter.observe, key, headers)


def _best_effort(call, *args) -> None:
    """Tell the limiter what RingCentral said, unless the limiter's store (Redis, the database)
    is down: RingCentral's answer is known by then and must be recorded whatever happens; the
    next acquire, or RingCentral's next 429, puts the pacing right again."""
    try:
        call(*args)
    except Exception:
        log.warning("Rate limiter unavailable; RingCentral's answer not recorded", exc_info=True)


def _seconds_until(moment) -> float:
    return (moment - timezone.now()).total_seconds() if moment is not None else 0.0


@shared_task(ignore_result=True)
def dispatch_due() -> int:
    """Hand every due message to a worker; duplicates of a pending task are harmless."""
    due = outbox.due_message_ids()
    for message_id in due:
        send_message.delay(message_id)
    return len(due)


@shared_task(ignore_result=True)
def sweep_stuck() -> int:
    """Sends whose lease ran out become unknown (see outbox.sweep_stuck)."""
    return outbox.sweep_stuck()


@shared_task(ignore_result=True)
def cleanup(batch: int = 200, most: int = 5000) -> int:
    """Beat, hourly: delete expired draft uploads and their files.

    Compose also purges a few at every upload, but a team that stops composing would otherwise
    keep abandoned photos in storage forever. Batches keep each transaction short."""
    from . import compose

    removed = 0
    while removed < most:
        purged = compose.purge_expired_drafts(limit=batch)
        removed += purged
        if purged < batch:
            break
    return removed


@shared_task(ignore_result=True)
def reconcile_unknown() -> dict[str, int]:
    """Settle unknown outcomes from RingCentral's message store.

    One listing per RingCentral user covers all of its unknown messages: one Light-group grant
    from the shared limiter per listing (more than one page is rare), and a user whose budget is
    used up waits for the next run. Each message is matched to a record no other message has.
    """
    counts: Counter[str] = Counter()
    by_connection = defaultdict(list)
    for message in outbox.unknown_messages():
        by_connection[message.connection_id].append(message)
    if not by_connection:
        return {}
    limiter = ratelimit.get_limiter()
    for group in by_connection.values():
        connection = group[0].connection
        key = ratelimit.LimitKey(limit_identity(connection), limits.READ_GROUP)
        if limiter.try_acquire([key]) > 0:
            counts["waiting"] += len(group)
            continue
        since = min(search_start(m) for m in group)
        try:
            records = list(client_for(connection).sent_since(since))
        except errors.RateLimited as exc:
            limiter.pause(key, exc.retry_after)
            counts["waiting"] += len(group)
            continue
        except RingCentralError as exc:
            log.warning("Reconciling for connection %s failed: %s", connection.pk, exc)
            counts["error"] += len(group)
            continue
        taken = set(
            OutboundMessage.objects.filter(
                connection=connection, rc_message_id__in=[r.id for r in records]
            ).values_list("rc_message_id", flat=True)
        )
        for message in group:
            found = match_sent(message, records, exclude_ids=taken)
            if found is not None:
                taken.add(found.id)
            status = outbox.reconcile(message, accepted(found) if found else None)
            counts[str(status)] += 1
    return dict(counts)


# Delivery tracking -------------------------------------------------------------------------------
#
#   poll_statuses()              beat, every 10 s: read due delivery reports (messaging/tracking.py)
#   refresh_after_webhook(id)    after a verified webhook delivery: read that connection's
#                                recent not-final messages
#   maintain_webhook(id)         after a link: create or check the connection's subscription
#   renew_subscriptions()        beat, every 10 min: renew, verify, re-create subscriptions


@shared_task(ignore_result=True)
def poll_statuses() -> dict[str, int]:
    from . import tracking

    return tracking.poll()


@shared_task(ignore_result=True)
def refresh_after_webhook(connection_id: int) -> dict[str, int]:
    from . import tracking

    # Cleared first: a notification arriving during the read asks for another one.
    tracking.start_refresh(connection_id)
    return tracking.refresh_connection(connection_id)


@shared_task(ignore_result=True)
def maintain_webhook(connection_id: int) -> str:
    from . import tracking

    return tracking.maintain_subscription(connection_id, verify=True)


@shared_task(ignore_result=True)
def renew_subscriptions() -> dict[str, int]:
    from . import tracking

    return tracking.maintain_all()
