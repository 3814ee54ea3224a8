"""The campaigns' Celery tasks; thin, the logic is in messaging/campaigns/running.py.

feed_campaigns()      beat, every few seconds: the next messages of every running campaign
feed_campaign(id)     at once after a campaign is started or resumed
"""

from __future__ import annotations

from celery import shared_task

from messaging.campaigns import running


@shared_task(ignore_result=True, name="messaging.tasks.feed_campaigns")
def feed_campaigns() -> int:
    return running.feed()


@shared_task(ignore_result=True, name="messaging.tasks.feed_campaign")
def feed_campaign(campaign_id: int) -> int:
    return running.feed_campaign(campaign_id)


def feed_soon(campaign_id: int) -> None:
    feed_campaign.delay(campaign_id)
