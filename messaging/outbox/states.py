"""The outbox state machine: the only code that changes a message's status.

Views, tasks, management commands and admin actions call these functions; none of them writes
`OutboundMessage.status` itself. Every transition is a compare-and-set (an UPDATE filtered on the
statuses it may leave), so two processes racing for the same message cannot both win.

Sending a message, step by step (messaging/sending/attempt.py drives it):

1. `enqueue` hands the message to a worker after the creating transaction commits (through
   messaging/outbox/handoff.py, so that this module never imports Celery code); if the broker
   is down then, the dispatcher (`due_message_ids`, run by beat) finds it later.
2. `claim` moves queued/retry_wait -> sending, stamps the lease and opens a SendAttempt, and
   commits before any HTTP call: a crash after this point leaves evidence, never a silent resend.
3. The answer decides: `record_success` (sent), `schedule_retry` (retry_wait, or failed once the
   attempts are used up), `record_failure` (failed, with a reason and a fix), `mark_unknown` (the
   request may have reached RingCentral but no answer came back).
4. An unknown outcome is never resent blindly: `reconcile` looks for the message in RingCentral's
   message store; found -> sent, still missing after a grace period -> queued again.
5. `sweep_stuck` turns leases that outlived any possible request (a killed worker) into unknown.

Scheduled sends (section 6): `schedule` parks a just-created message as `scheduled`;
`release_due` (beat, every 15 s) moves each due one to queued — or moves its release to the
end of the team's quiet hours, or holds it when its time passed more than
`SCHEDULE_MAX_LATENESS` ago (the portal was down); `reschedule`, `send_now` and `cancel` are a
person's changes until it is released.

Before the request, the send asks `refuse_opted_out`: a message whose recipient opted out
after it was queued is failed ("Not sent: opted out" on that recipient) and never posted.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from messaging import audit
from messaging.consent import checks as consent_checks
from messaging.consent import ledger, quiet_hours
from messaging.models import (
    CLAIMABLE_STATUSES,
    AttemptOutcome,
    AuditAction,
    ConsentSource,
    ConsentState,
    MessageStatus,
    OutboundMessage,
    Recipient,
    RecipientStatus,
    RingCentralConnection,
    SendAttempt,
)
from messaging.outbox import delivery_errors, handoff, notifications, rows, scheduling, signals
from messaging.outbox.events import EventKind, record_event
from messaging.outbox.send_sql import ATTEMPT_RESULT as _ATTEMPT_RESULT
from messaging.outbox.send_sql import statements as _sql
from messaging.ringcentral.records import MessageRecord

log = logging.getLogger(__name__)

# Each wait of `OUTBOX_BACKOFF_SECONDS` (before attempt 2, 3, …) is spread by ±20 % so that
# messages failed by the same outage do not all come back in the same second.
JITTER = 0.2


def max_attempts() -> int:
    return settings.OUTBOX_MAX_ATTEMPTS


def _lease() -> timedelta:
    return timedelta(seconds=settings.OUTBOX_SENDING_LEASE)


def _reconcile_grace() -> timedelta:
    return timedelta(seconds=settings.OUTBOX_RECONCILE_GRACE)


@dataclass
class Accepted:
    """What RingCentral said when it accepted a message."""

    rc_message_id: str
    conversation_id: str = ""
    recipient_statuses: dict[str, str] = field(default_factory=dict)  # E.164 -> RC messageStatus
    http_status: int = 200
    rate_limit: dict = field(default_factory=dict)

    @classmethod
    def of(cls, record: MessageRecord, *, http_status: int = 200, rate_limit=None) -> Accepted:
        """What a RingCentral record of the message (the send answer or the store's) says."""
        return cls(
            rc_message_id=record.id,
            conversation_id=record.conversation_id,
            recipient_statuses=record.recipient_statuses,
            http_status=http_status,
            rate_limit=dict(rate_limit or {}),
        )


@dataclass
class Failure:
    """Why an attempt did not end in acceptance (built from a RingCentralError or a crash)."""

    reason: str
    fix: str = ""
    code: str = ""
    http_status: int | None = None
    retry_after: float | None = None
    rate_limit: dict = field(default_factory=dict)
    detail: str = ""

    @classmethod
    def from_error(cls, error) -> Failure:
        return cls(
            reason=getattr(error, "reason", str(error)),
            fix=getattr(error, "fix", ""),
            code=getattr(error, "code", ""),
            http_status=getattr(error, "status", None),
            retry_after=getattr(error, "retry_after", None),
            rate_limit=getattr(error, "rate_limit", {}) or {},
            detail=str(error)[:500],
        )


# Remote (RingCentral) recipient statuses mapped onto ours.
_RECIPIENT_STATUS_FROM_RC = {
    "Queued": RecipientStatus.QUEUED,
    "Sent": RecipientStatus.SENT,
    "Delivered": RecipientStatus.DELIVERED,
    "DeliveryFailed": RecipientStatus.DELIVERY_FAILED,
    "SendingFailed": RecipientStatus.SENDING_FAILED,
}


def _set(message_id: int, from_statuses, **fields) -> bool:
    """Compare-and-set: apply `fields` only if the message is still in one of `from_statuses`."""
    fields.setdefault("updated_at", timezone.now())
    return (
        OutboundMessage.objects.filter(pk=message_id, status__in=list(from_statuses)).update(
            **fields
        )
        == 1
    )


def current_status(message_id: int) -> str:
    """The message's status as stored now, for a caller whose transition did not happen."""
    return OutboundMessage.objects.values_list("status", flat=True).get(pk=message_id)


def _finish_attempt(
    attempt: SendAttempt | None,
    outcome: str,
    failure: Failure | None = None,
    *,
    http_status=None,
    rate_limit=None,
) -> None:
    if attempt is None:
        return
    closing = _attempt_result(
        attempt, outcome, failure, http_status=http_status, rate_limit=rate_limit
    )
    with connection.cursor() as cursor:
        cursor.execute(_sql().finish_attempt, [*closing, attempt.pk])


def _attempt_result(
    attempt: SendAttempt, outcome: str, failure=None, *, http_status=None, rate_limit=None
) -> list:
    """Close `attempt` in memory; the values of `ATTEMPT_RESULT` as the database takes them."""
    attempt.finished_at = timezone.now()
    attempt.outcome = outcome
    if failure is not None:
        attempt.http_status = failure.http_status
        attempt.rc_error_code = failure.code
        attempt.rate_limit = failure.rate_limit
        attempt.detail = failure.detail or failure.reason
    else:
        attempt.http_status = http_status
        attempt.rate_limit = rate_limit or {}
    database = rows.database()
    return [rows.prep(SendAttempt, f, getattr(attempt, f), database) for f in _ATTEMPT_RESULT]


# 1. Enqueue ------------------------------------------------------------------------------------


def enqueue(message_ids) -> None:
    """Hand messages to a worker once the surrounding transaction has committed.

    `robust=True`: if the broker is unreachable the messages stay queued in the database and the
    dispatcher picks them up; the user's request still succeeds.
    """
    for message_id in message_ids:
        transaction.on_commit(lambda pk=message_id: handoff.send_soon(pk), robust=True)


def due_message_ids(limit: int = 500, stale_after: float = 30.0) -> list[int]:
    """Messages a worker should try now: retries that are due, and queued messages whose first
    hand-off is older than `stale_after` seconds (the broker lost it or was down)."""
    now = timezone.now()
    stale = now - timedelta(seconds=stale_after)
    due = Q(status=MessageStatus.RETRY_WAIT, next_attempt_at__lte=now) | Q(
        status=MessageStatus.QUEUED, created_at__lte=stale
    ) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    return list(
        OutboundMessage.objects.filter(due)
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def defer(message_id: int, seconds: float) -> bool:
    """Push a not-yet-claimed message back (the rate limiter said wait); no attempt is used."""
    until = timezone.now() + timedelta(seconds=max(seconds, 0.0))
    return _set(message_id, CLAIMABLE_STATUSES, next_attempt_at=until)


# 2. Claim --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendFacts:
    """What a worker reads of a message before it claims it (due? whose budget?)."""

    status: str
    next_attempt_at: datetime | None
    from_number: str
    account_id: str
    extension_id: str


def send_facts(message_id: int) -> SendFacts | None:
    """The message's status, when it is due, its sender and its RingCentral user; None if it
    is gone. One statement."""
    sql = _sql()
    with connection.cursor() as cursor:
        cursor.execute(sql.due, [message_id])
        found = cursor.fetchone()
    if found is None:
        return None
    loaded = rows.load(sql.due_columns, found[:3])
    return SendFacts(loaded.status, loaded.next_attempt_at, loaded.from_number, found[3], found[4])


def claim(message_id: int) -> tuple[OutboundMessage, SendAttempt] | None:
    """Take a due message for sending, or None if it is not due or someone else has it.

    Must not run inside a caller's transaction (`durable=True` enforces it): the claim has to be
    committed before the HTTP request starts. One transaction of two statements: the
    compare-and-set that returns the message's row, and the attempt's row numbered after the
    message's earlier ones. Then one read of the connection with the recipients and one of the
    files: the message comes back as `message_for_sending` gives it.
    """
    now = timezone.now()
    sql = _sql()
    # Every time column of the claim takes the same moment, prepared once.
    at = rows.prep(OutboundMessage, "updated_at", now, rows.database())
    claiming = [MessageStatus.SENDING, at, at, message_id, *CLAIMABLE_STATUSES, at]
    opening = [at, rows.prep(SendAttempt, "rate_limit", {}), AttemptOutcome.IN_PROGRESS]
    if sql.single_statement:
        # One statement in autocommit is committed when it returns. Inside a transaction,
        # Django's durable block refuses a caller's (and allows a test case's).
        durable = transaction.atomic(durable=True) if connection.in_atomic_block else nullcontext()
        with durable, connection.cursor() as cursor:
            cursor.execute(sql.claim_whole, [*claiming, *opening])
            found = cursor.fetchall()
        return _claimed(found, now) if found else None
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        cursor.execute(sql.claim, claiming)
        found = cursor.fetchone()
        if found is None:
            return None
        cursor.execute(sql.open_attempt, [message_id, *opening, message_id])
        attempt_id, number = cursor.fetchone()
    message = rows.load(sql.message, found)
    _load_for_sending(message)
    attempt = SendAttempt(
        id=attempt_id, message=message, number=number, started_at=now, rate_limit={}
    )
    attempt._state.adding = False
    return message, attempt


def _claimed(found: list, now) -> tuple[OutboundMessage, SendAttempt]:
    """The message and its attempt from the rows of `claim_whole`: per recipient, the message,
    the attempt's id and number, how many files it has, the connection, the recipient and
    whether the team holds an opt-out for the recipient's number (`none_opted_out` on the
    message when no row says so: `refuse_opted_out` then has nothing to ask)."""
    sql = _sql()
    database = rows.database()
    first = found[0]
    width = len(sql.message.fields)
    message = rows.load(sql.message, first[:width], database)
    attempt_id, number, files = first[width : width + 3]
    start = width + 3
    connection_end = start + len(sql.connection.fields)
    linked = rows.load(sql.connection, first[start:connection_end], database)
    start = connection_end
    OutboundMessage.connection.field.set_cached_value(message, linked)
    recipients = [
        rows.load(sql.recipient, row[start:-1], database) for row in found if row[start] is not None
    ]
    message.none_opted_out = not any(row[-1] for row in found)
    attachments = []
    if files:
        with connection.cursor() as cursor:
            cursor.execute(sql.attachments, [message.pk])
            attachments = [rows.load(sql.attachment, row, database) for row in cursor.fetchall()]
    for item in [*recipients, *attachments]:
        type(item).message.field.set_cached_value(item, message)
    rows.attach_prefetched(message, {"recipients": recipients, "attachments": attachments})
    attempt = SendAttempt(
        id=attempt_id, message=message, number=number, started_at=now, rate_limit={}
    )
    attempt._state.adding = False
    return message, attempt


def _load_for_sending(message: OutboundMessage) -> None:
    """Give `message` its connection, recipients and files as `message_for_sending` would."""
    sql = _sql()
    width = len(sql.connection.fields)
    with connection.cursor() as cursor:
        cursor.execute(sql.connection_and_recipients, [message.connection_id, message.pk])
        found = cursor.fetchall()
        cursor.execute(sql.attachments, [message.pk])
        files = [rows.load(sql.attachment, row) for row in cursor.fetchall()]
    if found:
        linked = rows.load(sql.connection, found[0][:width])
    else:  # a message always has a recipient; should one be missing, the ORM reads the link
        linked = RingCentralConnection.objects.get(pk=message.connection_id)
    OutboundMessage.connection.field.set_cached_value(message, linked)
    recipients = [rows.load(sql.recipient, row[width:]) for row in found]
    for item in [*recipients, *files]:
        type(item).message.field.set_cached_value(item, message)
    rows.attach_prefetched(message, {"recipients": recipients, "attachments": files})


def message_for_sending(message_id: int) -> OutboundMessage:
    """The message with everything its send reads, read as a claim reads it: the connection
    (and its token), the recipients and the files. Raises `OutboundMessage.DoesNotExist`."""
    sql = _sql()
    with connection.cursor() as cursor:
        cursor.execute(sql.message_row, [message_id])
        found = cursor.fetchone()
    if found is None:
        raise OutboundMessage.DoesNotExist(f"no message {message_id}")
    message = rows.load(sql.message, found)
    _load_for_sending(message)
    return message


# 3. Outcomes -----------------------------------------------------------------------------------


def record_success(
    message: OutboundMessage,
    attempt: SendAttempt | None,
    accepted: Accepted,
    *,
    from_statuses=(MessageStatus.SENDING,),
) -> bool:
    """RingCentral accepted the message: `sent`, its recipients queued (or as the answer says),
    the attempt closed, in one transaction of (usually) three statements."""
    now = timezone.now()
    sql = _sql()
    statuses = list(from_statuses)
    # The values of `sql.accepted`'s columns: text as it is, the moment prepared once.
    database = rows.database()
    at = rows.prep(OutboundMessage, "sent_at", now, database)
    rc_message_id, conversation_id = str(accepted.rc_message_id), accepted.conversation_id or ""
    params = [MessageStatus.SENT, at, rc_message_id, conversation_id, None, "", "", "", at]
    # One UPDATE per status RingCentral gave (usually one for all); a recipient the answer
    # leaves out is queued at RingCentral like the rest.
    numbers_by_status = defaultdict(list)
    for recipient in rows.prefetched(message, "recipients"):
        rc_status = accepted.recipient_statuses.get(recipient.phone_number)
        status = _RECIPIENT_STATUS_FROM_RC.get(rc_status, RecipientStatus.QUEUED)
        numbers_by_status[status].append(recipient.phone_number)
    if sql.single_statement and len(numbers_by_status) == 1 and attempt is not None:
        (status,) = numbers_by_status
        closing = _attempt_result(
            attempt,
            AttemptOutcome.ACCEPTED,
            http_status=accepted.http_status,
            rate_limit=accepted.rate_limit,
        )
        with connection.cursor() as cursor:
            cursor.execute(
                sql.accepted_whole_for(len(statuses)),
                [*params, message.pk, *statuses, status, *closing, attempt.pk],
            )
            won = cursor.fetchone()[0] == 1
        if won:
            _status_changed(message, MessageStatus.SENT)
        return won
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.accepted_for(len(statuses)), [*params, message.pk, *statuses])
        if cursor.rowcount != 1:
            return False
        if len(numbers_by_status) == 1:
            (status,) = numbers_by_status
            cursor.execute(sql.recipients_status, [status, message.pk])
        else:
            for status, numbers in numbers_by_status.items():
                Recipient.objects.filter(message=message, phone_number__in=numbers).update(
                    status=status
                )
        _finish_attempt(
            attempt,
            AttemptOutcome.ACCEPTED,
            http_status=accepted.http_status,
            rate_limit=accepted.rate_limit,
        )
    _status_changed(message, MessageStatus.SENT)
    return True


def record_failure(
    message: OutboundMessage,
    attempt: SendAttempt | None,
    failure: Failure,
    *,
    from_statuses=(MessageStatus.SENDING,),
) -> bool:
    """A permanent failure: the message is `failed`, with RingCentral's code, a reason and a fix."""
    now = timezone.now()
    with transaction.atomic():
        won = _set(
            message.pk,
            from_statuses,
            status=MessageStatus.FAILED,
            final_at=now,
            next_attempt_at=None,
            error_code=failure.code,
            error_reason=failure.reason,
            error_fix=failure.fix,
        )
        if not won:
            return False
        message.recipients.update(
            status=RecipientStatus.FAILED, error_code=failure.code, error_reason=failure.reason
        )
        _finish_attempt(attempt, AttemptOutcome.PERMANENT, failure)
    _after_final_failure(message.pk)
    _status_changed(message, MessageStatus.FAILED)
    return True


def schedule_retry(
    message: OutboundMessage,
    attempt: SendAttempt | None,
    failure: Failure,
    *,
    counts_as_attempt: bool = True,
) -> float | None:
    """A retryable failure: wait (Retry-After, else the backoff table with jitter), then retry.

    Returns the seconds until the retry is due, or None when none was scheduled: the attempts
    are used up (the message is then failed) or the message moved on meanwhile.
    `counts_as_attempt=False` is for answers that say the request was not processed at all
    (429): they do not use up one of the `max_attempts()` tries.
    """
    used = message.attempts if counts_as_attempt else max(message.attempts - 1, 0)
    if counts_as_attempt and used >= max_attempts():
        gave_up = Failure(
            reason=f"RingCentral did not accept the message after {used} attempts. "
            f"Last answer: {failure.reason}",
            fix="Check RingCentral's status page, then retry the message.",
            code=failure.code,
            http_status=failure.http_status,
            rate_limit=failure.rate_limit,
            detail=failure.detail,
        )
        record_failure(message, attempt, gave_up)
        return None
    if failure.retry_after is not None:
        delay = failure.retry_after
    else:
        backoff = settings.OUTBOX_BACKOFF_SECONDS
        base = backoff[min(used, len(backoff)) - 1] if used else backoff[0]
        delay = base * random.uniform(1 - JITTER, 1 + JITTER)
    with transaction.atomic():
        won = _set(
            message.pk,
            [MessageStatus.SENDING],
            status=MessageStatus.RETRY_WAIT,
            next_attempt_at=timezone.now() + timedelta(seconds=max(delay, 0.0)),
            attempts=used,
            error_code=failure.code,
            error_reason=failure.reason,
            error_fix=failure.fix,
        )
        if won:
            outcome = AttemptOutcome.RETRYABLE if counts_as_attempt else AttemptOutcome.RATE_LIMITED
            _finish_attempt(attempt, outcome, failure)
    return max(delay, 0.0) if won else None


def mark_unknown(message: OutboundMessage, attempt: SendAttempt | None, failure: Failure) -> bool:
    """The request may have reached RingCentral but we never saw the answer."""
    with transaction.atomic():
        won = _set(
            message.pk,
            [MessageStatus.SENDING],
            status=MessageStatus.UNKNOWN,
            error_code=failure.code,
            error_reason="The connection to RingCentral was lost while sending; checking "
            "whether RingCentral received the message before trying again.",
            error_fix="Nothing to do: the message will not be sent twice.",
        )
        if won:
            _finish_attempt(attempt, AttemptOutcome.UNKNOWN, failure)
    return won


# 4. Reconcile ----------------------------------------------------------------------------------


def unknown_messages(limit: int = 200):
    return (
        OutboundMessage.objects.filter(status=MessageStatus.UNKNOWN)
        .select_related("connection", "sender_number")
        .order_by("sending_since")[:limit]
    )


def reconcile(message: OutboundMessage, found: Accepted | None) -> str:
    """Settle an unknown outcome with what RingCentral's message store says.

    Returns the new status, or "unknown" when it is too early to decide: RingCentral's store may
    lag, so a missing message is only queued again once the grace period has passed.
    """
    if found is not None:
        if record_success(message, None, found, from_statuses=[MessageStatus.UNKNOWN]):
            record_event(
                message.pk,
                EventKind.RECONCILED,
                f"Found in RingCentral's message store (id {found.rc_message_id}): the earlier "
                "attempt did reach RingCentral, so it is not sent again.",
            )
            return MessageStatus.SENT
        return current_status(message.pk)
    if message.sending_since and timezone.now() - message.sending_since < _reconcile_grace():
        return MessageStatus.UNKNOWN
    if message.attempts >= max_attempts():
        # Every attempt so far vanished on the way; stop instead of cycling forever. Nothing was
        # sent (RingCentral has no record), so a person may safely retry.
        record_failure(
            message,
            None,
            Failure(
                reason=f"None of the {message.attempts} attempts reached RingCentral: the "
                "connection kept breaking while sending.",
                fix="Check the network between this server and RingCentral, then retry.",
            ),
            from_statuses=[MessageStatus.UNKNOWN],
        )
        return current_status(message.pk)
    if _set(
        message.pk,
        [MessageStatus.UNKNOWN],
        status=MessageStatus.QUEUED,
        next_attempt_at=None,
        error_reason="RingCentral has no record of the message; it will be sent again.",
        error_fix="",
    ):
        record_event(
            message.pk,
            EventKind.RECONCILED,
            "RingCentral has no record of the earlier attempt, so the message is queued again.",
        )
        _dispatch_later(message.pk)
        return MessageStatus.QUEUED
    return current_status(message.pk)


def sweep_stuck() -> int:
    """Leases that outlived any request (the worker died mid-send) become unknown, never queued:
    the request may have reached RingCentral."""
    cutoff = timezone.now() - _lease()
    stuck = list(
        OutboundMessage.objects.filter(
            status=MessageStatus.SENDING, sending_since__lt=cutoff
        ).values_list("id", flat=True)
    )
    moved = 0
    for message_id in stuck:
        if _set(
            message_id,
            [MessageStatus.SENDING],
            status=MessageStatus.UNKNOWN,
            error_reason="The worker sending this message stopped; checking whether RingCentral "
            "received it before trying again.",
            error_fix="Nothing to do: the message will not be sent twice.",
        ):
            SendAttempt.objects.filter(
                message_id=message_id, outcome=AttemptOutcome.IN_PROGRESS
            ).update(
                outcome=AttemptOutcome.UNKNOWN,
                finished_at=timezone.now(),
                detail="worker stopped during the attempt",
            )
            record_event(
                message_id,
                EventKind.UNKNOWN,
                "The worker stopped while sending; checking RingCentral before trying again.",
            )
            moved += 1
    if moved:
        log.warning("Moved %d message(s) stuck in sending to unknown", moved)
    return moved


# 4b. Consent ------------------------------------------------------------------------------------

OPTED_OUT_CODE = "opted_out"
OPTED_OUT_FIX = (
    "Text them only after they opt back in (they text START, or a team admin records their "
    "consent on the Consent page)."
)


def refuse_opted_out(
    message: OutboundMessage, attempt: SendAttempt | None = None, refusals=None
) -> bool:
    """Fail a queued, waiting or claimed message instead of posting it when a recipient opted
    out of texts from its number since it was queued (`consent.checks.refused_at_send`, or the
    `refusals` the caller already has). Returns True when the message was refused: the caller
    then makes no request.

    Each opted-out recipient says "Not sent: opted out" with the reason; a group message
    cannot leave a member out, so its other members are canceled with it. The author is
    emailed, as for any failure.
    """
    if refusals is None:
        if getattr(message, "none_opted_out", False):
            return False  # the claim's own probe found no opt-out for any recipient
        refusals = consent_checks.refused_at_send(message)
    if not refusals:
        return False
    refused = {refusal.number: refusal for refusal in refusals}
    recipients = list(message.recipients.all())
    reason = refusals[0].message
    if len(recipients) > 1:
        reason = f"{len(refused)} of {len(recipients)} recipients opted out, and a group message "
        reason += "cannot leave anyone out. " + " ".join(r.message for r in refusals)
    now = timezone.now()
    with transaction.atomic():
        won = _set(
            message.pk,
            [*CLAIMABLE_STATUSES, MessageStatus.SENDING],
            status=MessageStatus.FAILED,
            final_at=now,
            next_attempt_at=None,
            error_code=OPTED_OUT_CODE,
            error_reason=reason,
            error_fix=OPTED_OUT_FIX,
        )
        if not won:
            return False
        for recipient in recipients:
            refusal = refused.get(recipient.phone_number)
            if refusal is not None:
                fields = {
                    "status": RecipientStatus.OPTED_OUT,
                    "error_reason": refusal.message,
                    "error_fix": OPTED_OUT_FIX,
                }
            else:
                fields = {
                    "status": RecipientStatus.CANCELED,
                    "error_reason": "Not sent: another member of the group opted out.",
                    "error_fix": "",
                }
            Recipient.objects.filter(pk=recipient.pk).update(
                error_code=OPTED_OUT_CODE, updated_at=now, **fields
            )
            text = (
                f"Not sent to {recipient.phone_number}: opted out."
                if refusal is not None
                else f"Not sent to {recipient.phone_number}: the group could not be sent."
            )
            record_event(message.pk, EventKind.RECIPIENT_STATUS, text, recipient.pk, at=now)
        _finish_attempt(
            attempt, AttemptOutcome.PERMANENT, Failure(reason=reason, code=OPTED_OUT_CODE)
        )
        record_event(message.pk, EventKind.FAILED, f"Not sent: {reason}", at=now)
    _after_final_failure(message.pk)
    _status_changed(message, MessageStatus.FAILED)
    return True


# 5. People's actions ---------------------------------------------------------------------------


def cancel(message: OutboundMessage) -> bool:
    """Only before a worker has claimed it; afterwards it may already be at RingCentral."""
    now = timezone.now()
    with transaction.atomic():
        won = _set(
            message.pk,
            [*CLAIMABLE_STATUSES, *WAITING_FOR_TIME],
            status=MessageStatus.CANCELED,
            final_at=now,
            next_attempt_at=None,
        )
        if won:
            message.recipients.update(status=RecipientStatus.CANCELED)
            record_event(message.pk, EventKind.CANCELED, "Canceled before it was sent.")
            audit.record(AuditAction.MESSAGE_CANCELED, team=message.team, target=message)
    return won


def requeue(message: OutboundMessage) -> bool:
    """Try a failed message again, with a fresh set of attempts."""
    with transaction.atomic():
        won = _set(
            message.pk,
            [MessageStatus.FAILED],
            status=MessageStatus.QUEUED,
            attempts=0,
            final_at=None,
            next_attempt_at=None,
            error_code="",
            error_reason="",
            error_fix="",
        )
        if won:
            message.recipients.update(
                status=RecipientStatus.PENDING, error_code="", error_reason="", error_fix=""
            )
            record_event(message.pk, EventKind.REQUEUED, "Queued again to retry.")
            audit.record(AuditAction.MESSAGE_RETRIED, team=message.team, target=message)
            enqueue([message.pk])
    return won


# 6. Scheduled sends ----------------------------------------------------------------------------

# A person may still change these: nothing has been handed to a worker.
WAITING_FOR_TIME = (MessageStatus.SCHEDULED, MessageStatus.HELD)


def max_lateness() -> timedelta:
    return timedelta(seconds=settings.SCHEDULE_MAX_LATENESS)


def schedule(message_ids, at: datetime, zone_name: str = "") -> int:
    """Park messages just created (queued, not yet handed off) until `at`; call it inside the
    creating transaction instead of `enqueue`."""
    ids = list(message_ids)
    moved = OutboundMessage.objects.filter(pk__in=ids, status=MessageStatus.QUEUED).update(
        status=MessageStatus.SCHEDULED,
        scheduled_for=at,
        scheduled_zone=zone_name[:64],
        next_attempt_at=at,
        updated_at=timezone.now(),
    )
    when = scheduling.describe(at, zone_name)
    for message_id in ids:
        record_event(message_id, EventKind.SCHEDULED, f"Scheduled for {when}.")
    return moved


def reschedule(
    message: OutboundMessage, *, at: datetime, zone_name: str = "", text: str | None = None
) -> bool:
    """A new time (and text) for a message that has not been released; a held one is
    scheduled again."""
    fields = {
        "status": MessageStatus.SCHEDULED,
        "scheduled_for": at,
        "scheduled_zone": zone_name[:64],
        "next_attempt_at": at,
    }
    if text is not None:
        fields["text"] = text
    with transaction.atomic():
        won = _set(message.pk, WAITING_FOR_TIME, **fields)
        if won:
            changed = " and its text changed" if text is not None and text != message.text else ""
            record_event(
                message.pk,
                EventKind.SCHEDULED,
                f"Rescheduled for {scheduling.describe(at, zone_name)}{changed}.",
            )
    return won


def send_now(message: OutboundMessage) -> bool:
    """A scheduled or held message goes to the queue at once, by a person's decision."""
    with transaction.atomic():
        won = _set(message.pk, WAITING_FOR_TIME, status=MessageStatus.QUEUED, next_attempt_at=None)
        if won:
            record_event(message.pk, EventKind.RELEASED, "Sent now, before its scheduled time.")
            enqueue([message.pk])
    return won


@dataclass
class Released:
    queued: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)  # quiet hours


