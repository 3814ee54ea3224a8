"""How the inbox follows the outbox and the links (signals, connected when the app is ready)."""

from django.dispatch import receiver

from messaging.inbox import schedule, storing
from messaging.links import signals as link_signals
from messaging.models import InboxSync
from messaging.outbox import signals as outbox_signals


@receiver(outbox_signals.messages_created, dispatch_uid="inbox.thread_new_messages")
def thread_new_messages(sender, messages, **kwargs) -> None:
    """Messages written in the portal join their conversations at once."""
    storing.record_portal_messages(messages)


@receiver(link_signals.connection_linked, dispatch_uid="inbox.sync_new_link")
def sync_new_link(sender, connection_id: int, **kwargs) -> None:
    """A new link imports its history now rather than at the next beat run. A link made again
    keeps its sync state: the next sync continues where the last one stopped."""
    InboxSync.objects.bulk_create([InboxSync(connection_id=connection_id)], ignore_conflicts=True)
    schedule.after_commit(schedule.SYNC, connection_id)
