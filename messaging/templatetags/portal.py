from django import template

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