def release_due(limit: int = 500) -> Released:
    """Scheduled messages whose time has come: to the queue; to the end of the team's quiet
    hours when it is quiet for any recipient; held when the time is more than
    `SCHEDULE_MAX_LATENESS` gone (the portal was not running then)."""
    now = timezone.now()
    result = Released()
    due = list(
        OutboundMessage.objects.filter(status=MessageStatus.SCHEDULED, next_attempt_at__lte=now)
        .select_related("team")
        .prefetch_related("recipients")
        .order_by("next_attempt_at", "id")[:limit]
    )
    for message in due:
        late = now - message.next_attempt_at
        if late > max_lateness():
            _hold(message, now, late)
            result.held.append(message.pk)
            continue
        numbers = [r.phone_number for r in message.recipients.all()]
        allowed = max(
            (quiet_hours.next_allowed(message.team, n, now) for n in numbers), default=now
        )
        if allowed > now:
            _wait_for_quiet_hours(message, allowed)
            result.waiting.append(message.pk)
            continue
        with transaction.atomic():
            if _set(
                message.pk,
                [MessageStatus.SCHEDULED],
                status=MessageStatus.QUEUED,
                next_attempt_at=None,
            ):
                record_event(message.pk, EventKind.RELEASED, "Its time came: queued to send.")
                enqueue([message.pk])
                result.queued.append(message.pk)
    return result


