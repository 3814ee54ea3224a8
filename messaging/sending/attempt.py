"""One attempt at sending one message: due? -> shared rate limiter -> claim (committed) ->
token -> POST -> the outcome recorded by the state machine (messaging/outbox/states.py).

Safe to run any number of times for the same message, in any number of processes: only the run
that wins `states.claim` sends. The limiter is asked before the claim, so a message held back
by a limit keeps its attempts. What to do next is returned, not done: the task that called
(messaging/sending/tasks.py) schedules the next run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from messaging.core import streaming
from messaging.links.tokens import client_for
from messaging.models import CLAIMABLE_STATUSES, Attachment, MessageStatus, OutboundMessage
from messaging.outbox import rows, states
from messaging.ringcentral import errors, limits, multipart
from messaging.sending import ratelimit

log = logging.getLogger(__name__)

# Waits the limiter asks for up to this long are slept through; longer ones defer the message
# and free the worker.
SHORT_WAIT = 1.0
# A task arriving this much before its message is due waits instead of leaving it to a later run.
DUE_TOLERANCE = 1.0
# A request may start only within this share of the lease after the claim. The rest covers the
# sweeper's clock running ahead of this worker's and the time the request itself takes; settings
# keep the lease above 4 × (connect + read timeouts), so a healthy send never comes near it.
LEASE_USABLE_SHARE = 0.75


@dataclass(frozen=True)
class Result:
    """What an attempt did (`what`, for logs and tests) and, when the message should be tried
    again soon, in how many seconds (`again_in`)."""

    what: str
    again_in: float | None = None


def attempt(message_id: int) -> Result:
    """Make one attempt at sending the message, if it is due (see the module docstring)."""
    limiter = ratelimit.get_limiter()
    if limiter.enabled:
        claimed = _claim_within_limits(message_id, limiter)
    else:
        # Nothing to ask before the claim, which checks by itself that the message is due; the
        # message is read again only when the claim fails, to say why.
        claimed = states.claim(message_id)
        if claimed is None:
            claimed = _claim_when_due(message_id)
    if isinstance(claimed, Result):
        return claimed
    message, send_attempt = claimed
    # A recipient may have opted out since the message was queued: it is not posted to them.
    if states.refuse_opted_out(message, send_attempt):
        return Result("opted out")
    send_key = ratelimit.key_for(message.connection, limits.SEND_GROUP)
    # The sweeper gives a claim up after OUTBOX_SENDING_LEASE and another worker may then send
    # the message; a request must never leave this worker that late (see _post).
    not_after = time.monotonic() + settings.OUTBOX_SENDING_LEASE * LEASE_USABLE_SHARE
    try:
        return _post(message, send_attempt, limiter, send_key, not_after)
    except Exception as exc:
        # A bug or an infrastructure failure after the claim: the request may or may not have
        # gone out, so the message waits for the message store instead of being retried blindly.
        try:
            states.mark_unknown(
                message,
                send_attempt,
                states.Failure(reason="The send stopped on an unexpected error.", detail=repr(exc)),
            )
        except Exception:
            log.exception("Could not mark message %s unknown; the sweeper will", message.pk)
        raise


def _claim_within_limits(message_id: int, limiter):
    """Due? -> the user's and the number's budget -> the claim: the claimed message and its
    attempt, or the Result that says why not."""
    facts = states.send_facts(message_id)
    if facts is None or facts.status not in CLAIMABLE_STATUSES:
        return Result("not claimable")
    early = seconds_until(facts.next_attempt_at)
    if early > DUE_TOLERANCE:
        return Result("not due")  # its countdown or the dispatcher brings it back
    if early > 0:
        time.sleep(early)
    keys = ratelimit.send_keys(
        ratelimit.identity(facts.account_id, facts.extension_id), facts.from_number
    )
    wait = limiter.acquire(keys, max_wait=SHORT_WAIT)
    if wait > 0:
        deferred = states.defer(message_id, wait)
        return Result("deferred", wait if deferred else None)
    return states.claim(message_id) or Result("taken")


def _claim_when_due(message_id: int):
    """After a failed claim: why it failed, and a second claim when the message is due within
    DUE_TOLERANCE (the task came a moment early)."""
    facts = states.send_facts(message_id)
    if facts is None or facts.status not in CLAIMABLE_STATUSES:
        return Result("not claimable")
    early = seconds_until(facts.next_attempt_at)
    if early > DUE_TOLERANCE:
        return Result("not due")
    if early > 0:
        time.sleep(early)
    return states.claim(message_id) or Result("taken")


def _post(message, send_attempt, limiter, send_key, not_after: float) -> Result:
    try:
        # The client's first step is the token (refreshed under the row lock when due;
        # ConnectionBroken when the link is gone); then the body is built from storage,
        # re-checking the limits with the files as they are now; then the POST.
        client = client_for(message.connection, just_read=True)
        sent = client.send(*wire_message(message), not_after=not_after)
    except errors.OutcomeUnknown as exc:
        log.warning("Message %s: outcome unknown (%s); reconciling", message.pk, exc)
        states.mark_unknown(message, send_attempt, states.Failure.from_error(exc))
        return Result("unknown")
    except errors.RateLimited as exc:
        # Every request during RingCentral's penalty restarts it: stop this user's sends in
        # every worker, not just this message.
        _best_effort(limiter.pause, send_key, exc.retry_after)
        _observe(limiter, send_key, exc.rate_limit)
        return Result("rate limited", _retry(message, send_attempt, exc, counts_as_attempt=False))
    except errors.RingCentralError as exc:
        # ConnectionBroken lands here as a permanent failure whose fix says "Reconnect
        # RingCentral"; everything else as the error table says.
        _observe(limiter, send_key, exc.rate_limit)
        if exc.retryable:
            return Result("retry", _retry(message, send_attempt, exc))
        states.record_failure(message, send_attempt, states.Failure.from_error(exc))
        return Result("failed")
    # A sweeper that thought this worker dead may have moved the message to unknown meanwhile;
    # RingCentral's answer is the better evidence.
    states.record_success(
        message,
        send_attempt,
        states.Accepted.of(sent.record, http_status=sent.http_status, rate_limit=sent.rate_limit),
        from_statuses=[MessageStatus.SENDING, MessageStatus.UNKNOWN],
    )
    _observe(limiter, send_key, sent.rate_limit)
    return Result("sent")


def wire_message(message: OutboundMessage) -> tuple:
    """What the client sends for `message`: (from, to, text, files), recipients and files in
    their models' order, from the rows prefetched with the message when there are
    (`states.claim` does), the files streamed from storage.

    Who may still be sent to was asked just before, in `attempt` (`states.refuse_opted_out`)."""
    storage = Attachment._meta.get_field("file").storage
    files = [
        StreamedAttachment(storage, a.file.name, a.original_name, a.content_type, a.size)
        for a in rows.prefetched(message, "attachments")
    ]
    recipients = [recipient.phone_number for recipient in rows.prefetched(message, "recipients")]
    return message.from_number, recipients, message.text, files


class StreamedAttachment(multipart.StoredAttachment):
    """A stored file read front to back as the body is written, one buffer at a time whatever
    the storage (messaging/core/streaming.py)."""

    def open(self):
        return streaming.open_stream(self.storage, self.name)


def _retry(message, send_attempt, exc, *, counts_as_attempt: bool = True) -> float | None:
    """Schedule a retry; the seconds until it is due, or None when there is none (attempts used
    up, or the message moved on meanwhile)."""
    failure = states.Failure.from_error(exc)
    return states.schedule_retry(
        message, send_attempt, failure, counts_as_attempt=counts_as_attempt
    )


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


def seconds_until(moment) -> float:
    return (moment - timezone.now()).total_seconds() if moment is not None else 0.0
