"""What a campaign announces to the rooms that follow it.

campaign_finished(campaign)   sender=Campaign; the campaign has ended: done, canceled, or
                              stopped by itself (then `campaign.stop_reason` says why).
                              Sent after the commit that ended it, once per ending.
"""

from django.dispatch import Signal

campaign_finished = Signal()