def _hold(message: OutboundMessage, now: datetime, late: timedelta) -> None:
    hours = late.total_seconds() / 3600
    due = scheduling.describe(message.next_attempt_at, message.scheduled_zone)
    with transaction.atomic():
        if _set(message.pk, [MessageStatus.SCHEDULED], status=MessageStatus.HELD):
            record_event(
                message.pk,
                EventKind.HELD,
                f"Held: it was due at {due}, {hours:.1f} hours ago, while the portal was not "
                "sending. Sending it this late may no longer make sense: send it now or cancel it.",
            )


def _wait_for_quiet_hours(message: OutboundMessage, allowed: datetime) -> None:
    with transaction.atomic():
        if _set(message.pk, [MessageStatus.SCHEDULED], next_attempt_at=allowed):
            record_event(
                message.pk,
                EventKind.SCHEDULED,
                "Waiting for the team's quiet hours to end: it goes at "
                f"{scheduling.describe(allowed, message.scheduled_zone)}.",
            )


# Hooks -----------------------------------------------------------------------------------------


def _status_changed(message: OutboundMessage, status: str) -> None:
    """Announce a status other rooms follow (outgoing webhooks); their receivers are cheap."""
    signals.message_status_changed.send(
        sender=OutboundMessage, message_id=message.pk, team_id=message.team_id, status=status
    )


