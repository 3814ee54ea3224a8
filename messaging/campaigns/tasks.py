"""The campaigns' Celery tasks; thin, the logic is in messaging/campaigns/running.py.

feed_campaigns()      beat, every few seconds: the next messages of every running campaign
feed_campaign(id)     at once after a campaign is started or resumed (a High Volume one sends
                      its batches: messaging/campaigns/batches.py)
follow_high_volume_campaigns()   beat: the results of High Volume batches still on their way
"""

from __future__ import annotations

from celery import shared_task

from messaging.campaigns import batches, running


@shared_task(ignore_result=True, name="messaging.tasks.feed_campaigns")
def feed_campaigns() -> int:
    return running.feed()


@shared_task(ignore_result=True, name="messaging.tasks.feed_campaign")
def feed_campaign(campaign_id: int) -> int:
    return running.feed_campaign(campaign_id)


@shared_task(ignore_result=True, name="messaging.tasks.follow_high_volume_campaigns")
def follow_high_volume_campaigns() -> int:
    return batches.follow()


def feed_soon(campaign_id: int) -> None:
    feed_campaign.delay(campaign_id)
