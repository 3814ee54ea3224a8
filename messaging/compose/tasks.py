"""The compose room's Celery task (its name keeps the `messaging.tasks.` prefix beat knows)."""

from celery import shared_task

from messaging.compose import drafts


@shared_task(ignore_result=True, name="messaging.tasks.cleanup")
def cleanup(batch: int = 200, most: int = 5000) -> int:
    """Beat, hourly: delete expired draft uploads and their files.

    Compose also purges a few at every upload, but a team that stops composing would otherwise
    keep abandoned photos in storage forever. Batches keep each transaction short."""
    removed = 0
    while removed < most:
        purged = drafts.purge_expired_drafts(limit=batch)
        removed += purged
        if purged < batch:
            break
    return removed