def _dispatch_later(message_id: int) -> None:
    enqueue([message_id])


def _after_final_failure(message_id: int) -> None:
    """Tell the sender (notifications are sent after commit, never inside the transition)."""
    transaction.on_commit(lambda: notifications.message_failed(message_id), robust=True)


# Delivery --------------------------------------------------------------------------------------
#
# After acceptance RingCentral reports each recipient's fate in its message store (read by
# messaging/tracking/polling.py, by polling and after webhook notifications). Reports arrive
# late, twice or out of order, so a recipient's status only ever moves up this ladder:
#
#     pending < queued < sent < no_receipt < delivered | delivery_failed | sending_failed
#
# A report that would not move a recipient up changes nothing and records nothing. no_receipt is
# our own conclusion after a day of silence, so a real final report still replaces it; the three
# real outcomes are final. Recipients that RingCentral never accepted (failed, canceled) are
# never touched.
#
# The message's status follows from its recipients:
#   - while any recipient is pending, queued or sent, the message stays `sent`;
#   - once all are final it takes the most serious outcome among them:
#     sending_failed > delivery_failed > no_receipt > delivered.
#     So all delivered -> delivered; any failure -> that failure (reason and fix of the first
#     recipient with it; a group message says how many of its recipients it concerns); no
#     failure but some unconfirmed -> no_receipt.
# The message moves only up its own ladder (sent < no_receipt < delivered < delivery_failed <
# sending_failed), by compare-and-set.

