"""The API room's Celery task.

purge_idempotency_keys   hourly: Idempotency-Keys older than API_IDEMPOTENCY_HOURS
"""

from celery import shared_task

from messaging.api import idempotency


@shared_task(ignore_result=True, name="messaging.tasks.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    return idempotency.purge_expired()
