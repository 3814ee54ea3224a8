"""The tracking room's Celery tasks (names keep the `messaging.tasks.` prefix beat knows).

poll_statuses()              beat, every 10 s: read due delivery reports (polling.py)
refresh_after_webhook(id)    after a verified webhook delivery: read that connection's
                             recent not-final messages (webhooks.py schedules it)
maintain_webhook(id)         after a link: create or check the connection's subscription
renew_subscriptions()        beat, every 10 min: renew, verify, re-create subscriptions
read_consents(id)            after a link whose list could not be read at once: read the
                             account's SMS consent list (consents.py)
read_consents_due()          beat, every CONSENT_SYNC_INTERVAL: the same for links without a
                             working webhook
push_consent(record_id)      after a team admin opts a contact out or in by hand: write it to
                             RingCentral's consent list
"""

from celery import shared_task

from messaging.tracking import consents, polling, subscriptions


@shared_task(ignore_result=True, name="messaging.tasks.poll_statuses")
def poll_statuses() -> dict[str, int]:
    return polling.poll()


@shared_task(ignore_result=True, name="messaging.tasks.refresh_after_webhook")
def refresh_after_webhook(connection_id: int) -> dict[str, int]:
    # Cleared first: a notification arriving during the read asks for another one.
    subscriptions.start_refresh(connection_id)
    return polling.refresh_connection(connection_id)


@shared_task(ignore_result=True, name="messaging.tasks.maintain_webhook")
def maintain_webhook(connection_id: int) -> str:
    return subscriptions.maintain_subscription(connection_id, verify=True)


@shared_task(ignore_result=True, name="messaging.tasks.renew_subscriptions")
def renew_subscriptions() -> dict[str, int]:
    return subscriptions.maintain_all()


@shared_task(ignore_result=True, name="messaging.tasks.read_consents")
def read_consents(connection_id: int) -> dict[str, int]:
    return consents.read_all(connection_id)


@shared_task(ignore_result=True, name="messaging.tasks.read_consents_due")
def read_consents_due() -> dict[str, int]:
    return consents.read_due()


# A change made by hand that RingCentral could not take now (network, 5xx) is written again
# after 1, 2, 4, … minutes, for about a day.
PUSH_RETRIES = 10


@shared_task(
    bind=True, ignore_result=True, name="messaging.tasks.push_consent", max_retries=PUSH_RETRIES
)
def push_consent(self, record_id: int) -> dict[str, int]:
    counts = consents.push(record_id)
    if counts.get("failed") and self.request.called_directly is False:
        raise self.retry(countdown=60 * 2 ** min(self.request.retries, 10))
    return counts