_RECIPIENT_RANK = {
    RecipientStatus.PENDING: 0,
    RecipientStatus.QUEUED: 1,
    RecipientStatus.SENT: 2,
    RecipientStatus.NO_RECEIPT: 3,
    RecipientStatus.DELIVERED: 4,
    RecipientStatus.DELIVERY_FAILED: 4,
    RecipientStatus.SENDING_FAILED: 4,
}
_RECIPIENT_FINAL_RANK = 3
_MESSAGE_RANK = {
    MessageStatus.SENT: 0,
    MessageStatus.NO_RECEIPT: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.DELIVERY_FAILED: 3,
    MessageStatus.SENDING_FAILED: 4,
}
# Most serious first: the message's outcome once every recipient has one.
_OUTCOME_ORDER = (
    MessageStatus.SENDING_FAILED,
    MessageStatus.DELIVERY_FAILED,
    MessageStatus.NO_RECEIPT,
    MessageStatus.DELIVERED,
)
UNDELIVERED_STATUSES = (MessageStatus.DELIVERY_FAILED, MessageStatus.SENDING_FAILED)


@dataclass(frozen=True)
class DeliveryReport:
    """One recipient's state as RingCentral's message store gave it."""

    phone_number: str
    rc_status: str  # Queued, Sent, Delivered, DeliveryFailed or SendingFailed
    error_code: str = ""  # the record's deliveryErrorCode, when this recipient failed


