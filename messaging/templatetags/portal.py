import re

from django import template

from messaging.core import times
from messaging.core.phones import format_number
from messaging.ringcentral import limits

register = template.Library()


@register.filter
def decimal_size(value) -> str:
    """Sizes in decimal units, as RingCentral states its limits ("1.5 MB" = 1,500,000 bytes)."""
    return limits.format_size(int(value or 0))


@register.filter
def phone(value) -> str:
    """A stored E.164 number as people read it ("+1 650-555-0100")."""
    return format_number(str(value or ""))


@register.filter
def ago(value) -> str:
    """How long ago `value` was, in words ("just now", "5 minutes ago", "2 days ago")."""
    return times.ago(value)


_WORD_START = re.compile(r"(?<=[a-z])(?=[A-Z])")


@register.filter
def words(value) -> str:
    """One of RingCentral's CamelCase names read as words: "DirectNumber" -> "Direct number"."""
    parts = _WORD_START.split(str(value or ""))
    return " ".join([parts[0], *(part.lower() for part in parts[1:])]) if parts[0] else ""
