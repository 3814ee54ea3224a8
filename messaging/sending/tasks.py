"""The sending room's Celery tasks. Thin on purpose: each calls the module that owns the logic.

    send_message(id)     one attempt (messaging/sending/attempt.py); a deferral or a retry
                         due soon runs it again by countdown, on the queue it came from
    dispatch_due()       beat, every 5 s: due messages to send_message (lost broker messages,
                         retries and deferrals beyond a countdown, messages queued while the
                         broker was down)
    release_scheduled()  beat, every 15 s: scheduled messages whose time came -> queued (or
                         waiting out quiet hours, or held when far too late): see
                         messaging/outbox/states.py, section 6
    sweep_stuck()        beat, every minute: sends whose lease ran out (a killed worker) -> unknown
    reconcile_unknown()  beat, every 30 s: unknown outcomes settled from RingCentral's store
                         (messaging/sending/reconcile.py)

Why a message is never sent twice: the claim is a compare-and-set committed before the POST, so
of two deliveries of the same task (a Redis redelivery, a countdown racing the dispatcher) only
one gets past it; and once a request may have reached RingCentral the message goes to `unknown`,
which only the message store can settle. Why none is lost: every path ends in a state that the
dispatcher, the sweeper or the reconciler picks up again, whatever the broker dropped.

Task names keep the `messaging.tasks.` prefix they were first published under, so beat's
schedule and messages already waiting in a broker keep working.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from messaging.outbox import states
from messaging.sending import reconcile
from messaging.sending.attempt import attempt

log = logging.getLogger(__name__)

# Countdowns are set a little past the moment the message becomes due, never before it.
COUNTDOWN_SLACK = 0.05


@shared_task(bind=True, ignore_result=True, name="messaging.tasks.send_message")
def send_message(self, message_id: int) -> str:
    """Make one attempt at sending the message, if it is due; returns what happened."""
    queue = (self.request.delivery_info or {}).get("routing_key")
    result = attempt(message_id)
    if result.again_in is not None:
        _send_later(message_id, result.again_in, queue)
    return result.what


def send_soon(message_id: int) -> None:
    """Hand a queued message to a worker (the outbox calls it after the commit that queued it)."""
    send_message.delay(message_id)


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


@shared_task(ignore_result=True, name="messaging.tasks.dispatch_due")
def dispatch_due() -> int:
    """Hand every due message to a worker; duplicates of a pending task are harmless."""
    due = states.due_message_ids()
    for message_id in due:
        send_message.delay(message_id)
    return len(due)


@shared_task(ignore_result=True, name="messaging.tasks.sweep_stuck")
def sweep_stuck() -> int:
    """Sends whose lease ran out become unknown (see states.sweep_stuck)."""
    return states.sweep_stuck()


@shared_task(ignore_result=True, name="messaging.tasks.reconcile_unknown")
def reconcile_unknown() -> dict[str, int]:
    """Settle unknown outcomes from RingCentral's message store (see reconcile.reconcile_all)."""
    return reconcile.reconcile_all()


@shared_task(ignore_result=True, name="messaging.tasks.release_scheduled")
def release_scheduled() -> dict[str, int]:
    """Release scheduled messages whose time has come (see states.release_due)."""
    released = states.release_due()
    return {
        "queued": len(released.queued),
        "held": len(released.held),
        "waiting": len(released.waiting),
    }