def derive_message_status(recipient_statuses) -> str:
    """The status of an accepted message whose recipients have `recipient_statuses`."""
    ranked = [s for s in recipient_statuses if s in _RECIPIENT_RANK]
    if not ranked or any(_is_waiting(s) for s in ranked):
        return MessageStatus.SENT
    return next(outcome for outcome in _OUTCOME_ORDER if outcome in ranked)


def apply_delivery_report(message: OutboundMessage, recipient_reports, *, at=None) -> str:
    """Apply what the message store says about `message`'s recipients; return its status.

    `recipient_reports` are `DeliveryReport`s (numbers as RingCentral wrote them; unknown
    numbers and statuses are ignored); `at` is when RingCentral last changed the record (never
    later than now). Only real moves up the ladder change rows and record events, so applying
    the same or an older report again is harmless. Messages RingCentral has not accepted are
    left alone.
    """
    now = timezone.now()
    at = min(at, now) if at is not None else now
    with transaction.atomic():
        locked = _lock_tracked(message.pk)
        if locked is None:
            return current_status(message.pk)
        recipients = list(locked.recipients.all())
        for recipient, report in _match_reports(recipients, recipient_reports):
            new = _RECIPIENT_STATUS_FROM_RC.get(report.rc_status)
            if new is None:
                continue
            fields = {"status": new}
            if new in (RecipientStatus.DELIVERY_FAILED, RecipientStatus.SENDING_FAILED):
                why = delivery_errors.explain(report.error_code, report.rc_status)
                fields.update(error_code=why.code, error_reason=why.reason, error_fix=why.fix)
                if why.kind == delivery_errors.Kind.OPTED_OUT:
                    _opted_out_by_report(locked, recipient, report.error_code, at)
            elif new == RecipientStatus.DELIVERED:
                fields.update(error_code="", error_reason="", error_fix="")
            if _move_recipient(recipient, fields):
                _recipient_event(locked, recipient, at)
        return _settle(locked, recipients, at)


