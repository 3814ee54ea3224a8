"""How delivery tracking follows the life of a link (signals of messaging/links/signals.py,
connected when the app is ready)."""

from django.db import transaction
from django.dispatch import receiver

from messaging.links import signals
from messaging.tracking import subscriptions
from messaging.tracking.tasks import maintain_webhook


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
