"""How delivery tracking follows the life of a link (signals of messaging/links/signals.py,
connected when the app is ready), and the consent changes made by hand
(messaging/consent/signals.py)."""

from django.db import transaction
from django.dispatch import receiver

from messaging.consent.signals import consent_changed
from messaging.links import signals
from messaging.models import ConsentSource
from messaging.tracking import consents, subscriptions
from messaging.tracking.tasks import maintain_webhook, push_consent, read_consents


@receiver(signals.connection_linked, dispatch_uid="tracking.subscribe_new_link")
def subscribe_new_link(sender, connection_id: int, **kwargs) -> None:
    """After a (re-)link commits: create or check the subscription in a worker (the handshake
    needs this portal to answer RingCentral while the request is running)."""
    if not subscriptions.webhook_address():
        return
    transaction.on_commit(lambda: maintain_webhook.delay(connection_id), robust=True)


@receiver(signals.connection_disconnecting, dispatch_uid="tracking.forget_subscription")
def forget_subscription(sender, connection, **kwargs) -> None:
    subscriptions.forget(connection)


@receiver(signals.numbers_synced, dispatch_uid="tracking.read_consents_of_link")
def read_consents_of_link(sender, connection_id: int, **kwargs) -> None:
    """Once a link's numbers are known (just linked, or synced on request), read the account's
    consent list into the ledger, in this process, so that no message can be composed to a
    contact RingCentral already knows opted out. When it cannot be read now, a worker tries
    again shortly."""

    def read_now() -> None:
        counts = consents.read_all(connection_id)
        if counts.get("failed") or counts.get("deferred"):
            read_consents.apply_async((connection_id,), countdown=60)

    transaction.on_commit(read_now, robust=True)


@receiver(consent_changed, dispatch_uid="tracking.push_manual_consent")
def push_manual_consent(sender, record, **kwargs) -> None:
    """A change made by hand goes to RingCentral's consent list too (after commit, in a
    worker)."""
    if record.source != ConsentSource.MANUAL:
        return
    record_id = record.pk
    transaction.on_commit(lambda: push_consent.delay(record_id), robust=True)