def _opted_out_by_report(message: OutboundMessage, recipient: Recipient, code: str, at) -> None:
    """The consent ledger learns the opt-out, for that RingCentral account and number."""
    account_id = (
        RingCentralConnection.objects.filter(pk=message.connection_id)
        .values_list("account_id", flat=True)
        .first()
    )
    ledger.record(
        message.team_id,
        recipient.phone_number,
        ConsentState.OPTED_OUT,
        ConsentSource.DELIVERY_REPORT,
        account_id=account_id or "",
        from_number=message.from_number,
        note=code,
        at=at,
    )


def give_up_delivery(message: OutboundMessage, *, reason: str, fix: str, at=None) -> str:
    """No final report came in time: every recipient still waiting becomes no_receipt with
    `reason` and `fix`, and the message follows (no_receipt, or a failure some other recipient
    already had). Returns the message's status."""
    at = at or timezone.now()
    with transaction.atomic():
        locked = _lock_tracked(message.pk)
        if locked is None:
            return current_status(message.pk)
        recipients = list(locked.recipients.all())
        for recipient in [r for r in recipients if _is_waiting(r.status)]:
            fields = {
                "status": RecipientStatus.NO_RECEIPT,
                "error_code": "",
                "error_reason": reason,
                "error_fix": fix,
            }
            if _move_recipient(recipient, fields):
                _recipient_event(locked, recipient, at)
        return _settle(locked, recipients, at)


