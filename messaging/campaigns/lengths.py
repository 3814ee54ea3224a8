"""How long a campaign's merged messages are, for the pre-flight page: the shortest and the
longest in SMS segments, each with its UTF-16 units and encoding (GSM-7 or UCS-2).

Each recipient's segments were counted when its text was merged (``creation.recipient_row``);
only the two texts at the ends are measured again here, so the page costs two queries whatever
the size of the list.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models.functions import Length

from messaging.message_templates.segments import TextLength, measure
from messaging.models import Campaign, CampaignRecipient, RecipientState


@dataclass(frozen=True)
class MessageLengths:
    shortest: TextLength
    longest: TextLength

    @property
    def varies(self) -> bool:
        return self.shortest != self.longest

    @property
    def text(self) -> str:
        if not self.varies:
            return describe(self.longest)
        return f"from {describe(self.shortest)} to {describe(self.longest)}"


def describe(length: TextLength) -> str:
    return (
        f"{length.units} UTF-16 units · {length.encoding} · {length.segments} SMS "
        f"segment{'s' if length.segments != 1 else ''}"
    )


def message_lengths(campaign: Campaign) -> MessageLengths | None:
    """The shortest and longest message still to send (by segments, then by length); None when
    no recipient gets a message."""
    rows = (
        CampaignRecipient.objects.filter(campaign=campaign)
        .exclude(state=RecipientState.SKIPPED)
        .only("text")
    )
    # Within the same number of segments, characters stand in for UTF-16 units (they differ
    # only by the emoji and other characters outside the Basic Multilingual Plane).
    rows = rows.annotate(characters=Length("text"))
    shortest = rows.order_by("segments", "characters", "pk").first()
    longest = rows.order_by("-segments", "-characters", "-pk").first()
    if shortest is None or longest is None:
        return None
    return MessageLengths(measure(shortest.text), measure(longest.text))
