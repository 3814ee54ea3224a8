"""The contacts room's Celery task.

import_contacts(job_id)   after an import is started or resumed: the whole file, in chunks
                          (messaging/contacts/importing.py); a run stopped by a server
                          error is resumed from the import's page, where it stopped; one
                          whose worker was lost is given to another worker
"""

from celery import shared_task
from django.db import transaction

from messaging.contacts import importing


# Acknowledged when done, not when received: if the worker is lost mid-import the broker hands
# the task to another worker, whose run continues where the chunks committed so far end.
@shared_task(
    ignore_result=True,
    name="messaging.tasks.import_contacts",
    acks_late=True,
    reject_on_worker_lost=True,
)
def import_contacts(job_id: int) -> str:
    return importing.run(job_id)


def import_soon(job_id: int) -> None:
    """Hand a queued import to a worker once the transaction that queued it commits."""
    transaction.on_commit(lambda: import_contacts.delay(job_id))