def _is_waiting(recipient_status: str) -> bool:
    return _RECIPIENT_RANK.get(recipient_status, _RECIPIENT_FINAL_RANK) < _RECIPIENT_FINAL_RANK


def _lock_tracked(message_id: int) -> OutboundMessage | None:
    # A short row lock: two readers of the same message (poll and webhook) settle it in turn.
    return (
        OutboundMessage.objects.select_for_update()
        .filter(pk=message_id, status__in=list(_MESSAGE_RANK))
        .first()
    )


def _match_reports(recipients, reports):
    """Pairs (recipient, report). RingCentral may write a number without `+` or formatted, so
    numbers are compared by their digits, a national form matching the end of ours."""
    by_digits = {_digits(r.phone_number): r for r in recipients}
    for report in reports:
        digits = _digits(report.phone_number)
        recipient = by_digits.get(digits)
        if recipient is None and len(digits) >= 10:
            recipient = next(
                (r for d, r in by_digits.items() if d.endswith(digits) or digits.endswith(d)),
                None,
            )
        if recipient is not None:
            yield recipient, report


def _digits(number: str) -> str:
    return "".join(ch for ch in str(number) if ch.isdigit())


def _move_recipient(recipient: Recipient, fields: dict) -> bool:
    """Compare-and-set one recipient up the ladder; updates `recipient` in memory if it moved."""
    new_rank = _RECIPIENT_RANK[fields["status"]]
    lower = [s for s, rank in _RECIPIENT_RANK.items() if rank < new_rank]
    moved = Recipient.objects.filter(pk=recipient.pk, status__in=lower).update(
        updated_at=timezone.now(), **fields
    )
    if moved:
        for name, value in fields.items():
            setattr(recipient, name, value)
    return bool(moved)


def _recipient_event(message: OutboundMessage, recipient: Recipient, at) -> None:
    record_event(
        message.pk, EventKind.RECIPIENT_STATUS, _recipient_line(recipient), recipient.pk, at=at
    )


def _recipient_line(recipient: Recipient) -> str:
    number, status = recipient.phone_number, recipient.status
    if status == RecipientStatus.SENT:
        return f"Passed on to the carrier for {number}."
    if status == RecipientStatus.DELIVERED:
        return f"Delivered to {number}."
    if status == RecipientStatus.DELIVERY_FAILED:
        return f"Not delivered to {number}: {recipient.error_reason}"
    if status == RecipientStatus.SENDING_FAILED:
        return f"Not sent to {number}: {recipient.error_reason}"
    if status == RecipientStatus.NO_RECEIPT:
        return f"No delivery report for {number}: {recipient.error_reason}"
    return f"{number}: {recipient.get_status_display().lower()}."


def _settle(locked: OutboundMessage, recipients, at) -> str:
    """Move the message to the status its recipients imply, if that is further up."""
    target = derive_message_status(r.status for r in recipients)
    current = locked.status
    if _MESSAGE_RANK[target] <= _MESSAGE_RANK[current]:
        return current
    fields = {"status": target, "final_at": at, "next_check_at": None}
    concerned = [r for r in recipients if r.status == target]
    if target == MessageStatus.DELIVERED:
        fields.update(error_code="", error_reason="", error_fix="")
    else:
        first = concerned[0]
        prefix = ""
        if len(recipients) > 1:
            prefix = f"{len(concerned)} of {len(recipients)} recipients: "
        fields.update(
            error_code=first.error_code,
            error_reason=f"{prefix}{first.error_reason}",
            error_fix=first.error_fix,
        )
    lower = [s for s, rank in _MESSAGE_RANK.items() if rank < _MESSAGE_RANK[target]]
    if not _set(locked.pk, lower, **fields):
        return current_status(locked.pk)
    _status_changed(locked, target)
    if len(recipients) > 1:
        record_event(locked.pk, target, _message_line(target, concerned, recipients), at=at)
    if target in UNDELIVERED_STATUSES and current not in UNDELIVERED_STATUSES:
        _after_undelivered(locked.pk)
    return target


def _message_line(status: str, concerned, recipients) -> str:
    total = len(recipients)
    if status == MessageStatus.DELIVERED:
        return f"Delivered to all {total} recipients."
    if status == MessageStatus.NO_RECEIPT:
        return f"No delivery report for {len(concerned)} of {total} recipients."
    return f"Not delivered to {len(concerned)} of {total} recipients."


def _after_undelivered(message_id: int) -> None:
    """Tell the sender once, after commit, that RingCentral could not deliver the message."""
    transaction.on_commit(lambda: notifications.message_undelivered(message_id), robust=True)
