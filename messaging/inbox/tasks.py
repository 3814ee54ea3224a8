"""The inbox's Celery tasks (names keep the `messaging.tasks.` prefix, as every task does).

sync_inboxes()                 beat, every 5 s: message sync of every connection that is due
sync_inbox(id)                 after an instant delivery: sync that connection now
download_inbox_files(id=None)  after a message with files is stored; beat, every minute, for
                               files whose earlier try failed
email_inbox_notifications(conversation, message)   after a message is received
"""

from celery import shared_task

from messaging.inbox import downloads, notifications, sync


@shared_task(ignore_result=True, name="messaging.tasks.sync_inboxes")
def sync_inboxes() -> dict[str, int]:
    return sync.sync_due()


@shared_task(ignore_result=True, name="messaging.tasks.sync_inbox")
def sync_inbox(connection_id: int) -> dict[str, int]:
    return sync.sync_connection(connection_id)


@shared_task(ignore_result=True, name="messaging.tasks.download_inbox_files")
def download_inbox_files(entry_id: int | None = None) -> dict[str, int]:
    return downloads.download_files(entry_id)


@shared_task(ignore_result=True, name="messaging.tasks.email_inbox_notifications")
def email_inbox_notifications(conversation_id: int, entry_id: int) -> int:
    return notifications.email_people(conversation_id, entry_id)
