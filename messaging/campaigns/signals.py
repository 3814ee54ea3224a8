"""What a campaign announces to the rooms that follow it.

campaign_finished(campaign)   sender=Campaign; the campaign has ended: done, canceled, or
                              stopped by itself (then `campaign.stop_reason` says why).
                              Sent after the commit that ended it, once per ending.
"""

from django.db import transaction
from django.dispatch import Signal

from messaging.models import Campaign

campaign_finished = Signal()


def announce_finished(campaign_id: int) -> None:
    """Send `campaign_finished` after the commit that ended the campaign."""

    def send():
        from_db = Campaign.objects.filter(pk=campaign_id).first()
        if from_db is not None:
            campaign_finished.send(sender=Campaign, campaign=from_db)

    transaction.on_commit(send, robust=True)
