from django import template

from messaging import limits

register = template.Library()


@register.filter
def decimal_size(value) -> str:
    """Sizes in decimal units, as RingCentral states its limits ("1.5 MB" = 1,500,000 bytes)."""
    return limits.format_size(int(value or 0))
