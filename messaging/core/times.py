"""Moments as people read them, the same on every page."""

from datetime import timedelta

from django.utils import timezone
from django.utils.timesince import timesince


def ago(moment) -> str:
    """How long ago `moment` was, in words ("just now", "5 minutes ago", "2 days ago")."""
    if not moment:
        return ""
    if timezone.now() - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment, depth=1)} ago"
