"""How long a text is as a phone counts it: its encoding and the number of SMS segments.

A text that uses only the GSM 03.38 alphabet travels in 7-bit units: 160 in one SMS, 153 a
part once it is split (the rest of each part carries the header that joins them). One
character outside that alphabet — an emoji, a curly quote — sends the whole text as UCS-2:
70 UTF-16 units in one SMS, 67 a part. Characters of the alphabet's extension table (``€``,
``[``, ``{`` …) cost two 7-bit units, an escape and the character. RingCentral's own limit is
on UTF-16 units (``ringcentral.limits.utf16_units``), which is shown beside the segments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from messaging.ringcentral.limits import utf16_units

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# Units in a single SMS, and in each part of a longer one.
SINGLE = {GSM7: 160, UCS2: 70}
PART = {GSM7: 153, UCS2: 67}


@dataclass(frozen=True)
class TextLength:
    units: int  # UTF-16 code units, as RingCentral counts the text
    encoding: str  # GSM7 or UCS2
    encoded_units: int  # 7-bit units for GSM-7, UTF-16 units for UCS-2
    segments: int

    @property
    def per_segment(self) -> int:
        return SINGLE[self.encoding] if self.segments <= 1 else PART[self.encoding]


def measure(text: str) -> TextLength:
    """The encoding a phone network will use for ``text`` and how many SMS it takes."""
    units = utf16_units(text)
    septets = 0
    for char in text:
        if char in GSM7_BASIC:
            septets += 1
        elif char in GSM7_EXTENSION:
            septets += 2
        else:
            return TextLength(units, UCS2, units, _segments(units, UCS2))
    return TextLength(units, GSM7, septets, _segments(septets, GSM7))


def _segments(encoded_units: int, encoding: str) -> int:
    if encoded_units == 0:
        return 0
    if encoded_units <= SINGLE[encoding]:
        return 1
    return math.ceil(encoded_units / PART[encoding])
