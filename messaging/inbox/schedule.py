"""Work the inbox hands to a worker after the current transaction commits.

Tasks are named, not imported: messaging/inbox/tasks.py imports the modules that call these,
and a name keeps the room free of import cycles. If the broker is down at that moment the work
is not lost: the scheduled sync, the download sweep and the notices in the app catch up.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction

log = logging.getLogger(__name__)

SYNC = "messaging.tasks.sync_inbox"
DOWNLOAD = "messaging.tasks.download_inbox_files"
EMAIL = "messaging.tasks.email_inbox_notifications"


def after_commit(task: str, *args, countdown: float | None = None) -> None:
    def hand_over():
        try:
            current_app.send_task(task, args=args, countdown=countdown)
        except Exception:
            log.warning("Could not hand %s%s to a worker; the next sweep will", task, args)

    transaction.on_commit(hand_over)
